package dev.simrelay.app

import android.app.PendingIntent
import android.content.Context
import android.content.Intent
import android.net.Uri
import android.os.Build
import android.telephony.SmsManager
import android.util.Log

/**
 * Performs a [CoreCommand.Send]: the subscription's [SmsManager], `divideMessage`, and
 * `sendMultipartTextMessage` with one sent and one delivery PendingIntent per part (a data SMS:
 * `sendDataMessage` with the same intents for its single part). The
 * intents are explicit (component and package), mutable (the platform adds the result
 * extras: "errorCode", "pdu", "format") and distinct per part (data URI).
 */
class SmsSender(private val context: Context) {
    /** Hands the text (or the data SMS) to the radio; returns the device's part count. */
    fun send(cmd: CoreCommand.Send, handle: Long): Int {
        val sms = smsManager(cmd.sim)
        if (cmd.data != null) return sendData(sms, cmd, cmd.data, handle)
        val parts = sms.divideMessage(cmd.text)
        val sent = ArrayList<PendingIntent>(parts.size)
        val delivered = ArrayList<PendingIntent>(parts.size)
        for (i in parts.indices) {
            val ref = cmd.ref(i, parts.size)
            sent.add(pending(ACTION_SENT, SmsSentReceiver::class.java, ref))
            if (cmd.deliveryReport) delivered.add(pending(ACTION_DELIVERED, SmsDeliveredReceiver::class.java, ref))
        }
        try {
            sms.sendMultipartTextMessage(cmd.to, null, parts, sent, if (cmd.deliveryReport) delivered else null)
        } catch (e: RuntimeException) {
            // Refused before reaching the radio (no permission, bad address): every part failed.
            Log.w(TAG, "send refused: ${e.javaClass.simpleName}")
            for (i in parts.indices) {
                NativeCore.nativeOnSent(
                    handle, cmd.messageId, cmd.idx, cmd.attempt, i, parts.size,
                    SmsManager.RESULT_ERROR_GENERIC_FAILURE, NativeCore.NONE,
                )
            }
        }
        return parts.size
    }

    /**
     * A data SMS: one PDU (`sendDataMessage` never segments), one sent and one delivery intent
     * named as part 0 of 1. The port goes as a Short; Android takes it as unsigned (& 0xFFFF).
     */
    private fun sendData(sms: SmsManager, cmd: CoreCommand.Send, data: DataPayload, handle: Long): Int {
        val ref = cmd.ref(0, 1)
        val sent = pending(ACTION_SENT, SmsSentReceiver::class.java, ref)
        val delivered = if (cmd.deliveryReport) pending(ACTION_DELIVERED, SmsDeliveredReceiver::class.java, ref) else null
        try {
            sms.sendDataMessage(cmd.to, null, data.port.toShort(), data.payload, sent, delivered)
        } catch (e: RuntimeException) {
            Log.w(TAG, "data send refused: ${e.javaClass.simpleName}")
            NativeCore.nativeOnSent(
                handle, cmd.messageId, cmd.idx, cmd.attempt, 0, 1,
                SmsManager.RESULT_ERROR_GENERIC_FAILURE, NativeCore.NONE,
            )
        }
        return 1
    }

    private fun smsManager(subId: Int): SmsManager =
        if (Build.VERSION.SDK_INT >= 31) {
            context.getSystemService(SmsManager::class.java).createForSubscriptionId(subId)
        } else {
            @Suppress("DEPRECATION")
            SmsManager.getSmsManagerForSubscriptionId(subId)
        }

    private fun pending(action: String, receiver: Class<*>, ref: PartRef): PendingIntent {
        val intent = Intent(action)
            .setClass(context, receiver)
            .setPackage(context.packageName)
            .setData(Uri.parse(ref.uri(if (action == ACTION_SENT) "sent" else "delivered")))
            .putExtra(PartRef.MESSAGE_ID, ref.messageId)
            .putExtra(PartRef.IDX, ref.idx)
            .putExtra(PartRef.ATTEMPT, ref.attempt)
            .putExtra(PartRef.PART, ref.part)
            .putExtra(PartRef.PARTS, ref.parts)
        val mutable = if (Build.VERSION.SDK_INT >= 31) PendingIntent.FLAG_MUTABLE else 0
        // Not FLAG_ONE_SHOT: a delivery intent fires again for each temporary status report.
        return PendingIntent.getBroadcast(context, ref.hashCode(), intent, mutable or PendingIntent.FLAG_UPDATE_CURRENT)
    }

    companion object {
        private const val TAG = "simrelay"
        const val ACTION_SENT = "dev.simrelay.app.SMS_SENT"
        const val ACTION_DELIVERED = "dev.simrelay.app.SMS_DELIVERED"
    }
}
