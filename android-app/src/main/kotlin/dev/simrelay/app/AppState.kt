package dev.simrelay.app

import android.content.Context
import android.content.SharedPreferences

/**
 * What the screen shows while no core runs, kept in the app's preferences: the pairing the
 * core stored (a copy for display only; the core's store is the truth), why the service last
 * failed to start, the keep-awake setting and the end-to-end passphrase.
 */
object AppState {
    private const val PREFS = "state"
    private const val KEY_PHONE_ID = "phone_id"
    private const val KEY_RELAY = "relay_url"
    private const val KEY_SERVICE_ERROR = "service_error"
    private const val KEY_KEEP_AWAKE = "keep_awake"
    private const val KEY_ASKED = "permissions_asked"
    private const val KEY_PASSPHRASE = "e2e_passphrase"

    private fun prefs(context: Context): SharedPreferences =
        context.applicationContext.getSharedPreferences(PREFS, Context.MODE_PRIVATE)

    fun paired(context: Context, phoneId: String, relayUrl: String) {
        prefs(context).edit().putString(KEY_PHONE_ID, phoneId).putString(KEY_RELAY, relayUrl).apply()
    }

    fun phoneId(context: Context): String? = prefs(context).getString(KEY_PHONE_ID, null)

    fun relayUrl(context: Context): String? = prefs(context).getString(KEY_RELAY, null)

    /** Why the service could not start or run (null: no problem since the last start). */
    fun serviceError(context: Context): String? = prefs(context).getString(KEY_SERVICE_ERROR, null)

    fun setServiceError(context: Context, error: String?) {
        prefs(context).edit().putString(KEY_SERVICE_ERROR, error).apply()
    }

    /**
     * Hold a partial wake lock and a high-performance Wi-Fi lock while the service runs.
     * Default on: a dedicated modem phone must answer the relay's heartbeats in deep sleep.
     */
    fun keepAwake(context: Context): Boolean = prefs(context).getBoolean(KEY_KEEP_AWAKE, true)

    fun setKeepAwake(context: Context, on: Boolean) {
        prefs(context).edit().putBoolean(KEY_KEEP_AWAKE, on).apply()
    }

    /**
     * The end-to-end passphrase (SMS Gateway for Android's `encryption.passphrase`), handed to
     * the core as the engine's `passphrase` when it starts. Null: none.
     */
    fun passphrase(context: Context): String? =
        prefs(context).getString(KEY_PASSPHRASE, null)?.takeIf { it.isNotEmpty() }

    fun setPassphrase(context: Context, passphrase: String?) {
        prefs(context).edit().putString(KEY_PASSPHRASE, passphrase?.takeIf { it.isNotEmpty() }).apply()
    }

    /** Whether the permission dialog was asked for once (a denial after that is "refused"). */
    fun permissionsAsked(context: Context): Boolean = prefs(context).getBoolean(KEY_ASKED, false)

    fun setPermissionsAsked(context: Context) {
        prefs(context).edit().putBoolean(KEY_ASKED, true).apply()
    }
}
