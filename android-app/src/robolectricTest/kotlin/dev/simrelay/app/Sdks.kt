package dev.simrelay.app

import android.os.Looper
import org.robolectric.Shadows.shadowOf
import java.util.concurrent.TimeUnit

/** The API levels the Robolectric suite runs at (the check script runs one JVM per level). */
object Sdks {
    /** Android 10. */
    const val OLD = 29
    /**
     * Android 14: the newest android-all that Robolectric 4.16 runs on Java 17 (API 35 and 36
     * need Java 21, which this machine's Debian does not package).
     */
    const val NEW = 34
}

/** Waiting on the receivers' background hand-offs, bounded, with the main looper turning. */
object Background {
    private val handOffs = setOf("simrelay-boot", "simrelay-sent", "simrelay-delivered", "simrelay-incoming")

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
