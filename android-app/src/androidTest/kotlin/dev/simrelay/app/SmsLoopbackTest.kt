package dev.simrelay.app

import android.Manifest
import androidx.test.ext.junit.runners.AndroidJUnit4
import androidx.test.platform.app.InstrumentationRegistry
import androidx.test.rule.GrantPermissionRule
import org.json.JSONArray
import org.json.JSONObject
import org.junit.After
import org.junit.Assert.assertEquals
import org.junit.Assert.assertNotNull
import org.junit.Assert.assertTrue
import org.junit.Before
import org.junit.Rule
import org.junit.Test
import org.junit.runner.RunWith
import java.net.HttpURLConnection
import java.net.URL

/**
 * On an emulator (or a phone with a SIM), the real path end to end: the app pairs with a relay
 * running on the development machine, its service pulls the relay's send, the app's
 * [SmsSender] hands it to the radio with real PendingIntents addressed to the device's own
 * number, [SmsSentReceiver] and [SmsDeliveredReceiver] feed the results into the core (the
 * relay shows `sent`, then `delivered` when the network reports), and the looped-back SMS comes
 * in through [SmsReceivedReceiver]: the relay's inbox shows it with the device's number as
 * sender, the body, and the SIM's subscription id.
 *
 * Instrumentation arguments (docs/android.md): `relayHttp` (the relay's HTTP base as the
 * emulator sees it, e.g. http://10.0.2.2:8080), `apiKey`, `ownNumber` (default 15555215554,
 * the first emulator on console port 5554; a phone needs its real number).
 */
@RunWith(AndroidJUnit4::class)
class SmsLoopbackTest {
    @get:Rule
    val permissions: GrantPermissionRule = GrantPermissionRule.grant(
        Manifest.permission.SEND_SMS,
        Manifest.permission.RECEIVE_SMS,
        Manifest.permission.READ_PHONE_STATE,
    )

    private val context get() = InstrumentationRegistry.getInstrumentation().targetContext
    private val args get() = InstrumentationRegistry.getArguments()
    private val ownNumber: String get() = args.getString("ownNumber") ?: "15555215554"
    private val relayHttp: String
        get() = args.getString("relayHttp")
            ?: throw AssertionError("pass -Pandroid.testInstrumentationRunnerArguments.relayHttp=http://10.0.2.2:<port> (docs/android.md)")
    private val apiKey: String
        get() = args.getString("apiKey")
            ?: throw AssertionError("pass -Pandroid.testInstrumentationRunnerArguments.apiKey=<key> (docs/android.md)")

    @Before
    fun stopped() {
        RelayService.stop(context)
    }

    @After
    fun stop() {
        RelayService.stop(context)
    }

    @Test
    fun theSimsOfTheDeviceReachTheCore() {
        val sims = Sims.read(context)
        assertTrue("an emulator has one SIM", sims.isNotEmpty())
        CoreHolder.with(context) { h ->
            Sims.report(context, h)
            val reported = JSONObject(NativeCore.nativeStatus(h)).getJSONArray("sims")
            assertEquals(sims.size, reported.length())
            assertEquals(sims[0].subId, reported.getJSONObject(0).getInt("sub_id"))
        }
    }

    @Test
    fun anSmsFromTheRelayToTheOwnNumberIsSentDeliveredAndComesBack() {
        val sim = Sims.read(context).firstOrNull()
        assertNotNull("a SIM", sim)
        val (created, pairing) = http("POST", "/v1/pairing-codes", JSONObject())
        assertEquals(pairing.toString(), 201, created)
        val wsUrl = relayHttp.replaceFirst("http", "ws")
        val paired = Pairing.pair(context, wsUrl, pairing.getString("code"), null)
        assertNotNull(paired.message, paired.phoneId)
        assertTrue("service started", RelayService.start(context))

        val marker = "simrelay loopback ${System.nanoTime() % 1_000_000_000}"
        val (accepted, message) = http(
            "POST", "/v1/messages",
            JSONObject().put("to", JSONArray().put(ownNumber)).put("text", marker),
        )
        assertEquals(message.toString(), 202, accepted)
        val id = message.getString("id")
        // SmsSender -> radio -> SmsSentReceiver -> core -> relay.
        awaitState(id, setOf("sent", "delivered"))
        // The emulator's modem reports delivery: SmsDeliveredReceiver parses nothing, the core does.
        awaitState(id, setOf("delivered"))
        // The loop back: SmsReceivedReceiver -> core -> relay inbox.
        val (found, sms) = http("GET", "/v1/inbox/wait?contains=${marker.substringAfterLast(' ')}&timeout=60", null)
        assertEquals(sms.toString(), 200, found)
        assertTrue("sender ${sms.getString("from")}", sms.getString("from").endsWith(ownNumber.takeLast(7)))
        assertEquals(marker, sms.getString("text"))
        assertEquals(sim!!.subId, sms.getInt("sim"))
    }

    private fun awaitState(id: String, want: Set<String>) {
        val deadline = System.currentTimeMillis() + 120_000
        var last = ""
        while (System.currentTimeMillis() < deadline) {
            last = http("GET", "/v1/messages/$id", null).second.getString("state")
            if (last in want) return
            Thread.sleep(250)
        }
        throw AssertionError("message $id is $last, not one of $want")
    }

    private fun http(method: String, path: String, body: JSONObject?): Pair<Int, JSONObject> {
        val c = URL(relayHttp + path).openConnection() as HttpURLConnection
        c.requestMethod = method
        c.connectTimeout = 10_000
        c.readTimeout = 90_000
        c.setRequestProperty("Authorization", "Bearer $apiKey")
        if (body != null) {
            c.doOutput = true
            c.setRequestProperty("Content-Type", "application/json")
            c.outputStream.use { it.write(body.toString().toByteArray()) }
        }
        val code = c.responseCode
        val text = (if (code < 400) c.inputStream else c.errorStream)?.bufferedReader()?.use { it.readText() } ?: ""
        return code to JSONObject(text.ifBlank { "{}" })
    }
}
