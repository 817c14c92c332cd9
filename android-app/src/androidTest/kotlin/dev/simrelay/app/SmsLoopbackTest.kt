package dev.simrelay.app

import android.Manifest
import android.telephony.SmsManager
import androidx.test.ext.junit.runners.AndroidJUnit4
import androidx.test.platform.app.InstrumentationRegistry
import androidx.test.rule.GrantPermissionRule
import org.json.JSONObject
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.After
import org.junit.Before
import org.junit.Rule
import org.junit.Test
import org.junit.runner.RunWith

/**
 * On an emulator (or a phone with a SIM): the real SmsManager, SMS_RECEIVED receiver and
 * SubscriptionManager against the native core. An SMS sent to the device's own number comes
 * back through [SmsReceivedReceiver] into the core, where it becomes an event for the relay.
 *
 * Instrumentation arguments: `ownNumber` (default 15555215554, the first emulator on port
 * 5554; a phone needs its real number). See docs/android.md.
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
    private val ownNumber: String
        get() = InstrumentationRegistry.getArguments().getString("ownNumber") ?: "15555215554"

    private var handle = 0L

    @Before
    fun holdCore() {
        handle = CoreHolder.acquire(context)
    }

    @After
    fun releaseCore() {
        CoreHolder.release()
    }

    private fun status(): JSONObject = JSONObject(NativeCore.nativeStatus(handle))

    @Test
    fun theSimsOfTheDeviceReachTheCore() {
        val sims = Sims.read(context)
        assertTrue("an emulator has one SIM", sims.isNotEmpty())
        Sims.report(context, handle)
        val reported = status().getJSONArray("sims")
        assertEquals(sims.size, reported.length())
        assertEquals(sims[0].subId, reported.getJSONObject(0).getInt("sub_id"))
    }

    @Test
    fun anSmsToTheOwnNumberComesBackIntoTheCore() {
        val before = status().getInt("outbox")
        @Suppress("DEPRECATION") // getSystemService(SmsManager) needs API 31
        val sms = SmsManager.getDefault()
        sms.sendTextMessage(ownNumber, null, "simrelay loopback ${System.nanoTime()}", null, null)
        // The emulator's modem loops the SMS back; the receiver hands it to the core, which
        // queues an "incoming" event for the relay (unpaired here, so it stays in the outbox).
        val deadline = System.currentTimeMillis() + 60_000
        var outbox = before
        while (System.currentTimeMillis() < deadline) {
            outbox = status().getInt("outbox")
            if (outbox > before) break
            Thread.sleep(100)
        }
        assertTrue("incoming SMS reached the core (outbox $before -> $outbox)", outbox > before)
    }
}
