package dev.simrelay.app

import org.json.JSONObject
import java.io.BufferedReader
import java.io.File
import java.io.InputStreamReader
import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.nio.file.Path
import java.time.Duration
import java.util.concurrent.CompletableFuture
import java.util.concurrent.TimeUnit
import javax.net.ssl.SSLContext

/**
 * A real relay (`simrelay serve`) on 127.0.0.1:0 for the host JVM test, driven over its HTTP
 * API. The binary comes from the system property `simrelay.relay` (set by
 * scripts/check-android-host.sh to the cargo-built `simrelay`).
 */
class Relay private constructor(
    private val process: Process,
    val httpUrl: String,
    private val apiKey: String,
    /** SHA-256 of the self-signed certificate (lowercase hex), when started with TLS. */
    val fingerprint: String?,
) : AutoCloseable {
    private val http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).apply {
        if (fingerprint != null) {
            sslContext(SSLContext.getInstance("TLS").apply { init(null, arrayOf(PinnedTrust(fingerprint)), null) })
        }
    }.build()

    /** The base URL the phone core links to (`/v1/link` is appended by the core). */
    val wsUrl: String get() = httpUrl.replaceFirst("http", "ws")

    fun post(path: String, body: JSONObject): Pair<Int, JSONObject> = send(
        HttpRequest.newBuilder(URI.create(httpUrl + path))
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(body.toString())),
    )

    fun get(path: String): Pair<Int, JSONObject> = send(HttpRequest.newBuilder(URI.create(httpUrl + path)).GET())

    private fun send(builder: HttpRequest.Builder): Pair<Int, JSONObject> {
        val request = builder.header("Authorization", "Bearer $apiKey").timeout(Duration.ofSeconds(40)).build()
        val response = http.send(request, HttpResponse.BodyHandlers.ofString())
        val body = response.body().ifBlank { "{}" }
        return response.statusCode() to JSONObject(body)
    }

    override fun close() {
        process.destroy()
        if (!process.waitFor(5, TimeUnit.SECONDS)) process.destroyForcibly().waitFor()
    }

    companion object {
        const val PROPERTY = "simrelay.relay"

        /** The relay binary, or null (with the reason) when it is not there. */
        fun binary(): Pair<File?, String> {
            val path = System.getProperty(PROPERTY) ?: return null to "system property $PROPERTY is not set"
            val file = File(path)
            return if (file.canExecute()) file to path else null to "no relay binary at $path (cargo build -p simrelay-server)"
        }

        /**
         * Starts `simrelay serve` (with a self-signed certificate when [tls], the TOML settings
         * [configToml] when given) and waits for its
         * "listening on" line (after "tls fingerprint sha256 ..." with TLS).
         */
        fun start(binary: File, data: Path, apiKey: String, tls: Boolean = false, configToml: String? = null): Relay {
            val args = mutableListOf(
                binary.path, "serve", "--listen", "127.0.0.1:0", "--data", data.toString(), "--api-key", apiKey,
            )
            if (tls) args.add("--tls-self-signed")
            if (configToml != null) {
                val file = data.resolveSibling("${data.fileName}.toml").toFile()
                file.writeText(configToml)
                args.addAll(listOf("--config", file.path))
            }
            val process = ProcessBuilder(args).redirectError(ProcessBuilder.Redirect.INHERIT).start()
            val url = CompletableFuture<String>()
            var fingerprint: String? = null
            Thread({
                val lines = BufferedReader(InputStreamReader(process.inputStream))
                while (true) {
                    val line = lines.readLine() ?: break
                    if (line.startsWith("tls fingerprint sha256 ")) fingerprint = line.substringAfterLast(' ').trim()
                    val at = line.indexOf("listening on ")
                    if (at >= 0) url.complete(line.substring(at + "listening on ".length).trim())
                }
                url.completeExceptionally(IllegalStateException("relay exited before listening"))
            }, "relay-stdout").apply { isDaemon = true }.start()
            try {
                val listening = url.get(30, TimeUnit.SECONDS).trimEnd('/')
                check(!tls || fingerprint != null) { "relay printed no certificate fingerprint" }
                return Relay(process, listening, apiKey, fingerprint)
            } catch (e: Exception) {
                process.destroyForcibly()
                throw e
            }
        }
    }
}

/**
 * Trusts exactly the certificate whose SHA-256 is [sha256], as the phone core's pin does.
 * Being an X509ExtendedTrustManager, it also replaces the host-name check (the self-signed
 * certificate names no test address).
 */
class PinnedTrust(private val sha256: String) : javax.net.ssl.X509ExtendedTrustManager() {
    private fun check(chain: Array<out java.security.cert.X509Certificate>) {
        val digest = java.security.MessageDigest.getInstance("SHA-256").digest(chain[0].encoded)
        val hex = digest.joinToString("") { "%02x".format(it) }
        if (hex != sha256) throw java.security.cert.CertificateException("certificate does not match the pin")
    }

    override fun checkServerTrusted(chain: Array<out java.security.cert.X509Certificate>, authType: String?) = check(chain)
    override fun checkServerTrusted(
        chain: Array<out java.security.cert.X509Certificate>,
        authType: String?,
        socket: java.net.Socket?,
    ) = check(chain)
    override fun checkServerTrusted(
        chain: Array<out java.security.cert.X509Certificate>,
        authType: String?,
        engine: javax.net.ssl.SSLEngine?,
    ) = check(chain)
    override fun checkClientTrusted(chain: Array<out java.security.cert.X509Certificate>, authType: String?) =
        throw java.security.cert.CertificateException("no client certificates")
    override fun checkClientTrusted(
        chain: Array<out java.security.cert.X509Certificate>,
        authType: String?,
        socket: java.net.Socket?,
    ) = throw java.security.cert.CertificateException("no client certificates")
    override fun checkClientTrusted(
        chain: Array<out java.security.cert.X509Certificate>,
        authType: String?,
        engine: javax.net.ssl.SSLEngine?,
    ) = throw java.security.cert.CertificateException("no client certificates")
    override fun getAcceptedIssuers(): Array<java.security.cert.X509Certificate> = arrayOf()
}
