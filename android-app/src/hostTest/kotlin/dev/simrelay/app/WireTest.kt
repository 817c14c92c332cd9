package dev.simrelay.app

import org.json.JSONArray
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test

/** The JSON glue of Wire.kt, without the native library. */
class WireTest {
    @Test
    fun `status JSON becomes the UI's lines`() {
        val view = StatusView.parse(
            """{"link":"online","relay_url":"wss://r.example","phone_id":"ph_1","last_error":null,
               "queue_depth":3,"awaiting_reports":2,"outbox":1,"pending_commands":0,"app_version":"1",
               "sims":[{"sub_id":4,"slot":0,"carrier":"Acme","parts_per_minute":20,"daily_cap":500,"sent_today":7}]}""",
        )
        assertTrue(view.paired)
        assertEquals(
            listOf(
                "Link: online (wss://r.example)",
                "Phone id: ph_1",
                "Queue: 3 waiting, 2 awaiting reports, 1 events to send",
                "SIMs: #4 Acme (7/500 today)",
            ),
            view.lines(),
        )
        assertEquals("Link online · 3 queued · 2 awaiting reports", view.summary())
        val unpaired = StatusView.parse("""{"link":"unpaired","relay_url":null,"phone_id":null,"last_error":"storage is full","sims":[]}""")
        assertFalse(unpaired.paired)
        assertEquals("Last error: storage is full", unpaired.lines().last())
        assertEquals("Not paired yet · 0 queued · error", unpaired.summary())
    }

    @Test
    fun `a phone linked to several relay nodes shows how many links are online`() {
        val view = StatusView.parse(
            """{"link":"online","live_links":2,"links":[{"url":"wss://a:8443","state":"online"},
               {"url":"wss://b:8443","state":"online"},{"url":"wss://c:8443","state":"offline"}],
               "relay_url":"wss://a:8443","phone_id":"ph_1","last_error":null,"sims":[]}""",
        )
        assertEquals(2, view.liveLinks)
        assertEquals("Relay nodes: 2 of 3 links online", view.lines()[1])
    }

    @Test
    fun `SIM lists encode as the core's SimConfig`() {
        val a = JSONArray(SimEntry.toJson(listOf(SimEntry(1, 0, "Acme"), SimEntry(2, 1, null))))
        assertEquals(2, a.length())
        assertEquals(1, a.getJSONObject(0).getInt("sub_id"))
        assertEquals("Acme", a.getJSONObject(0).getString("carrier"))
        assertFalse(a.getJSONObject(1).has("carrier"), "no carrier: key left out")
    }
}
