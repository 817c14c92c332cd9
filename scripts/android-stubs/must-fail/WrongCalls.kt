// Calls that are wrong for Android API 36. The host check compiles this file against the
// generated stubs and requires an error on every line marked "must fail": proof that the
// stubs reject wrong names, arities and types rather than accepting anything.
package simrelay.mustfail

import android.app.PendingIntent
import android.content.Context
import android.content.Intent
import android.telephony.SmsManager
import android.telephony.SubscriptionManager

fun wrongName(sms: SmsManager) = sms.sendTextMessages("1", null, "x", null, null) // must fail

fun missingFlags(c: Context, i: Intent) = PendingIntent.getBroadcast(c, 0, i) // must fail

fun wrongReturnType(sms: SmsManager): String = sms.divideMessage("x") // must fail

fun wrongParameterType(sms: SmsManager) = sms.createForSubscriptionId("1") // must fail

fun wrongFieldType(): Int = Intent.ACTION_BOOT_COMPLETED // must fail

fun noSuchClass(c: Context) = c.getSystemService(SubscriptionManagers::class.java) // must fail

fun wrongLongToInt(s: android.telephony.SmsMessage): Int = s.timestampMillis // must fail

fun fine(c: Context, i: Intent): PendingIntent? = PendingIntent.getBroadcast(c, 0, i, PendingIntent.FLAG_MUTABLE)

fun fineToo(c: Context): SubscriptionManager? = c.getSystemService(SubscriptionManager::class.java)
