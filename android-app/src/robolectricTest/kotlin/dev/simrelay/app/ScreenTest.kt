package dev.simrelay.app

import android.Manifest
import android.app.Application
import android.content.Intent
import android.net.Uri
import android.os.Looper
import android.provider.Settings
import android.view.View
import android.view.ViewGroup
import android.widget.Button
import android.widget.EditText
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
import org.robolectric.shadows.ShadowToast

/**
 * The screen and the boot receiver against the real framework (Robolectric), at the API
 * levels of [Sdks]: MainActivity starts and shows link state without creating a core; a
 * refused SMS permission shows the restricted-settings steps with a working deep link; boot
 * starts nothing while the phone is unpaired; a pairing link (the dashboard's QR code) fills
 * the pairing fields and pairs nothing.
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

    @Test
    fun aPairingLinkFillsTheFieldsAndPairsNothing() {
        val link = "simrelay://pair?url=wss%3A%2F%2Frelay.example%3A8443%2Fv1%2Flink&code=ABCD-EFGH&pin=$PIN"
        val controller = Robolectric.buildActivity(MainActivity::class.java, view(link)).setup()
        shadowOf(Looper.getMainLooper()).idle()
        val activity = controller.get()
        assertEquals(listOf("wss://relay.example:8443/v1/link", "ABCD-EFGH", PIN), fields(activity))
        val note = "Pairing link for wss://relay.example:8443/v1/link: check the address and code, then tap Pair."
        assertTrue(texts(activity.window.decorView).contains(note))
        assertEquals(note, ShadowToast.getTextOfLatestToast())
        assertNothingPaired(activity)

        // Another link while the screen is open (singleTop: onNewIntent), without a pin.
        controller.newIntent(view("simrelay://pair?code=WXYZ-1234&v=1&url=ws%3A%2F%2F10.0.2.2%3A8080"))
        shadowOf(Looper.getMainLooper()).idle()
        assertEquals(listOf("ws://10.0.2.2:8080", "WXYZ-1234", ""), fields(activity))
        assertNothingPaired(activity)
    }

    @Test
    fun aLinkPastedIntoTheAddressIsExpandedOnPair() {
        val activity = Robolectric.buildActivity(MainActivity::class.java).setup().get()
        shadowOf(Looper.getMainLooper()).idle()
        edit(activity, URL_HINT).setText(" simrelay://pair?url=https%3A%2F%2Frelay.example&code=ABCD-EFGH&pin=$PIN ")
        button(activity, "Pair").performClick()
        shadowOf(Looper.getMainLooper()).idle()
        assertEquals(listOf("https://relay.example", "ABCD-EFGH", PIN), fields(activity))
        assertNothingPaired(activity)
    }

    @Test
    fun aBadLinkFillsNothingAndSaysWhy() {
        val activity = Robolectric.buildActivity(MainActivity::class.java, view("simrelay://pair?code=ABCD-EFGH&pin=$PIN"))
            .setup().get()
        shadowOf(Looper.getMainLooper()).idle()
        assertEquals(listOf("", "", ""), fields(activity))
        val note = "Not a valid pairing link: the link has no relay url."
        assertTrue(texts(activity.window.decorView).toString(), texts(activity.window.decorView).contains(note))
        assertEquals(note, ShadowToast.getTextOfLatestToast())
        // Pasted with a short pin: the fields stay as they were, nothing pairs.
        edit(activity, URL_HINT).setText("simrelay://pair?url=wss%3A%2F%2Fr&code=X&pin=abc")
        button(activity, "Pair").performClick()
        shadowOf(Looper.getMainLooper()).idle()
        assertEquals("Not a valid pairing link: the certificate pin must be 64 hex digits.", ShadowToast.getTextOfLatestToast())
        assertEquals(listOf("simrelay://pair?url=wss%3A%2F%2Fr&code=X&pin=abc", "", ""), fields(activity))
        assertNothingPaired(activity)
    }

    private fun view(link: String) = Intent(Intent.ACTION_VIEW, Uri.parse(link))

    /** The relay address, pairing code and pin fields. */
    private fun fields(activity: MainActivity): List<String> =
        listOf(URL_HINT, "Pairing code", "Certificate SHA-256 (optional)").map { edit(activity, it).text.toString() }

    private fun edit(activity: MainActivity, hint: String): EditText =
        views(activity.window.decorView).filterIsInstance<EditText>().single { it.hint?.toString() == hint }

    private fun button(activity: MainActivity, text: String): Button =
        views(activity.window.decorView).filterIsInstance<Button>().single { it.text.toString() == text }

    /** A link only fills the fields: no pairing thread, no core, no stored pairing, no service. */
    private fun assertNothingPaired(activity: MainActivity) {
        assertTrue("no pairing started", Thread.getAllStackTraces().keys.none { it.isAlive && it.name == "simrelay-pair" })
        assertTrue(texts(activity.window.decorView).none { it.contains("Pairing…") })
        assertEquals(0L, CoreHolder.peek())
        assertNull(AppState.phoneId(app))
        assertNull(shadowOf(app).nextStartedService)
    }

    private fun views(v: View): List<View> =
        listOf(v) + if (v is ViewGroup) (0 until v.childCount).flatMap { views(v.getChildAt(it)) } else emptyList()

    private fun texts(v: View): List<String> = views(v).filterIsInstance<TextView>().map { it.text.toString() }

    private companion object {
        const val URL_HINT = "wss://relay.example.com"
        val PIN = "0123456789abcdef".repeat(4)
    }
}
