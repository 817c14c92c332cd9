package dev.simrelay.app

import android.app.Activity
import android.content.BroadcastReceiver
import android.content.Context
import android.content.Intent
import android.provider.Telephony
import android.telephony.SmsManager
import android.util.Log

/*
 * Manifest receivers. They only hand off: check the action, pull out primitives, pass them to
 * the core on a background thread (goAsync) and return. Being in the manifest, they also work
 * after the process died: CoreHolder starts the core in the new process.
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
            NativeCore.nativeOnSent(
                CoreHolder.get(context), ref.messageId, ref.idx, ref.attempt, ref.part, ref.parts, result, errorCode,
            )
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
            NativeCore.nativeOnDelivered(CoreHolder.get(context), ref.messageId, ref.idx, ref.attempt, ref.part, pdu, format)
        }
    }
}

/** `SMS_RECEIVED`: the parts of one SMS, joined, to the core (which de-duplicates repeats). */
class SmsReceivedReceiver : BroadcastReceiver() {
    override fun onReceive(context: Context, intent: Intent) {
        if (intent.action != Telephony.Sms.Intents.SMS_RECEIVED_ACTION) return
        val messages = Telephony.Sms.Intents.getMessagesFromIntent(intent) ?: return
        if (messages.isEmpty()) return
        val from = messages[0].displayOriginatingAddress ?: return
        val body = messages.joinToString("") { it.messageBody ?: "" }
        val timestamp = messages[0].timestampMillis
        val subId = intent.getIntExtra(EXTRA_SUBSCRIPTION_INDEX, intent.getIntExtra("subscription", NativeCore.NONE))
        handOff("incoming") {
            val handle = CoreHolder.get(context)
            NativeCore.nativeOnIncoming(handle, subId, from, body, timestamp)
            // SMS broadcasts carry a temporary allowance to start a foreground service: bring
            // the relay link back if the app was killed.
            startIfPaired(context, handle)
        }
    }

    private companion object {
        const val EXTRA_SUBSCRIPTION_INDEX = "android.telephony.extra.SUBSCRIPTION_INDEX"
    }
}

/** Boot or app update: start the relay service again, once the phone is paired. */
class BootReceiver : BroadcastReceiver() {
    override fun onReceive(context: Context, intent: Intent) {
        when (intent.action) {
            Intent.ACTION_BOOT_COMPLETED, Intent.ACTION_MY_PACKAGE_REPLACED ->
                handOff("boot") { startIfPaired(context, CoreHolder.get(context)) }
        }
    }
}

private fun startIfPaired(context: Context, handle: Long) {
    if (StatusView.parse(NativeCore.nativeStatus(handle)).paired) RelayService.start(context)
}
