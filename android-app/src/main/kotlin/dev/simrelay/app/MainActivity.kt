package dev.simrelay.app

import android.Manifest
import android.app.Activity
import android.content.Intent
import android.content.pm.PackageManager
import android.net.Uri
import android.os.Build
import android.os.Bundle
import android.os.Handler
import android.os.Looper
import android.os.PowerManager
import android.provider.Settings
import android.text.InputType
import android.view.View
import android.widget.Button
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.ScrollView
import android.widget.TextView
import android.widget.Toast

/**
 * The one screen: pair with a relay, see the link and queue, grant what the app needs.
 * Plain platform views built in code; no logic beyond calling the core.
 */
class MainActivity : Activity() {
    private val ui = Handler(Looper.getMainLooper())
    private lateinit var status: TextView
    private lateinit var limit: TextView
    private lateinit var permissions: TextView
    private lateinit var url: EditText
    private lateinit var code: EditText
    private lateinit var pin: EditText
    private val refresh = object : Runnable {
        override fun run() {
            showStatus()
            ui.postDelayed(this, REFRESH_MS)
        }
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val column = LinearLayout(this).apply {
            orientation = LinearLayout.VERTICAL
            setPadding(32, 32, 32, 32)
        }
        fun text(s: String) = TextView(this).apply { text = s }.also { column.addView(it) }
        fun button(s: String, onClick: (View) -> Unit) =
            Button(this).apply { text = s; setOnClickListener(onClick) }.also { column.addView(it) }

        text("simrelay turns this phone into an SMS modem for your relay server.").textSize = 16f
        status = text("Starting…")
        limit = text("").apply { visibility = View.GONE }

        text("Pair with a relay: its address (ws:// or wss://), the one-time code it shows, and, for a self-signed certificate, its SHA-256 fingerprint.")
        url = EditText(this).apply {
            hint = "wss://relay.example.com"
            inputType = InputType.TYPE_CLASS_TEXT or InputType.TYPE_TEXT_VARIATION_URI
        }.also { column.addView(it) }
        code = EditText(this).apply { hint = "Pairing code" }.also { column.addView(it) }
        pin = EditText(this).apply { hint = "Certificate SHA-256 (optional)" }.also { column.addView(it) }
        button("Pair") { pair() }

        permissions = text("")
        text("Sending SMS: to send the messages your relay queues. Receiving SMS: to pass incoming messages on. Phone state: to tell your SIMs apart. Notifications: to show that the relay is running and when sending is blocked.")
        button("Grant permissions") { requestPermissions(wanted(), REQUEST_PERMISSIONS) }
        text("Battery optimisation can stop the relay while the screen is off; the exemption keeps it connected.")
        button("Allow running in the background") { askBatteryExemption() }
        button("Start relay service") { RelayService.start(this) }
        button("Stop relay service") { RelayService.stop(this) }

        setContentView(ScrollView(this).apply { addView(column) })
    }

    override fun onResume() {
        super.onResume()
        ui.post(refresh)
    }

    override fun onPause() {
        ui.removeCallbacks(refresh)
        super.onPause()
    }

    override fun onRequestPermissionsResult(requestCode: Int, permissions: Array<String>, grantResults: IntArray) {
        super.onRequestPermissionsResult(requestCode, permissions, grantResults)
        showStatus()
    }

    private fun wanted(): Array<String> = buildList {
        add(Manifest.permission.SEND_SMS)
        add(Manifest.permission.RECEIVE_SMS)
        add(Manifest.permission.READ_PHONE_STATE)
        if (Build.VERSION.SDK_INT >= 33) add(Manifest.permission.POST_NOTIFICATIONS)
    }.toTypedArray()

    private fun showStatus() {
        val view = try {
            StatusView.parse(NativeCore.nativeStatus(CoreHolder.get(this)))
        } catch (e: RuntimeException) {
            status.text = "Core unavailable: ${e.message}"
            return
        }
        status.text = view.lines().joinToString("\n")
        val missing = wanted().filter { checkSelfPermission(it) != PackageManager.PERMISSION_GRANTED }
        val battery = getSystemService(PowerManager::class.java).isIgnoringBatteryOptimizations(packageName)
        permissions.text = buildString {
            append(if (missing.isEmpty()) "All permissions granted." else "Missing: " + missing.joinToString { it.substringAfterLast('.') })
            append(if (battery) "\nBattery optimisation: exempt." else "\nBattery optimisation: not exempt.")
        }
        val recent = System.currentTimeMillis() - Notices.limitExceededAt(this) < LIMIT_NOTICE_MS
        limit.visibility = if (recent) View.VISIBLE else View.GONE
        limit.text = Notices.LIMIT_TEXT
    }

    private fun pair() {
        val relay = url.text.toString().trim()
        val oneTime = code.text.toString().trim()
        val fingerprint = pin.text.toString().trim().ifEmpty { null }
        if (relay.isEmpty() || oneTime.isEmpty()) {
            Toast.makeText(this, "Enter the relay address and the pairing code", Toast.LENGTH_SHORT).show()
            return
        }
        status.text = "Pairing…"
        Thread({
            val message = try {
                val phoneId = NativeCore.nativePair(CoreHolder.get(this), relay, oneTime, fingerprint)
                "Paired as $phoneId"
            } catch (e: RuntimeException) {
                "Pairing failed: ${e.message}"
            }
            ui.post {
                Toast.makeText(this, message, Toast.LENGTH_LONG).show()
                showStatus()
                RelayService.start(this)
            }
        }, "simrelay-pair").start()
    }

    private fun askBatteryExemption() {
        val pm = getSystemService(PowerManager::class.java)
        if (pm.isIgnoringBatteryOptimizations(packageName)) {
            Toast.makeText(this, "Already exempt", Toast.LENGTH_SHORT).show()
            return
        }
        startActivity(
            Intent(Settings.ACTION_REQUEST_IGNORE_BATTERY_OPTIMIZATIONS, Uri.parse("package:$packageName")),
        )
    }

    private companion object {
        const val REQUEST_PERMISSIONS = 1
        const val REFRESH_MS = 2_000L
        /** How long the send-limit notice stays on screen after the platform refused a part. */
        const val LIMIT_NOTICE_MS = 24 * 60 * 60 * 1000L
    }
}
