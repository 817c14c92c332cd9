package dev.simrelay.app

import org.json.JSONArray
import org.json.JSONObject
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Assumptions
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import java.lang.reflect.InvocationTargetException
import java.nio.file.Path
import java.util.concurrent.CompletableFuture
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit

/**
 * The host build of libsimrelay_jni.so driven through the app's own NativeCore.kt on a plain
 * JVM (run under -Xcheck:jni by scripts/check-android-host.sh).
 */
class NativeCoreTest {
    private fun config(dir: Path): String = JSONObject()
        .put("data_dir", dir.toString())
        .put("app_version", "host-test")
        .put("device_name", "JVM")
        .put("engine", JSONObject().put("parts_per_minute", 6000).put("jitter", 0.0))
        .toString()

    private inline fun <T> withCore(dir: Path, body: (Long) -> T): T {
        val h = NativeCore.nativeCreate(config(dir))
        try {
            return body(h)
        } finally {
            NativeCore.nativeDestroy(h)
        }
    }

    /** Calls a NativeCore method by reflection, so that null can be passed where Kotlin forbids it. */
    private fun callRaw(name: String, vararg args: Any?): Any? {
        val method = NativeCore::class.java.methods.single { it.name == name }
        try {
            return method.invoke(null, *args)
        } catch (e: InvocationTargetException) {
            throw e.targetException
        }
    }

    @Test
    fun `a new core reports an unpaired status and nothing to do`(@TempDir dir: Path) {
        withCore(dir) { h ->
            val status = JSONObject(NativeCore.nativeStatus(h))
            assertEquals("unpaired", status.getString("link"))
            assertEquals(0, status.getInt("queue_depth"))
            assertEquals(0, status.getInt("pending_commands"))
            assertEquals("host-test", status.getString("app_version"))
            assertNull(NativeCore.nativeNextCommand(h, 10), "no command: null after the timeout")
            NativeCore.nativeSetSims(h, SimEntry.toJson(listOf(SimEntry(7, 0, "Test"))))
            val sims = JSONObject(NativeCore.nativeStatus(h)).getJSONArray("sims")
            assertEquals(1, sims.length())
            assertEquals(7, sims.getJSONObject(0).getInt("sub_id"))
            assertEquals(listOf("#7 Test (0/${sims.getJSONObject(0).getInt("daily_cap")} today)"), StatusView.parse(NativeCore.nativeStatus(h)).sims)
        }
    }

    @Test
    fun `bad and freed handles throw instead of crashing`(@TempDir dir: Path) {
        assertThrows(IllegalStateException::class.java) { NativeCore.nativeStatus(0) }
        assertThrows(IllegalStateException::class.java) { NativeCore.nativeNextCommand(-1, 0) }
        assertThrows(IllegalStateException::class.java) { NativeCore.nativeDestroy(0) }
        val h = NativeCore.nativeCreate(config(dir))
        assertThrows(IllegalStateException::class.java) { NativeCore.nativeStatus(h + 1) }
        NativeCore.nativeDestroy(h)
        assertThrows(IllegalStateException::class.java) { NativeCore.nativeStatus(h) }
        assertThrows(IllegalStateException::class.java) { NativeCore.nativeOnIncoming(h, 1, "+15550001", "x", 0) }
        assertThrows(IllegalStateException::class.java) { NativeCore.nativeDestroy(h) }
    }

    @Test
    fun `bad input throws IllegalArgumentException and changes nothing`(@TempDir dir: Path) {
        assertThrows(IllegalArgumentException::class.java) { NativeCore.nativeCreate("{") }
        assertThrows(IllegalArgumentException::class.java) { NativeCore.nativeCreate("""{"data_dir":"$dir","colour":"red"}""") }
        assertThrows(IllegalArgumentException::class.java) {
            NativeCore.nativeCreate("""{"data_dir":"$dir","engine":{"parts_per_minute":0}}""")
        }
        assertThrows(IllegalArgumentException::class.java) { callRaw("nativeCreate", null) }
        withCore(dir) { h ->
            assertThrows(IllegalArgumentException::class.java) {
                NativeCore.nativeCreate(config(dir))
            }.also { assertTrue(it.message!!.contains("already open"), it.message) }
            assertThrows(IllegalArgumentException::class.java) { NativeCore.nativeSetSims(h, "[{]") }
            assertThrows(IllegalArgumentException::class.java) { NativeCore.nativeSetSims(h, """[{"sub_id":1}]""") }
            assertThrows(IllegalArgumentException::class.java) { NativeCore.nativeNextCommand(h, -1) }
            assertThrows(IllegalArgumentException::class.java) {
                NativeCore.nativeOnSent(h, "m", 0, 1, -1, 1, -1, NativeCore.NONE)
            }
            assertThrows(IllegalArgumentException::class.java) {
                NativeCore.nativeOnSent(h, "m", 0, 1, 2, 2, -1, NativeCore.NONE)
            }
            assertThrows(IllegalArgumentException::class.java) { callRaw("nativeOnIncoming", h, 1, null, "body", 0L) }
            assertThrows(IllegalArgumentException::class.java) { callRaw("nativeOnIncoming", h, 1, "+15550001", null, 0L) }
            assertThrows(IllegalArgumentException::class.java) {
                callRaw("nativeOnDelivered", h, "m", 0, 1, 0, null, "3gpp")
            }
            assertThrows(IllegalArgumentException::class.java) { callRaw("nativeOnSent", h, null, 0, 1, 0, 1, -1, -1) }
            assertThrows(IllegalArgumentException::class.java) { callRaw("nativePair", h, null, "CODE", null) }
            assertThrows(IllegalArgumentException::class.java) { NativeCore.nativePair(h, "http://127.0.0.1:1", "CODE", null) }
            assertThrows(IllegalArgumentException::class.java) { NativeCore.nativePair(h, "ws://127.0.0.1:1", " ", null) }
            assertThrows(IllegalArgumentException::class.java) { NativeCore.nativePair(h, "wss://127.0.0.1:1", "CODE", "abc") }
            val status = JSONObject(NativeCore.nativeStatus(h))
            assertEquals("unpaired", status.getString("link"))
            assertEquals(0, status.getInt("queue_depth"))
            assertEquals(0, status.getInt("outbox"), "no event came out of bad input")
            assertEquals(0, status.getJSONArray("sims").length())
        }
    }

    @Test
    fun `destroy releases a thread waiting for a command`(@TempDir dir: Path) {
        val h = NativeCore.nativeCreate(config(dir))
        val calling = CountDownLatch(1)
        val result = CompletableFuture<Any?>()
        Thread {
            calling.countDown()
            try {
                result.complete(NativeCore.nativeNextCommand(h, 60_000))
            } catch (e: Throwable) {
                result.complete(e)
            }
        }.start()
        calling.await()
        val started = System.nanoTime()
        NativeCore.nativeDestroy(h)
        val outcome = result.get(10, TimeUnit.SECONDS)
        val seconds = (System.nanoTime() - started) / 1e9
        assertTrue(seconds < 6, "waiter released in ${seconds}s")
        // The waiter was either inside the wait (CLOSED) or just too late (freed handle).
        assertTrue(
            outcome == NativeCore.CLOSED || outcome is IllegalStateException,
            "waiter got $outcome",
        )
    }

    @Test
    fun `a status report PDU built here matches the 3GPP test vector`() {
        assertEquals(
            "07911326040000F006D60B911326880736F4111011719551401110117195714000",
            hex(StatusReports.build("+31628870634", 0xD6, 0x00)),
        )
    }

    @Test
    fun `commands parse from the core's JSON`() {
        val send = CoreCommand.parse(
            """{"type":"send","message_id":"m1","idx":2,"attempt":3,"sim":5,"to":"+15550001","text":"hi","parts":1,"delivery_report":false}""",
        )
        assertEquals(CoreCommand.Send("m1", 2, 3, 5, "+15550001", "hi", 1, false), send)
        assertEquals(CoreCommand.RefreshSims, CoreCommand.parse("""{"type":"refresh_sims"}"""))
        assertEquals(CoreCommand.Closed, CoreCommand.parse(NativeCore.CLOSED))
        assertEquals(CoreCommand.Unknown("reboot"), CoreCommand.parse("""{"type":"reboot"}"""))
        val ref = (send as CoreCommand.Send).ref(0, 2)
        assertEquals("simrelay://sent/m1/2/3/0/2", ref.uri("sent"))
        assertTrue(ref.uri("sent") != send.ref(1, 2).uri("sent"), "one URI per part")
    }

    @Test
    fun `a message goes through the relay, the core and back as delivered, and an SMS comes in`(@TempDir dir: Path) {
        val (binary, why) = Relay.binary()
        if (binary == null) {
            System.err.println("SKIPPED end-to-end relay test: $why")
            Assumptions.abort<Unit>("relay binary missing: $why")
        }
        val to = "+31628870634"
        Relay.start(binary!!, dir.resolve("relay"), "test-key-0123456789").use { relay ->
            withCore(dir.resolve("phone")) { h ->
                val (status, pairing) = relay.post("/v1/pairing-codes", JSONObject())
                assertEquals(201, status, pairing.toString())
                val phoneId = NativeCore.nativePair(h, relay.wsUrl, pairing.getString("code"), null)
                assertTrue(phoneId.isNotEmpty())
                NativeCore.nativeSetSims(h, SimEntry.toJson(listOf(SimEntry(1, 0, "Host SIM"))))

                val (created, message) = relay.post(
                    "/v1/messages",
                    JSONObject().put("to", JSONArray().put(to)).put("text", "hello from the host test"),
                )
                assertEquals(202, created, message.toString())
                val id = message.getString("id")

                val cmd = nextSend(h)
                assertEquals(id, cmd.messageId)
                assertEquals(to, cmd.to)
                assertEquals("hello from the host test", cmd.text)
                assertEquals(1, cmd.sim)
                assertEquals(1, cmd.parts)
                NativeCore.nativeOnSent(h, cmd.messageId, cmd.idx, cmd.attempt, 0, 1, -1, NativeCore.NONE)
                NativeCore.nativeOnDelivered(
                    h, cmd.messageId, cmd.idx, cmd.attempt, 0, StatusReports.build(to, 0x2A, 0x00), "3gpp",
                )
                val delivered = awaitState(relay, id, "delivered")
                assertEquals(1, delivered.getJSONArray("recipients").getJSONObject(0).getInt("parts_delivered"))

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
                // A repeated broadcast (e.g. after a reboot) is the same SMS, not a second one.
                NativeCore.nativeOnIncoming(h, 1, "+4915550001234", "Your code is 482913", sentAt)
                assertEquals("online", JSONObject(NativeCore.nativeStatus(h)).getString("link"))
            }
        }
    }

    /** Pulls commands until a send arrives (bounded). */
    private fun nextSend(h: Long): CoreCommand.Send {
        val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30)
        while (System.nanoTime() < deadline) {
            val json = NativeCore.nativeNextCommand(h, 1_000) ?: continue
            val cmd = CoreCommand.parse(json)
            if (cmd is CoreCommand.Send) return cmd
        }
        throw AssertionError("no send command within 30 s: ${NativeCore.nativeStatus(h)}")
    }

    /** Polls the relay's view of a message until it reaches [state] (bounded). */
    private fun awaitState(relay: Relay, id: String, state: String): JSONObject {
        val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30)
        var last: JSONObject? = null
        while (System.nanoTime() < deadline) {
            val (code, view) = relay.get("/v1/messages/$id")
            assertEquals(200, code, view.toString())
            last = view
            if (view.getString("state") == state) return view
            Thread.sleep(20)
        }
        assertNotNull(last)
        throw AssertionError("message never reached $state: $last")
    }

    private fun hex(bytes: ByteArray) = bytes.joinToString("") { "%02X".format(it) }
}

/** SMS-STATUS-REPORT PDUs (3GPP TS 23.040 9.2.2.3) as a delivery intent's "pdu" extra carries them. */
object StatusReports {
    /** With the SMSC, times and layout of the ATLib test vector; [to] as the recipient address. */
    fun build(to: String, messageRef: Int, status: Int): ByteArray {
        val out = java.io.ByteArrayOutputStream()
        out.write(hexBytes("07911326040000F0")) // SMSC +31624000000
        out.write(0x06) // first octet: TP-MTI status report, TP-SRQ
        out.write(messageRef)
        val digits = to.removePrefix("+")
        out.write(digits.length)
        out.write(if (to.startsWith("+")) 0x91 else 0x81)
        out.write(semiOctets(digits))
        out.write(hexBytes("11101171955140")) // TP-SCTS 2011-01-11 17:59:15 +01:00
        out.write(hexBytes("11101171957140")) // TP-DT   2011-01-11 17:59:17 +01:00
        out.write(status) // TP-ST
        return out.toByteArray()
    }

    private fun semiOctets(digits: String): ByteArray {
        val padded = if (digits.length % 2 == 1) digits + "F" else digits
        return ByteArray(padded.length / 2) { i ->
            val lo = padded[2 * i].digitToInt(16)
            val hi = padded[2 * i + 1].digitToInt(16)
            ((hi shl 4) or lo).toByte()
        }
    }

    private fun hexBytes(s: String) = ByteArray(s.length / 2) { s.substring(2 * it, 2 * it + 2).toInt(16).toByte() }
}
