package dev.simrelay.app

import org.json.JSONArray
import org.json.JSONObject
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Assumptions
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import java.io.File
import java.nio.file.Path
import java.util.concurrent.TimeUnit

/**
 * The whole path on the host: a real relay (`simrelay serve` on 127.0.0.1:0), the host build
 * of libsimrelay_jni.so behind NativeCore.kt, and this test playing the radio with the same
 * calls the Android receivers make. Skips (loudly) only when the relay binary is missing.
 */
class RelayEndToEndTest {
    private val to = "+31628870634"

    private fun relayBinary(): File {
        val (binary, why) = Relay.binary()
        if (binary == null) {
            System.err.println("SKIPPED end-to-end relay test: $why")
            Assumptions.abort<Unit>("relay binary missing: $why")
        }
        return binary!!
    }

    private fun config(dir: Path): String = JSONObject()
        .put("data_dir", dir.toString())
        .put("device_name", "JVM")
        .put("engine", JSONObject().put("parts_per_minute", 6000).put("jitter", 0.0))
        .toString()

    /** A core paired with [relay] and one SIM (sub id 1), destroyed after [body]. */
    private fun <T> pairedCore(relay: Relay, dir: Path, body: (Long) -> T): T {
        val h = NativeCore.nativeCreate(config(dir))
        try {
            val (status, pairing) = relay.post("/v1/pairing-codes", JSONObject())
            assertEquals(201, status, pairing.toString())
            val phoneId = NativeCore.nativePair(h, relay.wsUrl, pairing.getString("code"), relay.fingerprint, 0)
            assertTrue(phoneId.isNotEmpty())
            // Paired but no worker yet: the link waits (see the test of the paused core below).
            assertEquals("paused", JSONObject(NativeCore.nativeStatus(h)).getString("link"))
            NativeCore.nativeSetSims(h, SimEntry.toJson(listOf(SimEntry(1, 0, "Host SIM"))))
            NativeCore.nativeSetWorker(h, true)
            return body(h)
        } finally {
            NativeCore.nativeDestroy(h)
        }
    }

    private fun send(relay: Relay, text: String): String {
        val (created, message) = relay.post(
            "/v1/messages",
            JSONObject().put("to", JSONArray().put(to)).put("text", text),
        )
        assertEquals(202, created, message.toString())
        return message.getString("id")
    }

    @Test
    fun `a message goes through the relay, the core and back as delivered, and an SMS comes in`(@TempDir dir: Path) {
        Relay.start(relayBinary(), dir.resolve("relay"), API_KEY).use { relay ->
            pairedCore(relay, dir.resolve("phone")) { h ->
                val id = send(relay, "hello from the host test")
                val cmd = nextSends(h, 1).single()
                assertEquals(id, cmd.messageId)
                assertEquals(to, cmd.to)
                assertEquals("hello from the host test", cmd.text)
                assertEquals(1, cmd.sim)
                assertEquals(1, cmd.parts)
                NativeCore.nativeOnSent(h, cmd.messageId, cmd.idx, cmd.attempt, 0, 1, RESULT_OK, NativeCore.NONE)
                NativeCore.nativeOnDelivered(
                    h, cmd.messageId, cmd.idx, cmd.attempt, 0, StatusReports.build(to, 0x2A, 0x00), "3gpp",
                )
                val delivered = awaitState(relay, id, "delivered")
                assertEquals(1, recipient(delivered).getInt("parts_delivered"))

                val sentAt = System.currentTimeMillis() - 5_000
                NativeCore.nativeOnIncoming(h, 1, "+4915550001234", "Your code is 482913", sentAt)
                val (waited, item) = relay.get("/v1/inbox/wait?contains=482913&timeout=20")
                assertEquals(200, waited, item.toString())
                assertEquals("+4915550001234", item.getString("from"))
                assertEquals("Your code is 482913", item.getString("text"))
                val (listed, inbox) = relay.get("/v1/inbox")
                assertEquals(200, listed)
                val items = inbox.getJSONArray("items")
                assertTrue((0 until items.length()).any { items.getJSONObject(it).getString("id") == item.getString("id") })
                assertEquals("online", JSONObject(NativeCore.nativeStatus(h)).getString("link"))
            }
        }
    }

    @Test
    fun `a two-part message is delivered only with both reports, and a permanent error fails a message`(@TempDir dir: Path) {
        Relay.start(relayBinary(), dir.resolve("relay"), API_KEY).use { relay ->
            pairedCore(relay, dir.resolve("phone")) { h ->
                val long = send(relay, "x".repeat(200)) // GSM-7: 153 + 47 septets, two parts
                val short = send(relay, "this one is rejected by the network")
                val cmds = nextSends(h, 2).associateBy { it.messageId }
                val two = cmds.getValue(long)
                assertEquals(2, two.parts)
                for (part in 0..1) {
                    NativeCore.nativeOnSent(h, two.messageId, two.idx, two.attempt, part, 2, RESULT_OK, NativeCore.NONE)
                }
                NativeCore.nativeOnDelivered(h, two.messageId, two.idx, two.attempt, 0, StatusReports.build(to, 1, 0), "3gpp")
                // Each call commits before it returns: the recipient still waits for part 2.
                assertEquals(1, JSONObject(NativeCore.nativeStatus(h)).getInt("awaiting_reports"))
                NativeCore.nativeOnDelivered(h, two.messageId, two.idx, two.attempt, 1, StatusReports.build(to, 2, 0), "3gpp")
                assertEquals(0, JSONObject(NativeCore.nativeStatus(h)).getInt("awaiting_reports"))
                val delivered = awaitState(relay, long, "delivered")
                assertEquals(2, recipient(delivered).getInt("parts_delivered"))

                val one = cmds.getValue(short)
                // SmsManager.RESULT_NETWORK_REJECT (10): permanent, no retry.
                NativeCore.nativeOnSent(h, one.messageId, one.idx, one.attempt, 0, 1, 10, 42)
                val failed = awaitState(relay, short, "failed")
                assertEquals("failed", recipient(failed).getString("state"))
            }
        }
    }

    @Test
    fun `a paired core without a worker stays offline on the relay and reports what it recorded once attached`(@TempDir dir: Path) {
        Relay.start(relayBinary(), dir.resolve("relay"), API_KEY).use { relay ->
            val h = NativeCore.nativeCreate(config(dir.resolve("phone")))
            try {
                val (_, pairing) = relay.post("/v1/pairing-codes", JSONObject())
                val phoneId = NativeCore.nativePair(h, relay.wsUrl, pairing.getString("code"), relay.fingerprint, 0)
                NativeCore.nativeSetSims(h, SimEntry.toJson(listOf(SimEntry(1, 0, "Host SIM"))))
                // A receiver's core: records an incoming SMS, never goes online.
                NativeCore.nativeOnIncoming(h, 1, "BANK", "recorded while paused 771", 0)
                assertEquals("paused", JSONObject(NativeCore.nativeStatus(h)).getString("link"))
                assertEquals(false, phoneOnline(relay, phoneId))
                val id = send(relay, "waits for a phone with a worker")
                assertNull(NativeCore.nativeNextCommand(h, 200), "no work reaches a core without a worker")
                // The service's worker attaches: the link comes up, the message arrives, the
                // recorded SMS reaches the inbox.
                NativeCore.nativeSetWorker(h, true)
                assertEquals(id, nextSends(h, 1).single().messageId)
                val (waited, item) = relay.get("/v1/inbox/wait?contains=771&timeout=20")
                assertEquals(200, waited, item.toString())
                assertEquals("BANK", item.getString("from"))
                // Detached again: the relay sees the phone go offline.
                NativeCore.nativeSetWorker(h, false)
                val deadline = System.nanoTime() + 20_000_000_000L
                while (phoneOnline(relay, phoneId) && System.nanoTime() < deadline) Thread.onSpinWait()
                assertEquals(false, phoneOnline(relay, phoneId))
            } finally {
                NativeCore.nativeDestroy(h)
            }
        }
    }

    private fun phoneOnline(relay: Relay, phoneId: String): Boolean {
        val (status, phones) = relay.get("/v1/phones")
        assertEquals(200, status, phones.toString())
        val items = phones.getJSONArray("items")
        return (0 until items.length()).map { items.getJSONObject(it) }
            .single { it.getString("id") == phoneId }.getBoolean("online")
    }

    @Test
    fun `pairing over wss checks the relay's certificate pin`(@TempDir dir: Path) {
        Relay.start(relayBinary(), dir.resolve("relay"), API_KEY, tls = true).use { relay ->
            assertTrue(relay.wsUrl.startsWith("wss://"), relay.wsUrl)
            val h = NativeCore.nativeCreate(config(dir.resolve("phone")))
            try {
                val (_, pairing) = relay.post("/v1/pairing-codes", JSONObject())
                val code = pairing.getString("code")
                assertThrows(RuntimeException::class.java) { NativeCore.nativePair(h, relay.wsUrl, code, "0".repeat(64), 0) }
                assertThrows(RuntimeException::class.java) { NativeCore.nativePair(h, relay.wsUrl, code, null, 0) }
                assertEquals("unpaired", JSONObject(NativeCore.nativeStatus(h)).getString("link"), "a refused pairing stores nothing")
                // The TLS handshake failed before the code was sent, so it is still good.
                NativeCore.nativePair(h, relay.wsUrl, code, relay.fingerprint, 2)
                NativeCore.nativeSetWorker(h, true)
                awaitLink(h, "online")
            } finally {
                NativeCore.nativeDestroy(h)
            }
        }
    }

    /** Pulls commands until [n] sends arrived (bounded). */
    private fun nextSends(h: Long, n: Int): List<CoreCommand.Send> {
        val sends = mutableListOf<CoreCommand.Send>()
        val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30)
        while (sends.size < n && System.nanoTime() < deadline) {
            val json = NativeCore.nativeNextCommand(h, 1_000) ?: continue
            val cmd = CoreCommand.parse(json)
            if (cmd is CoreCommand.Send) sends.add(cmd)
        }
        if (sends.size < n) throw AssertionError("${sends.size} of $n send commands in 30 s: ${NativeCore.nativeStatus(h)}")
        return sends
    }

    private fun recipient(view: JSONObject) = view.getJSONArray("recipients").getJSONObject(0)

    /** Polls the relay's view of a message until it reaches [state] (bounded). */
    private fun awaitState(relay: Relay, id: String, state: String): JSONObject =
        awaitMessage(relay, id, "state $state") { it.getString("state") == state }

    /** Polls the relay's view of a message until [done] holds (bounded). */
    private fun awaitMessage(relay: Relay, id: String, what: String, done: (JSONObject) -> Boolean): JSONObject {
        val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30)
        var last = JSONObject()
        while (System.nanoTime() < deadline) {
            val (code, view) = relay.get("/v1/messages/$id")
            assertEquals(200, code, view.toString())
            last = view
            if (done(view)) return view
            Thread.sleep(20)
        }
        throw AssertionError("message never reached $what: $last")
    }

    /** Polls the core's link state until [state] (bounded). */
    private fun awaitLink(h: Long, state: String) {
        val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30)
        var last = ""
        while (System.nanoTime() < deadline) {
            last = NativeCore.nativeStatus(h)
            if (JSONObject(last).getString("link") == state) return
            Thread.sleep(20)
        }
        throw AssertionError("link never $state: $last")
    }

    private companion object {
        const val API_KEY = "test-key-0123456789abcdef"
        /** android.app.Activity.RESULT_OK, the sent intent's success code. */
        const val RESULT_OK = -1
    }
}
