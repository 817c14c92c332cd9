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

/**
 * A real relay (`simrelay serve`) on 127.0.0.1:0 for the host JVM test, driven over its HTTP
 * API. The binary comes from the system property `simrelay.relay` (set by
 * scripts/check-android-host.sh to the cargo-built `simrelay`).
 */
class Relay private constructor(private val process: Process, val httpUrl: String, private val apiKey: String) : AutoCloseable {
    private val http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build()

    /** The base URL the phone core links to (`/v1/link` is appended by the core). */
    val wsUrl: String get() = "ws://" + httpUrl.removePrefix("http://")

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

        /** Starts `simrelay serve` and waits for its "listening on" line. */
        fun start(binary: File, data: Path, apiKey: String): Relay {
            val process = ProcessBuilder(
                binary.path, "serve", "--listen", "127.0.0.1:0", "--data", data.toString(), "--api-key", apiKey,
            ).redirectError(ProcessBuilder.Redirect.INHERIT).start()
            val url = CompletableFuture<String>()
            Thread({
                val lines = BufferedReader(InputStreamReader(process.inputStream))
                while (true) {
                    val line = lines.readLine() ?: break
                    val at = line.indexOf("listening on ")
                    if (at >= 0) url.complete(line.substring(at + "listening on ".length).trim())
                }
                url.completeExceptionally(IllegalStateException("relay exited before listening"))
            }, "relay-stdout").apply { isDaemon = true }.start()
            try {
                return Relay(process, url.get(30, TimeUnit.SECONDS).trimEnd('/'), apiKey)
            } catch (e: Exception) {
                process.destroyForcibly()
                throw e
            }
        }
    }
}
