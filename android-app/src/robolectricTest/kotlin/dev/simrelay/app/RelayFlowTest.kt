package dev.simrelay.app

import android.Manifest
import android.app.Activity
import android.app.Application
import android.app.PendingIntent
import android.content.Intent
import android.os.Build
import android.provider.Telephony
import android.telephony.SmsManager
import org.json.JSONArray
import org.json.JSONObject
import org.junit.After
import org.junit.Assert.assertEquals
import org.junit.Assert.assertNotNull
import org.junit.Assert.assertTrue
import org.junit.Before
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.Robolectric
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.Shadows.shadowOf
import org.robolectric.android.controller.ServiceController
import org.robolectric.annotation.Config
import org.robolectric.shadows.ShadowSubscriptionManager.SubscriptionInfoBuilder
import java.nio.file.Files

/**
 * The app's own Kotlin classes on the real Android framework (Robolectric) with the host
 * build of libsimrelay_jni.so and a real relay (`simrelay serve` on 127.0.0.1:0), in the order
 * of issue 12's list: pairing through the app's code path (the screen then shows the service's
 * link state from the same core); a send from the relay's HTTP API
 * reaching [SmsSender] on the right subscription with one mutable, explicit, distinct sent and
 * delivery PendingIntent per part; those intents fired with OK, a transient and a permanent
 * result and a real status-report PDU driving the manifest receivers into the core (the relay
 * shows delivered, a retry, failed); `SMS_RECEIVED` from real PDUs (single and multipart, by
 * subscription extra and by slot) reaching the inbox once however often delivered; boot
 * starting the service once paired; stopping the service taking the phone offline, and a late
 * sent result kept and reported on the next start.
 */
@RunWith(RobolectricTestRunner::class)
@Config(sdk = [Sdks.OLD, Sdks.MID, Sdks.NEW])
class RelayFlowTest {
    private val app: Application get() = RuntimeEnvironment.getApplication()
    private val to = "+31628870634"
    private lateinit var relay: Relay
    private var service: ServiceController<RelayService>? = null

    @Before
    fun start() {
        val (binary, why) = Relay.binary()
        // Never skipped: the check script always builds the relay.
        assertNotNull("relay binary missing: $why", binary)
        // Two failed parts in a row put a SIM in the relay's cooldown (30 s by default): short
        // here, so the flow's later sends are routed at once.
        relay = Relay.start(
            binary!!, Files.createTempDirectory("relay"), API_KEY,
            configToml = "sim_cooldown_ms = 100\nsim_quarantine_ms = 100\n",
        )
        CoreHolder.engineConfig = JSONObject()
            .put("parts_per_minute", 6000).put("jitter", 0.0)
            .put("backoff_base_ms", 200).put("backoff_max_ms", 1000)
        shadowOf(app).grantPermissions(
            Manifest.permission.SEND_SMS, Manifest.permission.RECEIVE_SMS, Manifest.permission.READ_PHONE_STATE,
        )
        val subs = app.getSystemService(android.telephony.SubscriptionManager::class.java)
        shadowOf(subs).setActiveSubscriptionInfos(
            SubscriptionInfoBuilder.newBuilder().setId(SUB).setSimSlotIndex(0).setCarrierName("Robo SIM").buildSubscriptionInfo(),
        )
    }

    @After
    fun stop() {
        service?.destroy()
        service = null
        CoreHolder.engineConfig = null
        if (::relay.isInitialized) relay.close()
        assertEquals("every core reference released", 0L, CoreHolder.peek())
    }

    @Test
    fun theShellDrivesTheCoreAgainstARealRelay() {
        // 1. Pairing through the app's code path; the core is held only for the exchange.
        val (_, pairing) = relay.post("/v1/pairing-codes", JSONObject())
        val paired = Pairing.pair(app, relay.wsUrl, pairing.getString("code"), null)
        val phoneId = paired.phoneId
        assertNotNull(paired.message, phoneId)
        assertEquals(0L, CoreHolder.peek())
        assertEquals(false, online(phoneId!!))
        service = Robolectric.buildService(RelayService::class.java).create()
        await("phone online") { online(phoneId) }
        // The screen shows the service's core (it creates none of its own).
        val held = CoreHolder.peek()
        val screen = Robolectric.buildActivity(MainActivity::class.java).setup()
        await("the screen shows the link online") {
            texts(screen.get().window.decorView).any { it.startsWith("Link: online") }
        }
        assertEquals("the same core", held, CoreHolder.peek())
        screen.pause().stop().destroy()

        // 2. A send from the HTTP API reaches SmsSender on subscription SUB.
        val ok = send("first message")
        val first = awaitSend(1)
        assertEquals(to, first.destinationAddress)
        assertEquals(SUB, first.subId)
        checkIntents(first)

        // 3a. OK and a real status report: delivered.
        fireSent(first, Activity.RESULT_OK)
        fireDelivered(first, StatusReports.build(to, 0x2A, 0x00))
        awaitState(ok, "delivered")

        // 3b. A transient error (RESULT_ERROR_NO_SERVICE): the core retries with a new attempt.
        val retried = send("second message")
        val attempt1 = awaitSend(2)
        fireSent(attempt1, SmsManager.RESULT_ERROR_NO_SERVICE)
        val attempt2 = awaitSend(3)
        assertEquals(retried, attempt2.messageId)
        assertTrue("a new attempt", attempt2.attempt > attempt1.attempt)
        fireSent(attempt2, Activity.RESULT_OK)
        awaitState(retried, "sent")

        // 3c. A permanent error (RESULT_NETWORK_REJECT): failed.
        val rejected = send("third message")
        val third = awaitSend(4)
        fireSent(third, 10)
        awaitState(rejected, "failed")

        // 4. SMS_RECEIVED from real PDUs, each delivered twice: in the inbox once.
        val single = smsReceived(listOf(Pdus.deliver("+4915550001234", "Your code is 482913")), sub = SUB)
        repeat(2) { app.sendBroadcast(single) }
        shadowOf(android.os.Looper.getMainLooper()).idle()
        val multi = smsReceived(
            listOf(
                Pdus.deliver("BANK", "Part one of a long text, ", Triple(7, 2, 1)),
                Pdus.deliver("BANK", "part two 9081", Triple(7, 2, 2)),
            ),
            slot = 0,
        )
        repeat(2) { app.sendBroadcast(multi) }
        shadowOf(android.os.Looper.getMainLooper()).idle()
        val one = awaitInbox("482913")
        assertEquals("+4915550001234", one.getString("from"))
        assertEquals("Your code is 482913", one.getString("text"))
        assertEquals(SUB, one.getInt("sim"))
        val two = awaitInbox("9081")
        assertEquals("BANK", two.getString("from"))
        assertEquals("Part one of a long text, part two 9081", two.getString("text"))
        assertEquals("the SIM from the slot", SUB, two.getInt("sim"))
        Background.idleUntil("receivers done") { Background.handOffsDone() }
        val items = relay.get("/v1/inbox").second.getJSONArray("items")
        assertEquals("each SMS once: $items", 2, items.length())

        // 5. A part handed to the radio, then the service stops: the phone goes offline.
        val late = send("fourth message")
        val fourth = awaitSend(5)
        service!!.destroy()
        service = null
        await("phone offline") { !online(phoneId) }
        // Its sent result arrives late: a receiver records it without going online.
        fireSent(fourth, Activity.RESULT_OK)
        Background.idleUntil("late result recorded") { Background.handOffsDone() && CoreHolder.peek() == 0L }
        assertEquals("not reported while stopped", "sending", state(late))
        // Boot starts the service because the phone is paired.
        app.sendBroadcast(Intent(Intent.ACTION_BOOT_COMPLETED).setPackage(app.packageName))
        Background.idleUntil("boot handled") { Background.handOffsDone() && CoreHolder.peek() == 0L }
        val started = shadowOf(app).nextStartedService
        assertEquals(RelayService::class.java.name, started?.component?.className)
        service = Robolectric.buildService(RelayService::class.java).create()
        awaitState(late, "sent")
    }

    private fun texts(v: android.view.View): List<String> {
        val out = mutableListOf<String>()
        if (v is android.widget.TextView) out += v.text.toString()
        if (v is android.view.ViewGroup) for (i in 0 until v.childCount) out += texts(v.getChildAt(i))
        return out
    }

    private class Sent(
        val destinationAddress: String,
        val subId: Int,
        val parts: List<String>,
        val sent: List<PendingIntent>,
        val delivered: List<PendingIntent>,
    ) {
        val messageId: String get() = shadowOf(sent[0]).savedIntent.getStringExtra(PartRef.MESSAGE_ID)!!
        val attempt: Int get() = shadowOf(sent[0]).savedIntent.getIntExtra(PartRef.ATTEMPT, -1)
    }

    /** Every SmsManager instance the app used (SmsManager caches one per subscription). */
    private fun managers(): List<SmsManager> {
        val field = SmsManager::class.java.getDeclaredField("sSubInstances").apply { isAccessible = true }
        @Suppress("UNCHECKED_CAST")
        return synchronized(SmsManager::class.java) { (field.get(null) as Map<Any, SmsManager>).values.toList() }
    }

    private val seen = mutableListOf<Sent>()

    /** Waits for the [n]th `sendMultipartTextMessage` across all subscriptions. */
    private fun awaitSend(n: Int): Sent {
        await("send #$n") {
            for (m in managers()) {
                val p = shadowOf(m).lastSentMultipartTextMessageParams ?: continue
                shadowOf(m).clearLastSentMultipartTextMessageParams()
                seen += Sent(p.destinationAddress, m.subscriptionId, p.parts, p.sentIntents, p.deliveryIntents ?: emptyList())
            }
            seen.size >= n
        }
        return seen[n - 1]
    }

    private fun checkIntents(s: Sent) {
        assertEquals("one sent intent per part", s.parts.size, s.sent.size)
        assertEquals("one delivery intent per part", s.parts.size, s.delivered.size)
        val all = s.sent + s.delivered
        for (pi in all) {
            val shadow = shadowOf(pi)
            assertTrue("a broadcast", shadow.isBroadcast)
            if (Build.VERSION.SDK_INT >= 31) {
                assertTrue("mutable", shadow.flags and PendingIntent.FLAG_MUTABLE != 0)
            }
            assertTrue("not immutable", !shadow.isImmutable)
            val intent = shadow.savedIntent
            assertEquals("explicit package", app.packageName, intent.`package`)
            assertNotNull("explicit component", intent.component)
        }
        assertEquals(SmsSentReceiver::class.java.name, shadowOf(s.sent[0]).savedIntent.component!!.className)
        assertEquals(SmsDeliveredReceiver::class.java.name, shadowOf(s.delivered[0]).savedIntent.component!!.className)
        assertEquals("distinct", all.size, all.map { shadowOf(it).savedIntent.dataString }.toSet().size)
    }

    /** What the platform does with a sent intent: an ordered broadcast whose result code is [code]. */
    private fun fireSent(s: Sent, code: Int) {
        for (pi in s.sent) {
            app.sendOrderedBroadcast(Intent(shadowOf(pi).savedIntent), null, null, null, code, null, null)
        }
        shadowOf(android.os.Looper.getMainLooper()).idle()
    }

    private fun fireDelivered(s: Sent, pdu: ByteArray) {
        for (pi in s.delivered) {
            val intent = Intent(shadowOf(pi).savedIntent).putExtra("pdu", pdu).putExtra("format", "3gpp")
            app.sendOrderedBroadcast(intent, null, null, null, Activity.RESULT_OK, null, null)
        }
        shadowOf(android.os.Looper.getMainLooper()).idle()
    }

    private fun smsReceived(pdus: List<ByteArray>, sub: Int? = null, slot: Int? = null): Intent =
        Intent(Telephony.Sms.Intents.SMS_RECEIVED_ACTION).setPackage(app.packageName).apply {
            putExtra("pdus", pdus.toTypedArray<Any>())
            putExtra("format", "3gpp")
            sub?.let { putExtra(SmsReceivedReceiver.EXTRA_SUBSCRIPTION_INDEX, it) }
            slot?.let { putExtra(SmsReceivedReceiver.EXTRA_SLOT_INDEX, it) }
        }

    private fun send(text: String): String {
        val (code, body) = relay.post("/v1/messages", JSONObject().put("to", JSONArray().put(to)).put("text", text))
        assertEquals(body.toString(), 202, code)
        return body.getString("id")
    }

    private fun state(id: String): String = relay.get("/v1/messages/$id").second.getString("state")

    private fun awaitState(id: String, want: String) {
        var last = ""
        await("message state $want") { last = state(id); last == want }
    }

    private fun awaitInbox(contains: String): JSONObject {
        val (code, item) = relay.get("/v1/inbox/wait?contains=$contains&timeout=20")
        assertEquals(item.toString(), 200, code)
        return item
    }

    private fun online(phoneId: String): Boolean {
        val items = relay.get("/v1/phones").second.getJSONArray("items")
        return (0 until items.length()).map { items.getJSONObject(it) }.single { it.getString("id") == phoneId }.getBoolean("online")
    }

    private fun await(what: String, done: () -> Boolean) = try {
        Background.idleUntil(what, 30, done)
    } catch (e: AssertionError) {
        // Say where things stand: the relay's messages and phones, the core's view.
        val h = CoreHolder.peek()
        val core = if (h != 0L) NativeCore.nativeStatus(h) else "no core"
        throw AssertionError(
            "${e.message}; relay messages ${relay.get("/v1/messages").second}; " +
                "phones ${relay.get("/v1/phones").second}; core $core",
        )
    }

    private companion object {
        const val API_KEY = "robolectric-test-key-0123456789"
        const val SUB = 3
    }
}
