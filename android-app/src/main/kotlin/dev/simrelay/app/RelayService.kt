package dev.simrelay.app

import android.app.Service
import android.content.Context
import android.content.Intent
import android.content.pm.ServiceInfo
import android.os.Build
import android.os.IBinder
import android.telephony.SubscriptionManager
import android.util.Log

/**
 * The foreground service (type `remoteMessaging`) that keeps the core and its relay link
 * alive, and the worker thread that pulls commands with `nativeNextCommand` and performs them.
 */
class RelayService : Service() {
    @Volatile private var running = false
    private var worker: Thread? = null
    private var simListener: SubscriptionManager.OnSubscriptionsChangedListener? = null

    override fun onBind(intent: Intent?): IBinder? = null

    override fun onCreate() {
        super.onCreate()
        Notices.createChannels(this)
        val notification = Notices.service(this, "Starting")
        if (Build.VERSION.SDK_INT >= 34) {
            startForeground(Notices.SERVICE_ID, notification, ServiceInfo.FOREGROUND_SERVICE_TYPE_REMOTE_MESSAGING)
        } else {
            startForeground(Notices.SERVICE_ID, notification)
        }
        val handle = try {
            CoreHolder.get(this)
        } catch (e: RuntimeException) {
            // E.g. storage full or corrupt: say so and stop rather than crash-loop.
            Log.e(TAG, "core failed to start: ${e.message}")
            Notices.updateService(this, "Cannot start: ${e.message}")
            stopSelf()
            return
        }
        try {
            Sims.report(this, handle)
        } catch (e: RuntimeException) {
            Log.w(TAG, "SIM report failed: ${e.message}")
        }
        simListener = Sims.watch(this, handle)
        running = true
        worker = Thread({ pull(handle) }, "simrelay-worker").also { it.start() }
        showStatus(handle)
    }

    override fun onStartCommand(intent: Intent?, flags: Int, startId: Int): Int = START_STICKY

    override fun onDestroy() {
        running = false
        Sims.unwatch(this, simListener)
        // Destroying the core makes the worker's nativeNextCommand return CLOSED.
        CoreHolder.release()
        worker?.join(WORKER_STOP_MS)
        worker = null
        super.onDestroy()
    }

    private fun pull(handle: Long) {
        val sender = SmsSender(this)
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

        fun start(context: Context) {
            try {
                context.startForegroundService(Intent(context, RelayService::class.java))
            } catch (e: IllegalStateException) {
                // Not allowed from this background state (Android 12+); the UI or boot starts it.
                Log.w(TAG, "service start refused: ${e.message}")
            }
        }

        fun stop(context: Context) {
            context.stopService(Intent(context, RelayService::class.java))
        }
    }
}
