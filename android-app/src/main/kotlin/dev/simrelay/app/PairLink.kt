package dev.simrelay.app

import java.net.URLDecoder

/**
 * A pairing link, as the relay dashboard's QR code holds it:
 * `simrelay://pair?url=<percent-encoded link URL>&code=<pairing code>&pin=<64 hex digits>&links=<1-16>`.
 * `url` and `code` are required; `pin` (SHA-256 of the relay's certificate) is absent for a
 * publicly trusted certificate; `links` (the most links to a cluster's nodes) is absent for
 * the core's default. Parameters come in any order; unknown ones are ignored. Plain
 * Kotlin (no `android.*`): the host JVM tests it as is.
 */
class PairLink(val url: String, val code: String, val pin: String?, val links: Int? = null) {
    companion object {
        private const val PREFIX = "simrelay://pair"
        private val SCHEMES = listOf("ws://", "wss://", "http://", "https://")
        private val PIN = Regex("[0-9a-fA-F]{64}")
        /** The most links a phone keeps (the core's limit). */
        const val MAX_LINKS = 16

        /** Text that is meant as a pairing link (right or wrong), not as a relay URL. */
        fun looksLike(s: String): Boolean = s.trim().startsWith("simrelay:", ignoreCase = true)

        /** The link's fields, or null for anything that is not a valid pairing link. */
        fun parse(link: String): PairLink? = try {
            read(link)
        } catch (e: IllegalArgumentException) {
            null
        }

        /** Like [parse], but says what is wrong: [IllegalArgumentException] with the reason. */
        fun read(link: String): PairLink {
            val s = link.trim()
            val after = s.drop(PREFIX.length).firstOrNull()
            require(s.startsWith(PREFIX, ignoreCase = true) && (after == null || after in "/?")) { "not a simrelay://pair link" }
            val rest = s.substring(PREFIX.length).removePrefix("/")
            require(rest.startsWith("?")) { "the link has no url and code" }
            val params = rest.substring(1).split('&').filter { it.isNotEmpty() }.associate {
                val (k, v) = if ('=' in it) it.split('=', limit = 2) else listOf(it, "")
                k to URLDecoder.decode(v, "UTF-8").trim() // malformed %: IllegalArgumentException
            }
            val url = params["url"].orEmpty()
            val code = params["code"].orEmpty()
            val pin = params["pin"].orEmpty().ifEmpty { null }
            val links = params["links"].orEmpty().ifEmpty { null }
            require(url.isNotEmpty()) { "the link has no relay url" }
            require(code.isNotEmpty()) { "the link has no pairing code" }
            require(SCHEMES.any { url.startsWith(it, ignoreCase = true) && url.length > it.length }) {
                "the relay url must start with ws://, wss://, http:// or https://"
            }
            require(pin == null || PIN.matches(pin)) { "the certificate pin must be 64 hex digits" }
            val count = links?.toIntOrNull()
            require(links == null || (count != null && count in 1..MAX_LINKS)) { "links must be a number from 1 to $MAX_LINKS" }
            return PairLink(url, code, pin?.lowercase(), count)
        }
    }
}
