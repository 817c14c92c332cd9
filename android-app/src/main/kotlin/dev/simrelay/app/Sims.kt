package dev.simrelay.app

import android.Manifest
import android.content.Context
import android.content.pm.PackageManager
import android.os.Build
import android.telephony.SubscriptionManager
import android.util.Log

/** Reads the active SIMs from [SubscriptionManager] and reports them to the core. */
object Sims {
    fun read(context: Context): List<SimEntry> {
        if (context.checkSelfPermission(Manifest.permission.READ_PHONE_STATE) != PackageManager.PERMISSION_GRANTED) {
            return emptyList()
        }
        val sm = context.getSystemService(SubscriptionManager::class.java) ?: return emptyList()
        val infos = try {
            sm.activeSubscriptionInfoList ?: emptyList()
        } catch (e: SecurityException) {
            emptyList()
        }
        return infos.map { info ->
            SimEntry(info.subscriptionId, info.simSlotIndex, info.carrierName?.toString())
        }
    }

    fun report(context: Context, handle: Long) {
        val sims = read(context)
        NativeCore.nativeSetSims(handle, SimEntry.toJson(sims))
        Log.i("simrelay", "reported ${sims.size} SIM(s)")
    }

    /** Reports the SIMs now and whenever they change; returns the listener to remove later. */
    fun watch(context: Context, handle: Long): SubscriptionManager.OnSubscriptionsChangedListener? {
        val sm = context.getSystemService(SubscriptionManager::class.java) ?: return null
        val listener = object : SubscriptionManager.OnSubscriptionsChangedListener() {
            override fun onSubscriptionsChanged() {
                try {
                    report(context, handle)
                } catch (e: RuntimeException) {
                    Log.w("simrelay", "SIM report failed: ${e.message}")
                }
            }
        }
        try {
            if (Build.VERSION.SDK_INT >= 30) {
                sm.addOnSubscriptionsChangedListener(context.mainExecutor, listener)
            } else {
                @Suppress("DEPRECATION")
                sm.addOnSubscriptionsChangedListener(listener)
            }
        } catch (e: SecurityException) {
            return null
        }
        return listener
    }

    fun unwatch(context: Context, listener: SubscriptionManager.OnSubscriptionsChangedListener?) {
        if (listener == null) return
        context.getSystemService(SubscriptionManager::class.java)?.removeOnSubscriptionsChangedListener(listener)
    }
}
