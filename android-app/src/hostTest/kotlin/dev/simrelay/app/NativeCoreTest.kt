package dev.simrelay.app

import org.json.JSONObject
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
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
            assertThrows(IllegalArgumentException::class.java) { callRaw("nativePair", h, null, "CODE", null, 0) }
            assertThrows(IllegalArgumentException::class.java) { NativeCore.nativePair(h, "http://127.0.0.1:1", "CODE", null, 0) }
            assertThrows(IllegalArgumentException::class.java) { NativeCore.nativePair(h, "ws://127.0.0.1:1", " ", null, 0) }
            assertThrows(IllegalArgumentException::class.java) { NativeCore.nativePair(h, "wss://127.0.0.1:1", "CODE", "abc", 0) }
            for (bad in listOf(-1, 17)) {
                val e = assertThrows(IllegalArgumentException::class.java) { NativeCore.nativePair(h, "ws://127.0.0.1:1", "CODE", null, bad) }
                assertTrue(e.message!!.contains("maxLinks"), e.message)
            }
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
    fun `calls racing a destroy either finish or see a freed handle`(@TempDir dir: Path) {
        val h = NativeCore.nativeCreate(config(dir))
        val started = CountDownLatch(4)
        val outcomes = (0 until 4).map { t ->
            CompletableFuture<Throwable?>().also { done ->
                Thread {
                    started.countDown()
                    try {
                        for (i in 0 until 100_000) {
                            if (t % 2 == 0) {
                                NativeCore.nativeOnIncoming(h, 1, "+1555000$t", "race $t/$i", 0)
                            } else {
                                JSONObject(NativeCore.nativeStatus(h))
                            }
                        }
                        done.complete(AssertionError("never saw the destroy"))
                    } catch (e: Throwable) {
                        done.complete(e)
                    }
                }.start()
            }
        }
        started.await()
        NativeCore.nativeDestroy(h)
        for (outcome in outcomes) {
            val e = outcome.get(10, TimeUnit.SECONDS)
            // Freed handle, or (inside a call while the core closed) the core's "shut down".
            assertTrue(e is IllegalStateException, "unexpected: $e")
        }
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
    fun `data sends parse with their port and payload`() {
        val send = CoreCommand.parse(
            """{"type":"send","message_id":"d1","idx":0,"attempt":1,"sim":5,"to":"+15550001","text":"","parts":1,
               "delivery_report":true,"data":{"port":53739,"payload":"AAH/"}}""",
        ) as CoreCommand.Send
        assertEquals(DataPayload(53739, byteArrayOf(0, 1, -1)), send.data)
        assertEquals(53739.toShort(), send.data!!.port.toShort(), "the Short sendDataMessage takes")
        assertNull((CoreCommand.parse("""{"type":"send","message_id":"m","idx":0,"attempt":1,"sim":1,"to":"+1","text":"t","parts":1}""") as CoreCommand.Send).data)
        assertTrue(!send.toString().contains("AAH"), "no payload in logs: $send")
    }

    @Test
    fun `an incoming data PDU reaches the outbox and bad ones throw`(@TempDir dir: Path) {
        // SMS-DELIVER, no SMSC, UDHI; from +15551234567; 8-bit data; port 53739 (0xD1EB); "hi!".
        val pdu = unhex("0044" + "0B915155214365F7" + "0004" + "62213050040000" + "0A" + "060504D1EBD1EB" + "686921")
        withCore(dir) { h ->
            val before = JSONObject(NativeCore.nativeStatus(h)).getInt("outbox")
            NativeCore.nativeOnIncomingData(h, 1, arrayOf(pdu), "3gpp")
            NativeCore.nativeOnIncomingData(h, 1, arrayOf(pdu), "3gpp") // a repeat: stored once
            assertEquals(before + 1, JSONObject(NativeCore.nativeStatus(h)).getInt("outbox"))
            assertThrows(IllegalArgumentException::class.java) {
                NativeCore.nativeOnIncomingData(h, 1, arrayOf(pdu.copyOf(12)), "3gpp")
            }
            assertThrows(IllegalArgumentException::class.java) { NativeCore.nativeOnIncomingData(h, 1, arrayOf(pdu), "3gpp2") }
            assertThrows(IllegalArgumentException::class.java) { callRaw("nativeOnIncomingData", h, 1, null, "3gpp") }
            assertThrows(IllegalArgumentException::class.java) { callRaw("nativeOnIncomingData", h, 1, arrayOf<ByteArray?>(null), "3gpp") }
            assertEquals(before + 1, JSONObject(NativeCore.nativeStatus(h)).getInt("outbox"), "bad PDUs store nothing")
        }
    }

    private fun unhex(s: String) = ByteArray(s.length / 2) { s.substring(2 * it, 2 * it + 2).toInt(16).toByte() }

    private fun hex(bytes: ByteArray) = bytes.joinToString("") { "%02X".format(it) }
}
