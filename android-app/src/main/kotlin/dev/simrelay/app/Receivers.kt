package dev.simrelay.app

import android.app.Activity
import android.content.BroadcastReceiver
import android.content.Context
import android.content.Intent
import android.provider.Telephony
import android.telephony.SmsManager
import android.telephony.SubscriptionManager
import android.util.Log

/*
 * Manifest receivers. They only hand off: check the action, pull out primitives, pass them to
 * the core on a background thread (goAsync) and return. Being in the manifest, they also work
 * after the process died: they hold the core (CoreHolder) just long enough to record the
 * result durably. They never bring the relay link up (only the service's worker does); the
 * core reports what they recorded once the service runs.
 */

private const val TAG = "simrelay"

/** Runs [work] off the main thread, keeping the broadcast alive until it is done. */
private fun BroadcastReceiver.handOff(what: String, work: () -> Unit) {
    val pending = goAsync()
    Thread({
        try {
            work()
        } catch (e: RuntimeException) {
            Log.e(TAG, "$what: ${e.javaClass.simpleName}: ${e.message}")
        } finally {
            pending.finish()
        }
    }, "simrelay-$what").start()
}

private fun Intent.partRef(): PartRef? {
    val id = getStringExtra(PartRef.MESSAGE_ID) ?: return null
    return PartRef(
        id,
        getIntExtra(PartRef.IDX, -1),
        getIntExtra(PartRef.ATTEMPT, -1),
        getIntExtra(PartRef.PART, -1),
        getIntExtra(PartRef.PARTS, -1),
    )
}

/** A part's sent intent: result code (and radio error code) to the core. */
class SmsSentReceiver : BroadcastReceiver() {
    override fun onReceive(context: Context, intent: Intent) {
        if (intent.action != SmsSender.ACTION_SENT) return
        val ref = intent.partRef() ?: return
        val result = resultCode
        val errorCode = intent.getIntExtra("errorCode", NativeCore.NONE)
        if (result == SmsManager.RESULT_ERROR_LIMIT_EXCEEDED) Notices.limitExceeded(context)
        if (result != Activity.RESULT_OK) Log.w(TAG, "part not sent: result $result, error $errorCode")
        handOff("sent") {
            CoreHolder.with(context) { h ->
                NativeCore.nativeOnSent(
                    h, ref.messageId, ref.idx, ref.attempt, ref.part, ref.parts, result, errorCode,
                )
            }
        }
    }
}

/** A part's delivery intent: the raw status report to the core, which parses it. */
class SmsDeliveredReceiver : BroadcastReceiver() {
    override fun onReceive(context: Context, intent: Intent) {
        if (intent.action != SmsSender.ACTION_DELIVERED) return
        val ref = intent.partRef() ?: return
        val pdu = intent.getByteArrayExtra("pdu") ?: return
        val format = intent.getStringExtra("format") ?: "3gpp"
        handOff("delivered") {
            CoreHolder.with(context) { h ->
                NativeCore.nativeOnDelivered(h, ref.messageId, ref.idx, ref.attempt, ref.part, pdu, format)
            }
        }
    }
}

/** `SMS_RECEIVED`: the parts of one SMS, joined, to the core (which de-duplicates repeats). */
class SmsReceivedReceiver : BroadcastReceiver() {
    override fun onReceive(context: Context, intent: Intent) {
        if (intent.action != Telephony.Sms.Intents.SMS_RECEIVED_ACTION) return
        val messages = Telephony.Sms.Intents.getMessagesFromIntent(intent) ?: return
        if (messages.isEmpty()) return
        // An empty or alphanumeric sender ("BANK") is kept; the core stores an empty one as
        // "unknown". displayMessageBody resolves e-mail gateway and carrier-wrapped texts.
        val from = messages[0].displayOriginatingAddress ?: messages[0].originatingAddress ?: ""
        val body = messages.joinToString("") { it.displayMessageBody ?: it.messageBody ?: "" }
        val timestamp = messages[0].timestampMillis
        handOff("incoming") {
            val subId = subscriptionOf(context, intent)
            val paired = CoreHolder.with(context) { h ->
                NativeCore.nativeOnIncoming(h, subId, from, body, timestamp)
                isPaired(h)
            }
            // SMS broadcasts carry a temporary allowance to start a foreground service: bring
            // the relay link back if the app was killed.
            if (paired) RelayService.start(context)
        }
    }

    companion object {
        const val EXTRA_SUBSCRIPTION_INDEX = "android.telephony.extra.SUBSCRIPTION_INDEX"
        const val EXTRA_SLOT_INDEX = "android.telephony.extra.SLOT_INDEX"

        /**
         * The receiving subscription: the subscription extra (or its legacy name); failing
         * that, the SIM slot extra ("android.telephony.extra.SLOT_INDEX", legacy "slot" or
         * "phone") mapped to the subscription in that slot; [NativeCore.NONE] if neither.
         */
        fun subscriptionOf(context: Context, intent: Intent): Int {
            val sub = intent.getIntExtra(EXTRA_SUBSCRIPTION_INDEX, intent.getIntExtra("subscription", NativeCore.NONE))
            if (sub >= 0) return sub
            val slot = intent.getIntExtra(EXTRA_SLOT_INDEX, intent.getIntExtra("slot", intent.getIntExtra("phone", NativeCore.NONE)))
            if (slot < 0) return NativeCore.NONE
            return try {
                context.getSystemService(SubscriptionManager::class.java)
                    ?.getActiveSubscriptionInfoForSimSlotIndex(slot)?.subscriptionId ?: NativeCore.NONE
            } catch (e: SecurityException) {
                NativeCore.NONE // READ_PHONE_STATE not granted
            }
        }
    }
}

/**
 * `DATA_SMS_RECEIVED` for [DATA_PORT] (the manifest's filter): the raw PDUs to the core, which
 * parses sender, port and payload itself and de-duplicates repeats.
 */
class DataSmsReceivedReceiver : BroadcastReceiver() {
    override fun onReceive(context: Context, intent: Intent) {
        if (intent.action != Telephony.Sms.Intents.DATA_SMS_RECEIVED_ACTION) return
        val messages = Telephony.Sms.Intents.getMessagesFromIntent(intent) ?: return
        val pdus = messages.mapNotNull { it?.pdu }.toTypedArray()
        if (pdus.isEmpty()) return
        val format = intent.getStringExtra("format") ?: "3gpp"
        handOff("incoming-data") {
            val subId = SmsReceivedReceiver.subscriptionOf(context, intent)
            val paired = CoreHolder.with(context) { h ->
                NativeCore.nativeOnIncomingData(h, subId, pdus, format)
                isPaired(h)
            }
            if (paired) RelayService.start(context)
        }
    }

    companion object {
        /**
         * The application port data SMS are received on: SMS Gateway for Android's fixed
         * receive port, so senders written for it reach simrelay unchanged. Android filters by
         * port in the manifest only (no "all ports"): keep AndroidManifest.xml's
         * `android:port` equal to this.
         */
        const val DATA_PORT = 53739
    }
}

/** Boot or app update: start the relay service again, once the phone is paired. */
class BootReceiver : BroadcastReceiver() {
    override fun onReceive(context: Context, intent: Intent) {
        when (intent.action) {
            Intent.ACTION_BOOT_COMPLETED, Intent.ACTION_MY_PACKAGE_REPLACED ->
                handOff("boot") {
                    if (CoreHolder.with(context) { isPaired(it) }) RelayService.start(context)
                }
        }
    }
}

private fun isPaired(handle: Long): Boolean = StatusView.parse(NativeCore.nativeStatus(handle)).paired
