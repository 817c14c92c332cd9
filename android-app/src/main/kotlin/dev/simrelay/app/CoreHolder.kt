package dev.simrelay.app

import android.content.Context
import android.os.Build
import android.util.Log
import org.json.JSONObject

/**
 * The process's one native core. The service, the receivers and the UI all reach it here;
 * whoever needs it first creates it (a sent-result receiver may run in a process that the
 * system started only to deliver the result).
 */
object CoreHolder {
    private const val TAG = "simrelay"
    private var handle = 0L

    /** The live handle, creating the core on first use. */
    @Synchronized
    fun get(context: Context): Long {
        if (handle == 0L) {
            handle = NativeCore.nativeCreate(configJson(context.applicationContext))
            Log.i(TAG, "core started")
        }
        return handle
    }

    /** Stops the core (service stopped). The next [get] starts a new one on the same store. */
    @Synchronized
    fun release() {
        val h = handle
        handle = 0L
        if (h != 0L) {
            NativeCore.nativeDestroy(h)
            Log.i(TAG, "core stopped")
        }
    }

    private fun configJson(context: Context): String {
        val version = try {
            context.packageManager.getPackageInfo(context.packageName, 0).versionName
        } catch (e: Exception) {
            null
        }
        return JSONObject()
            .put("data_dir", context.noBackupFilesDir.absolutePath)
            .put("app_version", version ?: "unknown")
            .put("device_name", "${Build.MANUFACTURER} ${Build.MODEL}")
            .toString()
    }
}
