package dev.simrelay.app

import android.Manifest
import android.app.Application
import android.content.Intent
import android.provider.Telephony
import android.telephony.SmsManager
import org.json.JSONObject
import org.junit.After
import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertNotNull
import org.junit.Assert.assertNull
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.Shadows.shadowOf
import org.robolectric.annotation.Config

/**
 * Data SMS on the real framework (Robolectric) with the host library: a data send goes out
 * through `sendDataMessage` with the part's sent and delivery intents; a `DATA_SMS_RECEIVED`
 * broadcast reaches the core through the framework's own PDU handling (`getMessagesFromIntent`,
 * `SmsMessage.getPdu`), once however often it is repeated.
 */
@RunWith(RobolectricTestRunner::class)
@Config(sdk = [Sdks.OLD, Sdks.MID, Sdks.NEW])
class DataSmsTest {
    private val app: Application get() = RuntimeEnvironment.getApplication()

    @After
    fun released() {
        assertEquals("every core reference released", 0L, CoreHolder.peek())
    }

    @Test
    fun aDataSendUsesSendDataMessageWithThePartsIntents() {
        shadowOf(app).grantPermissions(Manifest.permission.SEND_SMS)
        val payload = byteArrayOf(0, 1, 0x7F, -128, -1)
        val cmd = CoreCommand.Send("d1", 2, 1, SUB, "+31628870634", "", 1, true, DataPayload(DataSmsReceivedReceiver.DATA_PORT, payload))
        assertEquals(1, SmsSender(app).send(cmd, 0L))
        val params = managers().firstNotNullOfOrNull { shadowOf(it).lastSentDataMessageParams }
        assertNotNull("sendDataMessage was called", params)
        assertEquals("+31628870634", params!!.destinationAddress)
        assertNull(params.scAddress)
        assertEquals(53739.toShort(), params.destinationPort)
        assertArrayEquals(payload, params.data)
        val sent = shadowOf(params.sentIntent).savedIntent
        assertEquals(SmsSentReceiver::class.java.name, sent.component!!.className)
        assertEquals(PartRef("d1", 2, 1, 0, 1).uri("sent"), sent.dataString)
        val delivered = shadowOf(params.deliveryIntent).savedIntent
        assertEquals(SmsDeliveredReceiver::class.java.name, delivered.component!!.className)
        assertEquals(0, delivered.getIntExtra(PartRef.PART, -1))
        assertEquals(1, delivered.getIntExtra(PartRef.PARTS, -1))
    }

    @Test
    fun aDataSmsReachesTheCoreThroughTheFrameworksPduHandling() {
        // SMS-DELIVER, no SMSC, TP-UDHI; from +15551234567; 8-bit data; SCTS 2026-12-03;
        // header: 16-bit ports, destination 53739 (0xD1EB); payload "hi!".
        val pdu = unhex("0044" + "0B915155214365F7" + "0004" + "62213050040000" + "0A" + "060504D1EBD1EB" + "686921")
        val before = outbox()
        app.sendBroadcast(dataSms(pdu))
        Background.idleUntil("data SMS recorded") { Background.handOffsDone() && CoreHolder.peek() == 0L }
        assertEquals("the core stored it", before + 1, outbox())
        // A repeat is stored once; a PDU the core cannot read stores nothing (and is logged).
        app.sendBroadcast(dataSms(pdu))
        app.sendBroadcast(dataSms(pdu.copyOf(20)))
        Background.idleUntil("broadcasts handled") { Background.handOffsDone() && CoreHolder.peek() == 0L }
        assertEquals(before + 1, outbox())
    }

    /**
     * `DATA_SMS_RECEIVED` as the platform sends it, less its `sms://localhost:<port>` data:
     * Robolectric registers manifest receivers by action only (AndroidTestEnvironment
     * `registerBroadcastReceivers` drops `<data>`), so an intent with data would match none.
     * The manifest's port filter is checked by scripts/android-stubs/check_manifest.py.
     */
    private fun dataSms(pdu: ByteArray): Intent =
        Intent(Telephony.Sms.Intents.DATA_SMS_RECEIVED_ACTION)
            .setPackage(app.packageName)
            .putExtra("pdus", arrayOf<Any>(pdu))
            .putExtra("format", "3gpp")

    private fun outbox(): Int = CoreHolder.with(app) { h -> JSONObject(NativeCore.nativeStatus(h)).getInt("outbox") }

    /** Every SmsManager instance the app used (SmsManager caches one per subscription). */
    private fun managers(): List<SmsManager> {
        val field = SmsManager::class.java.getDeclaredField("sSubInstances").apply { isAccessible = true }
        @Suppress("UNCHECKED_CAST")
        return synchronized(SmsManager::class.java) { (field.get(null) as Map<Any, SmsManager>).values.toList() }
    }

    private fun unhex(s: String) = ByteArray(s.length / 2) { s.substring(2 * it, 2 * it + 2).toInt(16).toByte() }

    private companion object {
        const val SUB = 3
    }
}
