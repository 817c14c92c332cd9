package dev.simrelay.app

import android.Manifest
import android.app.Application
import android.content.Intent
import android.provider.Settings
import android.view.View
import android.view.ViewGroup
import android.widget.Button
import android.widget.TextView
import org.junit.Assert.assertEquals
import org.junit.Assert.assertNotNull
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.Robolectric
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.Shadows.shadowOf
import org.robolectric.annotation.Config

/**
 * The screen and the boot receiver against the real framework (Robolectric), at the API
 * levels of [Sdks]: MainActivity starts and shows link state without creating a core; a
 * refused SMS permission shows the restricted-settings steps with a working deep link; boot
 * starts nothing while the phone is unpaired.
 */
@RunWith(RobolectricTestRunner::class)
@Config(sdk = [Sdks.OLD, Sdks.MID, Sdks.NEW])
class ScreenTest {
    private val app: Application get() = RuntimeEnvironment.getApplication()

    @Test
    fun mainActivityShowsStateWithoutCreatingACore() {
        val activity = Robolectric.buildActivity(MainActivity::class.java).setup().get()
        shadowOf(android.os.Looper.getMainLooper()).idle()
        assertEquals("the screen never creates a core", 0L, CoreHolder.peek())
        val texts = texts(activity.window.decorView)
        assertTrue(texts.toString(), texts.any { it.contains("Relay service: stopped") })
        assertTrue(texts.toString(), texts.any { it.contains("Not paired yet") })
    }

    @Test
    fun aRefusedSmsPermissionShowsTheRestrictedSettingsSteps() {
        AppState.setPermissionsAsked(app)
        shadowOf(app).denyPermissions(Manifest.permission.SEND_SMS, Manifest.permission.RECEIVE_SMS)
        val activity = Robolectric.buildActivity(MainActivity::class.java).setup().get()
        shadowOf(android.os.Looper.getMainLooper()).idle()
        val guidance = views(activity.window.decorView).filterIsInstance<TextView>()
            .single { it.text.toString() == MainActivity.RESTRICTED_TEXT }
        assertTrue("guidance shown", guidance.isShown)
        val open = views(activity.window.decorView).filterIsInstance<Button>().single { it.text == "Open App info" }
        open.performClick()
        val started = shadowOf(activity).nextStartedActivity
        assertNotNull(started)
        assertEquals(Settings.ACTION_APPLICATION_DETAILS_SETTINGS, started.action)
        assertEquals("package:${app.packageName}", started.dataString)
    }

    @Test
    fun permissionsGrantedHideTheGuidance() {
        AppState.setPermissionsAsked(app)
        shadowOf(app).grantPermissions(Manifest.permission.SEND_SMS, Manifest.permission.RECEIVE_SMS)
        val activity = Robolectric.buildActivity(MainActivity::class.java).setup().get()
        shadowOf(android.os.Looper.getMainLooper()).idle()
        val guidance = views(activity.window.decorView).filterIsInstance<TextView>()
            .single { it.text.toString() == MainActivity.RESTRICTED_TEXT }
        assertTrue("guidance hidden", !guidance.isShown)
    }

    @Test
    fun bootStartsNothingWhileUnpaired() {
        app.sendBroadcast(Intent(Intent.ACTION_BOOT_COMPLETED).setPackage(app.packageName))
        Background.idleUntil { CoreHolder.peek() == 0L && Background.handOffsDone() }
        assertNull("no service without pairing", shadowOf(app).nextStartedService)
    }

    private fun views(v: View): List<View> =
        listOf(v) + if (v is ViewGroup) (0 until v.childCount).flatMap { views(v.getChildAt(it)) } else emptyList()

    private fun texts(v: View): List<String> = views(v).filterIsInstance<TextView>().map { it.text.toString() }
}
