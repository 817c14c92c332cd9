package dev.simrelay.app

import android.Manifest
import android.app.Activity
import android.content.ActivityNotFoundException
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
import android.view.WindowInsets
import android.widget.Button
import android.widget.CheckBox
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.ScrollView
import android.widget.TextView
import android.widget.Toast

/**
 * The one screen: pair with a relay, see the link and queue, grant what the app needs.
 * Plain platform views built in code; no logic beyond calling the core. It never creates the
 * core (the service owns it): while the service is stopped it shows the stored pairing and
 * why the service last failed, if it did.
 */
class MainActivity : Activity() {
    private val ui = Handler(Looper.getMainLooper())
    private lateinit var status: TextView
    private lateinit var limit: TextView
    private lateinit var permissions: TextView
    private lateinit var restricted: LinearLayout
    private lateinit var notice: TextView
    private lateinit var url: EditText
    private lateinit var code: EditText
    private lateinit var pin: EditText
    private lateinit var linkNote: TextView
    /** `links` of the last pairing link filled in (null: the core's default). */
    private var linkCount: Int? = null
    private val refresh = object : Runnable {
        override fun run() {
            showStatus()
            ui.postDelayed(this, REFRESH_MS)
        }
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val column = LinearLayout(this).apply { orientation = LinearLayout.VERTICAL }
        fun text(s: String, into: LinearLayout = column) = TextView(this).apply { text = s }.also { into.addView(it) }
        fun button(s: String, into: LinearLayout = column, onClick: (View) -> Unit) =
            Button(this).apply { text = s; setOnClickListener(onClick) }.also { into.addView(it) }

        text("simrelay turns this phone into an SMS modem for your relay server.").textSize = 16f
        status = text("Starting…")
        notice = text("").apply { visibility = View.GONE }
        limit = text("").apply { visibility = View.GONE }

        text("Pair with a relay: its address (ws:// or wss://), the one-time code it shows, and, for a self-signed certificate, its SHA-256 fingerprint. Or scan the QR code on the relay's dashboard with the camera, or paste its simrelay://pair link into the address field.")
        linkNote = text("").apply { visibility = View.GONE }
        url = EditText(this).apply {
            hint = "wss://relay.example.com"
            inputType = InputType.TYPE_CLASS_TEXT or InputType.TYPE_TEXT_VARIATION_URI
        }.also { column.addView(it) }
        code = EditText(this).apply { hint = "Pairing code" }.also { column.addView(it) }
        pin = EditText(this).apply { hint = "Certificate SHA-256 (optional)" }.also { column.addView(it) }
        button("Pair") { pair() }

        permissions = text("")
        restricted = LinearLayout(this).apply {
            orientation = LinearLayout.VERTICAL
            visibility = View.GONE
        }.also { column.addView(it) }
        text(RESTRICTED_TEXT, restricted)
        button("Open App info", restricted) { openSettings(appDetails()) }
        text("Sending SMS: to send the messages your relay queues. Receiving SMS: to pass incoming messages on. Phone state: to tell your SIMs apart. Notifications: to show that the relay is running and when sending is blocked.")
        button("Grant permissions") {
            AppState.setPermissionsAsked(this)
            requestPermissions(wanted(), REQUEST_PERMISSIONS)
        }
        text("Battery optimisation can stop the relay while the screen is off; the exemption keeps it connected.")
        button("Allow running in the background") { askBatteryExemption() }
        CheckBox(this).apply {
            text = "Keep the CPU and Wi-Fi awake while relaying (recommended for a dedicated modem phone; takes effect at the next start)"
            isChecked = AppState.keepAwake(this@MainActivity)
            setOnCheckedChangeListener { _, on -> AppState.setKeepAwake(this@MainActivity, on) }
        }.also { column.addView(it) }
        text("End-to-end encryption (SMS Gateway for Android clients): the passphrase decrypts messages sent encrypted and encrypts incoming SMS. Empty: none. Takes effect at the next start.")
        val passphrase = EditText(this).apply {
            hint = "Passphrase"
            inputType = InputType.TYPE_CLASS_TEXT or InputType.TYPE_TEXT_VARIATION_PASSWORD
            setText(AppState.passphrase(this@MainActivity) ?: "")
        }.also { column.addView(it) }
        button("Save passphrase") {
            AppState.setPassphrase(this, passphrase.text.toString())
            Toast.makeText(this, "Saved; restart the relay service to use it", Toast.LENGTH_SHORT).show()
        }
        button("Start relay service") {
            AppState.setServiceError(this, null)
            RelayService.start(this)
            showStatus()
        }
        button("Stop relay service") { RelayService.stop(this) }

        val scroll = ScrollView(this).apply { addView(column) }
        applyInsets(scroll)
        setContentView(scroll)
        showLink(intent)
    }

    override fun onNewIntent(intent: Intent) {
        super.onNewIntent(intent)
        setIntent(intent)
        showLink(intent)
    }

    /**
     * A `simrelay://pair` link (the dashboard's QR code) opened this screen: fill the fields.
     * Reopened from Recents, Android hands over the same link again: its code is used by then.
     */
    private fun showLink(intent: Intent?) {
        if (intent?.action != Intent.ACTION_VIEW || intent.data?.scheme != "simrelay") return
        if (intent.flags and Intent.FLAG_ACTIVITY_LAUNCHED_FROM_HISTORY != 0) return
        fillFrom(intent.dataString.orEmpty())
    }

    /**
     * Fills the pairing fields from a link and asks the user to check them and tap Pair: a link
     * can come from anywhere, so it never pairs by itself. A bad link changes no field.
     */
    private fun fillFrom(link: String) {
        val message = try {
            val parsed = PairLink.read(link)
            url.setText(parsed.url)
            code.setText(parsed.code)
            pin.setText(parsed.pin ?: "")
            linkCount = parsed.links
            "Pairing link for ${parsed.url}: check the address and code, then tap Pair."
        } catch (e: IllegalArgumentException) {
            "Not a valid pairing link: ${e.message}."
        }
        linkNote.text = message
        linkNote.visibility = View.VISIBLE
        Toast.makeText(this, message, Toast.LENGTH_LONG).show()
    }

    /** Edge-to-edge (targetSdk 35+ draws under the bars): pad by the system bars, cutout and IME. */
    private fun applyInsets(root: View) {
        root.setOnApplyWindowInsetsListener { v, insets ->
            if (Build.VERSION.SDK_INT >= 30) {
                val bars = insets.getInsets(
                    WindowInsets.Type.systemBars() or WindowInsets.Type.displayCutout() or WindowInsets.Type.ime(),
                )
                v.setPadding(PAD + bars.left, PAD + bars.top, PAD + bars.right, PAD + bars.bottom)
            } else {
                @Suppress("DEPRECATION")
                v.setPadding(
                    PAD + insets.systemWindowInsetLeft, PAD + insets.systemWindowInsetTop,
                    PAD + insets.systemWindowInsetRight, PAD + insets.systemWindowInsetBottom,
                )
            }
            insets
        }
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
        status.text = statusLines().joinToString("\n")
        val missing = wanted().filter { checkSelfPermission(it) != PackageManager.PERMISSION_GRANTED }
        val battery = getSystemService(PowerManager::class.java)?.isIgnoringBatteryOptimizations(packageName) ?: false
        permissions.text = buildString {
            append(if (missing.isEmpty()) "All permissions granted." else "Missing: " + missing.joinToString { it.substringAfterLast('.') })
            append(if (battery) "\nBattery optimisation: exempt." else "\nBattery optimisation: not exempt.")
        }
        // Asked once and SMS still refused: on Android 13+ a sideloaded app's SMS permissions
        // are "restricted settings" and the dialog is refused without being shown.
        val smsRefused = missing.any { it == Manifest.permission.SEND_SMS || it == Manifest.permission.RECEIVE_SMS }
        restricted.visibility = if (smsRefused && AppState.permissionsAsked(this)) View.VISIBLE else View.GONE
        val recent = System.currentTimeMillis() - Notices.limitExceededAt(this) < LIMIT_NOTICE_MS
        limit.visibility = if (recent) View.VISIBLE else View.GONE
        limit.text = Notices.LIMIT_TEXT
    }

    /** The core's view while the service holds one; otherwise what [AppState] remembers. */
    private fun statusLines(): List<String> {
        val lines = mutableListOf<String>()
        val h = CoreHolder.peek()
        val view = if (h == 0L) {
            null
        } else {
            try {
                StatusView.parse(NativeCore.nativeStatus(h))
            } catch (e: RuntimeException) {
                null // freed between peek and call: the service is stopping
            }
        }
        if (view != null) {
            lines += view.lines()
        } else {
            lines += "Relay service: stopped"
            val id = AppState.phoneId(this)
            lines += if (id != null) "Paired as $id (${AppState.relayUrl(this)})" else "Not paired yet"
        }
        AppState.serviceError(this)?.let { lines += "Service: $it" }
        return lines
    }

    private fun pair() {
        val relay = url.text.toString().trim()
        if (PairLink.looksLike(relay)) {
            fillFrom(relay) // a pasted link: expanded, then the user confirms with Pair
            return
        }
        val oneTime = code.text.toString().trim()
        val fingerprint = pin.text.toString().trim().ifEmpty { null }
        if (relay.isEmpty() || oneTime.isEmpty()) {
            Toast.makeText(this, "Enter the relay address and the pairing code", Toast.LENGTH_SHORT).show()
            return
        }
        status.text = "Pairing…"
        Thread({
            val result = Pairing.pair(this, relay, oneTime, fingerprint, linkCount ?: 0)
            ui.post {
                Toast.makeText(this, result.message, Toast.LENGTH_LONG).show()
                // The service starts only once the relay accepted the code.
                if (result.phoneId != null) RelayService.start(this)
                showStatus()
            }
        }, "simrelay-pair").start()
    }

    private fun askBatteryExemption() {
        val pm = getSystemService(PowerManager::class.java)
        if (pm != null && pm.isIgnoringBatteryOptimizations(packageName)) {
            Toast.makeText(this, "Already exempt", Toast.LENGTH_SHORT).show()
            return
        }
        if (!openSettings(Intent(Settings.ACTION_REQUEST_IGNORE_BATTERY_OPTIMIZATIONS, Uri.parse("package:$packageName")))) {
            openSettings(Intent(Settings.ACTION_IGNORE_BATTERY_OPTIMIZATION_SETTINGS))
        }
    }

    private fun appDetails(): Intent =
        Intent(Settings.ACTION_APPLICATION_DETAILS_SETTINGS, Uri.parse("package:$packageName"))

    /** Opens a settings screen; a device without it gets a notice, not a crash. */
    private fun openSettings(intent: Intent): Boolean = try {
        startActivity(intent)
        true
    } catch (e: ActivityNotFoundException) {
        notice.text = "This device has no screen for ${intent.action}; open Settings → Apps → simrelay by hand."
        notice.visibility = View.VISIBLE
        false
    } catch (e: SecurityException) {
        notice.text = "Android did not allow opening ${intent.action}; open Settings → Apps → simrelay by hand."
        notice.visibility = View.VISIBLE
        false
    }

    companion object {
        private const val REQUEST_PERMISSIONS = 1
        private const val REFRESH_MS = 2_000L
        private const val PAD = 32
        /** How long the send-limit notice stays on screen after the platform refused a part. */
        private const val LIMIT_NOTICE_MS = 24 * 60 * 60 * 1000L
        const val RESTRICTED_TEXT = "Android refused the SMS permissions. For an app installed from a file " +
            "(Android 13 and later) they are restricted settings: open App info, tap ⋮ (top right), " +
            "choose \"Allow restricted settings\", confirm, then come back and tap Grant permissions."
    }
}

/** Pairing through the core: held only for the exchange; the link runs once the service does. */
object Pairing {
    class Result(val phoneId: String?, val message: String)

    /** Blocking (up to 30 s): never on the main thread. */
    /** [maxLinks]: 0 for the core's default, else 1 to 16 links to a cluster's nodes. */
    fun pair(context: android.content.Context, relay: String, code: String, pin: String?, maxLinks: Int = 0): Result = try {
        val phoneId = CoreHolder.with(context) { h -> NativeCore.nativePair(h, relay, code, pin, maxLinks) }
        AppState.paired(context, phoneId, relay)
        Result(phoneId, "Paired as $phoneId")
    } catch (e: RuntimeException) {
        Result(null, "Pairing failed: ${e.message}")
    }
}
