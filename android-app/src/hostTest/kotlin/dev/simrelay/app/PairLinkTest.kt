package dev.simrelay.app

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.w3c.dom.Element
import java.io.File
import javax.xml.parsers.DocumentBuilderFactory

/** The dashboard's pairing links (PairLink.kt), good and bad. */
class PairLinkTest {
    private val pin = "0123456789abcdef".repeat(4)

    @Test
    fun `a full link gives url, code and pin`() {
        val link = PairLink.parse("simrelay://pair?url=wss%3A%2F%2Frelay.example%3A8443%2Fv1%2Flink&code=ABCD-EFGH&pin=$pin")!!
        assertEquals("wss://relay.example:8443/v1/link", link.url)
        assertEquals("ABCD-EFGH", link.code)
        assertEquals(pin, link.pin)
    }

    @Test
    fun `any order, no pin, unknown parameters ignored`() {
        val link = PairLink.parse(" simrelay://pair?v=2&code=ABCD-EFGH&url=https://relay.example/v1/link&x \n")!!
        assertEquals("https://relay.example/v1/link", link.url)
        assertEquals("ABCD-EFGH", link.code)
        assertNull(link.pin)
        assertEquals("ws://10.0.2.2:8080", PairLink.parse("SIMRELAY://pair/?url=ws%3A%2F%2F10.0.2.2%3A8080&code=X")!!.url)
        assertEquals(pin, PairLink.parse("simrelay://pair?url=http://r&code=X&pin=${pin.uppercase()}")!!.pin, "pin lowercased")
        assertNull(PairLink.parse("simrelay://pair?url=http://r&code=X&pin=")!!.pin, "empty pin: none")
        assertNull(link.links, "no links: the core's default")
    }

    @Test
    fun `links sets the most links to a cluster's nodes`() {
        assertEquals(2, PairLink.parse("simrelay://pair?url=wss://r&code=X&links=2")!!.links)
        assertEquals(1, PairLink.parse("simrelay://pair?links=1&url=wss://r&code=X")!!.links)
        assertEquals(16, PairLink.parse("simrelay://pair?url=wss://r&code=X&links=16")!!.links)
        assertNull(PairLink.parse("simrelay://pair?url=wss://r&code=X&links=")!!.links, "empty: the default")
    }

    @Test
    fun `bad links are refused with a reason`() {
        val bad = mapOf(
            "wss://relay.example/v1/link" to "not a simrelay://pair link",
            "simrelay://other?url=wss://r&code=X" to "not a simrelay://pair link",
            "simrelay://pairing?url=wss://r&code=X" to "not a simrelay://pair link",
            "simrelay://pair" to "the link has no url and code",
            "simrelay://pair?code=ABCD-EFGH" to "the link has no relay url",
            "simrelay://pair?url=wss%3A%2F%2Fr&code=" to "the link has no pairing code",
            "simrelay://pair?url=ftp%3A%2F%2Fr&code=X" to "the relay url must start with ws://, wss://, http:// or https://",
            "simrelay://pair?url=wss%3A%2F%2F&code=X" to "the relay url must start with ws://, wss://, http:// or https://",
            "simrelay://pair?url=wss://r&code=X&pin=abc" to "the certificate pin must be 64 hex digits",
            "simrelay://pair?url=wss://r&code=X&pin=${"g".repeat(64)}" to "the certificate pin must be 64 hex digits",
            "simrelay://pair?url=wss://r&code=X&pin=${pin}00" to "the certificate pin must be 64 hex digits",
            "simrelay://pair?url=wss://r&code=X&links=0" to "links must be a number from 1 to 16",
            "simrelay://pair?url=wss://r&code=X&links=17" to "links must be a number from 1 to 16",
            "simrelay://pair?url=wss://r&code=X&links=two" to "links must be a number from 1 to 16",
            "simrelay://pair?url=wss://r&code=X&links=-3" to "links must be a number from 1 to 16",
        )
        for ((link, reason) in bad) {
            assertNull(PairLink.parse(link), link)
            assertEquals(reason, assertThrows(IllegalArgumentException::class.java) { PairLink.read(link) }.message, link)
        }
        assertNull(PairLink.parse("simrelay://pair?url=wss%3A%2F%2Fr%ZZ&code=X"), "malformed percent escape")
    }

    @Test
    fun `the manifest opens simrelay pair links in MainActivity`() {
        // Robolectric ignores <data> in manifest filters, so the filter is read here (the check
        // script runs from the repository root).
        val doc = DocumentBuilderFactory.newInstance().apply { isNamespaceAware = true }.newDocumentBuilder()
            .parse(File("android-app/src/main/AndroidManifest.xml"))
        val ns = "http://schemas.android.com/apk/res/android"
        fun Element.all(tag: String) = getElementsByTagName(tag).let { l -> (0 until l.length).map { l.item(it) as Element } }
        val activity = doc.documentElement.all("activity").single { it.getAttributeNS(ns, "name") == ".MainActivity" }
        val filter = activity.all("intent-filter").single { f ->
            f.all("data").any { it.getAttributeNS(ns, "scheme") == "simrelay" && it.getAttributeNS(ns, "host") == "pair" }
        }
        assertEquals(listOf("android.intent.action.VIEW"), filter.all("action").map { it.getAttributeNS(ns, "name") })
        assertEquals(
            setOf("android.intent.category.DEFAULT", "android.intent.category.BROWSABLE"),
            filter.all("category").map { it.getAttributeNS(ns, "name") }.toSet(),
        )
        assertEquals("true", activity.getAttributeNS(ns, "exported"))
    }

    @Test
    fun `a pasted link is told apart from a relay url`() {
        assertTrue(PairLink.looksLike(" simrelay://pair?url=x"))
        assertTrue(PairLink.looksLike("SimRelay:pair"))
        assertFalse(PairLink.looksLike("wss://relay.example"))
    }
}
