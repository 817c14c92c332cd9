package dev.simrelay.app

import android.content.Context
import android.os.Build
import android.util.Log
import org.json.JSONObject

/**
 * The process's one native core, shared by reference count. The foreground service holds it
 * while it runs and is the only one that attaches the command loop (so only it brings the
 * relay link up); a receiver holds it just long enough to record a result or an incoming SMS
 * durably; pairing holds it for the exchange. The UI never creates it: it only [peek]s.
 * The last [release] destroys the core.
 */
object CoreHolder {
    private const val TAG = "simrelay"
    @Volatile private var handle = 0L
    private var users = 0

    /** The live handle, creating the core if nobody holds it. Pair with [release]. */
    @Synchronized
    fun acquire(context: Context): Long {
        if (handle == 0L) {
            handle = create(context.applicationContext)
            Log.i(TAG, "core started")
        }
        users++
        return handle
    }

    /** Drops one reference; the last one stops the core (the store keeps everything). */
    @Synchronized
    fun release() {
        if (users == 0) return
        users--
        if (users == 0) {
            val h = handle
            handle = 0L
            NativeCore.nativeDestroy(h)
            Log.i(TAG, "core stopped")
        }
    }

    /** Runs [block] with a core held for its duration. */
    inline fun <T> with(context: Context, block: (Long) -> T): T {
        val h = acquire(context)
        try {
            return block(h)
        } finally {
            release()
        }
    }

    /**
     * Engine settings for the next core (`nativeCreate`'s "engine"); null: the core's
     * defaults. Only the host's Robolectric suite sets it (fast retries, no pacing).
     */
    @Volatile var engineConfig: JSONObject? = null

    /** The live handle or 0; never creates a core (the screen uses this). */
    fun peek(): Long = handle

    private fun create(context: Context): Long = try {
        NativeCore.nativeCreate(configJson(context))
    } catch (e: LinkageError) {
        // System.loadLibrary failed (wrong ABI, missing .so): an Error, not an exception.
        // Later uses of NativeCore throw NoClassDefFoundError, also a LinkageError.
        throw CoreUnavailable("native library unavailable (${e.javaClass.simpleName}): ${e.message}")
    }

    private fun configJson(context: Context): String {
        val version = try {
            context.packageManager.getPackageInfo(context.packageName, 0).versionName
        } catch (e: Exception) {
            null
        }
        val engine = engineConfig?.let { JSONObject(it.toString()) }
        val passphrase = AppState.passphrase(context)
        return JSONObject()
            .put("data_dir", context.noBackupFilesDir.absolutePath)
            .put("app_version", version ?: "unknown")
            .put("device_name", "${Build.MANUFACTURER} ${Build.MODEL}")
            .apply {
                if (engine != null || passphrase != null) {
                    put("engine", (engine ?: JSONObject()).apply { passphrase?.let { put("passphrase", it) } })
                }
            }
            .toString()
    }
}

/** The core cannot run in this process (its native library did not load). */
class CoreUnavailable(message: String) : RuntimeException(message)
