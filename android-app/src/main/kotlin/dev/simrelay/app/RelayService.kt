package dev.simrelay.app

import android.app.Service
import android.content.Context
import android.content.Intent
import android.content.pm.ServiceInfo
import android.net.wifi.WifiManager
import android.os.Build
import android.os.IBinder
import android.os.PowerManager
import android.telephony.SubscriptionManager
import android.util.Log

/**
 * The foreground service (type `remoteMessaging`): the one owner of the relay link. It holds
 * the core, attaches the worker thread that pulls commands with `nativeNextCommand` (only then
 * does the core go online), and, unless turned off, a partial wake lock and a
 * high-performance Wi-Fi lock so that heartbeats keep flowing while the screen is off.
 * A failure to start is recorded in [AppState] and shown by the screen, never a crash.
 */
class RelayService : Service() {
    @Volatile private var running = false
    private var handle = 0L
    private var worker: Thread? = null
    private var simListener: SubscriptionManager.OnSubscriptionsChangedListener? = null
    private var wakeLock: PowerManager.WakeLock? = null
    private var wifiLock: WifiManager.WifiLock? = null

    override fun onBind(intent: Intent?): IBinder? = null

    override fun onCreate() {
        super.onCreate()
        if (!goForeground()) {
            stopSelf()
            return
        }
        handle = try {
            CoreHolder.acquire(this)
        } catch (e: RuntimeException) {
            // Storage full or corrupt, or the native library missing: say so and stop rather
            // than crash-loop.
            Log.e(TAG, "core failed to start: ${e.message}")
            fail("Cannot start the core: ${e.message}")
            return
        }
        AppState.setServiceError(this, null)
        try {
            Sims.report(this, handle)
        } catch (e: RuntimeException) {
            Log.w(TAG, "SIM report failed: ${e.message}")
        }
        simListener = Sims.watch(this, handle)
        if (AppState.keepAwake(this)) holdLocks()
        running = true
        val h = handle
        worker = Thread({ pull(h) }, "simrelay-worker").also { it.start() }
        showStatus(h)
    }

    /** `startForeground`, which Android 12+ refuses from some background states. */
    private fun goForeground(): Boolean {
        Notices.createChannels(this)
        val notification = Notices.service(this, "Starting")
        return try {
            if (Build.VERSION.SDK_INT >= 34) {
                startForeground(Notices.SERVICE_ID, notification, ServiceInfo.FOREGROUND_SERVICE_TYPE_REMOTE_MESSAGING)
            } else {
                startForeground(Notices.SERVICE_ID, notification)
            }
            true
        } catch (e: RuntimeException) {
            // ForegroundServiceStartNotAllowedException (an IllegalStateException, API 31+) or
            // a SecurityException (FGS type permission missing, API 34+).
            Log.w(TAG, "startForeground refused: ${e.javaClass.simpleName}")
            AppState.setServiceError(this, "Android refused to start the relay service (${e.javaClass.simpleName}); open the app and start it from there")
            false
        }
    }

    private fun fail(message: String) {
        AppState.setServiceError(this, message)
        Notices.updateService(this, message)
        stopSelf()
    }

    @Suppress("DEPRECATION") // WIFI_MODE_FULL_HIGH_PERF: the mode that keeps Wi-Fi up with the screen off
    private fun holdLocks() {
        try {
            wakeLock = getSystemService(PowerManager::class.java)
                ?.newWakeLock(PowerManager.PARTIAL_WAKE_LOCK, "simrelay:relay")
                ?.apply { setReferenceCounted(false); acquire() }
            wifiLock = applicationContext.getSystemService(WifiManager::class.java)
                ?.createWifiLock(WifiManager.WIFI_MODE_FULL_HIGH_PERF, "simrelay:relay")
                ?.apply { setReferenceCounted(false); acquire() }
        } catch (e: RuntimeException) {
            Log.w(TAG, "locks not held: ${e.javaClass.simpleName}")
        }
    }

    private fun dropLocks() {
        wakeLock?.takeIf { it.isHeld }?.release()
        wifiLock?.takeIf { it.isHeld }?.release()
        wakeLock = null
        wifiLock = null
    }

    override fun onStartCommand(intent: Intent?, flags: Int, startId: Int): Int = START_STICKY

    override fun onDestroy() {
        running = false
        Sims.unwatch(this, simListener)
        dropLocks()
        if (handle != 0L) {
            // Detaching drops the relay link at once; the last release destroys the core, which
            // makes a waiting nativeNextCommand return CLOSED.
            try {
                NativeCore.nativeSetWorker(handle, false)
            } catch (e: RuntimeException) {
                Log.w(TAG, "detach failed: ${e.message}")
            }
            CoreHolder.release()
            handle = 0L
        }
        worker?.join(WORKER_STOP_MS)
        worker = null
        super.onDestroy()
    }

    private fun pull(handle: Long) {
        val sender = SmsSender(this)
        try {
            NativeCore.nativeSetWorker(handle, true)
        } catch (e: RuntimeException) {
            Log.e(TAG, "attach failed: ${e.message}")
            return
        }
        while (running) {
            val json = try {
                NativeCore.nativeNextCommand(handle, PULL_TIMEOUT_MS)
            } catch (e: IllegalStateException) {
                break // handle freed: the service is stopping
            } catch (e: RuntimeException) {
                Log.e(TAG, "pull failed: ${e.message}")
                break
            }
            if (json == null) {
                showStatus(handle) // nothing to do for a while: refresh the notification
                continue
            }
            try {
                when (val cmd = CoreCommand.parse(json)) {
                    is CoreCommand.Send -> sender.send(cmd, handle)
                    CoreCommand.RefreshSims -> Sims.report(this, handle)
                    CoreCommand.Closed -> break
                    is CoreCommand.Unknown -> Log.w(TAG, "unknown command ${cmd.type}")
                }
            } catch (e: RuntimeException) {
                // One bad command must not stop the loop; the core times the part out.
                Log.e(TAG, "command failed: ${e.javaClass.simpleName}: ${e.message}")
            }
        }
        Log.i(TAG, "worker stopped")
    }

    private fun showStatus(handle: Long) {
        try {
            Notices.updateService(this, StatusView.parse(NativeCore.nativeStatus(handle)).summary())
        } catch (e: RuntimeException) {
            Log.w(TAG, "status failed: ${e.message}")
        }
    }

    companion object {
        private const val TAG = "simrelay"
        /** Also how often the notification's status line is refreshed when idle. */
        private const val PULL_TIMEOUT_MS = 30_000L
        private const val WORKER_STOP_MS = 6_000L

        /** Starts the service; false (and the reason in [AppState]) if Android refused. */
        fun start(context: Context): Boolean = try {
            context.startForegroundService(Intent(context, RelayService::class.java))
            true
        } catch (e: RuntimeException) {
            // IllegalStateException (background start not allowed, Android 12+) or
            // SecurityException: the UI or the next boot starts it.
            Log.w(TAG, "service start refused: ${e.javaClass.simpleName}")
            AppState.setServiceError(context, "Android refused to start the relay service (${e.javaClass.simpleName})")
            false
        }

        fun stop(context: Context) {
            context.stopService(Intent(context, RelayService::class.java))
        }
    }
}
