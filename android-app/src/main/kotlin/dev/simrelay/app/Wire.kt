package dev.simrelay.app

import org.json.JSONArray
import org.json.JSONObject
import java.util.Base64

/*
 * The JSON shapes exchanged with the core, mapped with org.json (part of Android; on the host
 * Debian's libandroid-json-java). No android.* here: the host JVM test covers this file.
 */

/** A command pulled from the core. */
sealed interface CoreCommand {
    /**
     * Hand one recipient's text to the radio on subscription [sim]; with [data], a data SMS
     * instead (`text` is then empty and `parts` 1).
     */
    data class Send(
        val messageId: String,
        val idx: Int,
        val attempt: Int,
        val sim: Int,
        val to: String,
        val text: String,
        val parts: Int,
        val deliveryReport: Boolean,
        val data: DataPayload? = null,
    ) : CoreCommand {
        /** Names part [part] of [parts] of this attempt in the sent/delivery intents. */
        fun ref(part: Int, parts: Int) = PartRef(messageId, idx, attempt, part, parts)

        override fun toString() =
            "Send(messageId=$messageId, idx=$idx, attempt=$attempt, sim=$sim, parts=$parts" +
                (data?.let { ", data port ${it.port}, ${it.payload.size} bytes" } ?: "") + ")"
    }

    /** Read the SIM list again and report it. */
    data object RefreshSims : CoreCommand

    /** The core was destroyed: stop pulling. */
    data object Closed : CoreCommand

    /** A command this build does not know (a newer core): skipped. */
    data class Unknown(val type: String) : CoreCommand

    companion object {
        fun parse(json: String): CoreCommand {
            val o = JSONObject(json)
            return when (val type = o.getString("type")) {
                "send" -> Send(
                    messageId = o.getString("message_id"),
                    idx = o.getInt("idx"),
                    attempt = o.getInt("attempt"),
                    sim = o.getInt("sim"),
                    to = o.getString("to"),
                    text = o.getString("text"),
                    parts = o.getInt("parts"),
                    deliveryReport = o.optBoolean("delivery_report", true),
                    data = o.optJSONObject("data")?.let {
                        DataPayload(it.getInt("port"), Base64.getDecoder().decode(it.getString("payload")))
                    },
                )
                "refresh_sims" -> RefreshSims
                "closed" -> Closed
                else -> Unknown(type)
            }
        }
    }
}

/**
 * A data SMS's application port (1..65535) and payload (at most 133 bytes, checked by the
 * core), for `SmsManager.sendDataMessage`. Compared by content.
 */
class DataPayload(val port: Int, val payload: ByteArray) {
    override fun equals(other: Any?) =
        other is DataPayload && other.port == port && other.payload.contentEquals(payload)

    override fun hashCode() = 31 * port + payload.contentHashCode()

    override fun toString() = "DataPayload(port=$port, ${payload.size} bytes)"
}

/**
 * One part of one attempt, carried by a sent or delivery PendingIntent. [uri] makes every
 * part's intent distinct (PendingIntents that differ only in extras would be merged).
 */
data class PartRef(val messageId: String, val idx: Int, val attempt: Int, val part: Int, val parts: Int) {
    fun uri(kind: String): String =
        "simrelay://$kind/${java.net.URLEncoder.encode(messageId, "UTF-8")}/$idx/$attempt/$part/$parts"

    companion object {
        const val MESSAGE_ID = "dev.simrelay.app.MESSAGE_ID"
        const val IDX = "dev.simrelay.app.IDX"
        const val ATTEMPT = "dev.simrelay.app.ATTEMPT"
        const val PART = "dev.simrelay.app.PART"
        const val PARTS = "dev.simrelay.app.PARTS"
    }
}

/** A SIM as reported to the core (`SimConfig` in the engine). */
data class SimEntry(val subId: Int, val slot: Int, val carrier: String?) {
    companion object {
        fun toJson(sims: List<SimEntry>): String {
            val a = JSONArray()
            for (s in sims) {
                val o = JSONObject().put("sub_id", s.subId).put("slot", s.slot)
                if (s.carrier != null) o.put("carrier", s.carrier)
                a.put(o)
            }
            return a.toString()
        }
    }
}

/** The core's status (`nativeStatus`), as the UI shows it. */
data class StatusView(
    val link: String,
    val relayUrl: String?,
    val phoneId: String?,
    val lastError: String?,
    val queueDepth: Int,
    val awaitingReports: Int,
    val outbox: Int,
    val pendingCommands: Int,
    val sims: List<String>,
    /** Links online, one per relay node (`live_links`). */
    val liveLinks: Int = 0,
    /** Links held or dialled (`links`): more than one when the relay is a cluster. */
    val links: Int = 0,
) {
    val paired: Boolean get() = link != "unpaired"

    /** One line for the service notification. */
    fun summary(): String = buildString {
        append(if (paired) "Link $link" else "Not paired yet")
        append(" · $queueDepth queued")
        if (awaitingReports > 0) append(" · $awaitingReports awaiting reports")
        if (lastError != null) append(" · error")
    }

    fun lines(): List<String> = buildList {
        add("Link: $link" + (relayUrl?.let { " ($it)" } ?: ""))
        if (links > 1) add("Relay nodes: $liveLinks of $links links online")
        phoneId?.let { add("Phone id: $it") }
        add("Queue: $queueDepth waiting, $awaitingReports awaiting reports, $outbox events to send")
        if (pendingCommands > 0) add("Commands for the radio: $pendingCommands")
        add(if (sims.isEmpty()) "SIMs: none reported" else "SIMs: " + sims.joinToString(", "))
        lastError?.let { add("Last error: $it") }
    }

    companion object {
        fun parse(json: String): StatusView {
            val o = JSONObject(json)
            val sims = o.optJSONArray("sims") ?: JSONArray()
            return StatusView(
                link = o.optString("link", "unknown"),
                relayUrl = o.optNullableString("relay_url"),
                phoneId = o.optNullableString("phone_id"),
                lastError = o.optNullableString("last_error"),
                queueDepth = o.optInt("queue_depth"),
                awaitingReports = o.optInt("awaiting_reports"),
                outbox = o.optInt("outbox"),
                pendingCommands = o.optInt("pending_commands"),
                sims = (0 until sims.length()).map { describeSim(sims.get(it)) },
                liveLinks = o.optInt("live_links"),
                links = o.optJSONArray("links")?.length() ?: 0,
            )
        }

        private fun describeSim(v: Any?): String {
            if (v !is JSONObject) return v.toString()
            val id = v.opt("sub_id") ?: v.opt("sim") ?: "?"
            val carrier = v.optNullableString("carrier")?.let { " $it" } ?: ""
            val sent = if (v.has("sent_today")) " (${v.optInt("sent_today")}/${v.optInt("daily_cap")} today)" else ""
            return "#$id$carrier$sent"
        }

        private fun JSONObject.optNullableString(key: String): String? =
            if (isNull(key)) null else optString(key)
    }
}
