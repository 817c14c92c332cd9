package dev.simrelay.app

import android.app.Notification
import android.app.NotificationChannel
import android.app.NotificationManager
import android.app.PendingIntent
import android.content.Context
import android.content.Intent

/** Notification channels, the service's ongoing notification and the send-limit notice. */
object Notices {
    const val SERVICE_ID = 1
    private const val LIMIT_ID = 2
    private const val CHANNEL_SERVICE = "relay"
    private const val CHANNEL_ALERTS = "alerts"
    private const val PREFS = "notices"
    private const val KEY_LIMIT_AT = "limit_exceeded_at"

    /** The exact fix for Android's per-app SMS limit (30 parts per minute by default). */
    const val LIMIT_FIX = "adb shell settings put global sms_outgoing_check_max_count 1000"
    const val LIMIT_TEXT = "Android refused to send: this app hit the system limit of SMS per minute " +
        "(RESULT_ERROR_LIMIT_EXCEEDED). Slow the SIM's pace, or raise the limit from a computer: $LIMIT_FIX"

    fun createChannels(context: Context) {
        val nm = context.getSystemService(NotificationManager::class.java)
        nm.createNotificationChannel(
            NotificationChannel(CHANNEL_SERVICE, "Relay service", NotificationManager.IMPORTANCE_LOW),
        )
        nm.createNotificationChannel(
            NotificationChannel(CHANNEL_ALERTS, "Sending problems", NotificationManager.IMPORTANCE_HIGH),
        )
    }

    fun service(context: Context, text: String): Notification =
        Notification.Builder(context, CHANNEL_SERVICE)
            .setSmallIcon(android.R.drawable.stat_notify_chat)
            .setContentTitle("simrelay")
            .setContentText(text)
            .setOngoing(true)
            .setContentIntent(openApp(context))
            .build()

    fun updateService(context: Context, text: String) {
        context.getSystemService(NotificationManager::class.java).notify(SERVICE_ID, service(context, text))
    }

    /** Records and shows that the platform refused a part with RESULT_ERROR_LIMIT_EXCEEDED. */
    fun limitExceeded(context: Context) {
        context.getSharedPreferences(PREFS, Context.MODE_PRIVATE).edit()
            .putLong(KEY_LIMIT_AT, System.currentTimeMillis()).apply()
        createChannels(context)
        val n = Notification.Builder(context, CHANNEL_ALERTS)
            .setSmallIcon(android.R.drawable.stat_notify_error)
            .setContentTitle("SMS send limit reached")
            .setContentText(LIMIT_FIX)
            .setStyle(Notification.BigTextStyle().bigText(LIMIT_TEXT))
            .setContentIntent(openApp(context))
            .setAutoCancel(true)
            .build()
        context.getSystemService(NotificationManager::class.java).notify(LIMIT_ID, n)
    }

    /** When the limit was last hit (0: never). */
    fun limitExceededAt(context: Context): Long =
        context.getSharedPreferences(PREFS, Context.MODE_PRIVATE).getLong(KEY_LIMIT_AT, 0L)

    private fun openApp(context: Context): PendingIntent =
        PendingIntent.getActivity(
            context, 0,
            Intent(context, MainActivity::class.java).setFlags(Intent.FLAG_ACTIVITY_SINGLE_TOP),
            PendingIntent.FLAG_IMMUTABLE,
        )
}
