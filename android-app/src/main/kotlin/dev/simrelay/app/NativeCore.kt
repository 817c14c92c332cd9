package dev.simrelay.app

/**
 * The JNI bridge to the Rust core (`libsimrelay_jni.so`, crate `core/jni`).
 *
 * Pull model: Rust never calls into Kotlin. One worker thread loops on [nativeNextCommand] and
 * performs what it returns; receivers hand results and incoming SMS in with primitives.
 * Errors come back as exceptions: `IllegalArgumentException` for bad input (nothing changed),
 * `IllegalStateException` for an unknown, freed or closed handle, `RuntimeException` for
 * failures of the core or the link.
 *
 * This file must not touch `android.*`: the host check loads it on a plain JVM under
 * `-Xcheck:jni`. Keep in sync with core/jni/src/exports.rs (the host check compares the
 * `external fun`s below with the library's exported `Java_...` symbols).
 */
object NativeCore {
    /** What [nativeNextCommand] returns once the core is destroyed: stop pulling. */
    const val CLOSED = """{"type":"closed"}"""

    /** Android's "none" for subscription ids and error codes. */
    const val NONE = -1

    init {
        System.loadLibrary("simrelay_jni")
    }

    /**
     * Starts a core and returns its handle. [configJson]: `{"data_dir": "...",
     * "app_version": "...", "device_name": "...", "engine": {...}}` (all but data_dir optional).
     */
    @JvmStatic external fun nativeCreate(configJson: String): Long

    /**
     * Stops the core within about 5 s. A thread waiting in [nativeNextCommand] returns [CLOSED];
     * later calls with [handle] throw `IllegalStateException`.
     */
    @JvmStatic external fun nativeDestroy(handle: Long)

    /**
     * Blocks up to [timeoutMs] (at most 60 s) for the next command: JSON of a core `Command`
     * (`{"type":"send",...}`, with `"data":{"port":N,"payload":"<base64>"}` for a data SMS, or
     * `{"type":"refresh_sims"}`), null on timeout, [CLOSED] after destroy.
     */
    @JvmStatic external fun nativeNextCommand(handle: Long, timeoutMs: Long): String?

    /** A part's sent intent fired. [errorCode] is [NONE] when the intent had none. */
    @JvmStatic external fun nativeOnSent(
        handle: Long,
        messageId: String,
        idx: Int,
        attempt: Int,
        part: Int,
        parts: Int,
        resultCode: Int,
        errorCode: Int,
    )

    /** A part's delivery intent fired with the raw status report ("pdu" and "format" extras). */
    @JvmStatic external fun nativeOnDelivered(
        handle: Long,
        messageId: String,
        idx: Int,
        attempt: Int,
        part: Int,
        pdu: ByteArray,
        format: String,
    )

    /** An SMS arrived (parts already joined). [subId] [NONE] if unknown; [timestampMs] 0 if unknown. */
    @JvmStatic external fun nativeOnIncoming(handle: Long, subId: Int, from: String, body: String, timestampMs: Long)

    /**
     * A data SMS arrived (`DATA_SMS_RECEIVED`): its raw PDUs (the "pdus" extra, SMSC address
     * first) and their "format". The core parses sender, port and payload and joins the parts.
     */
    @JvmStatic external fun nativeOnIncomingData(handle: Long, subId: Int, pdus: Array<ByteArray>, format: String)

    /**
     * Whether the command loop (the only modem) is attached. The relay link runs only while it
     * is: a core created by a receiver records results and incoming SMS without going online,
     * so the relay never hands this phone work that no worker would send.
     */
    @JvmStatic external fun nativeSetWorker(handle: Long, attached: Boolean)

    /** The active SIMs: JSON array of `{"sub_id":1,"slot":0,"carrier":"..."}`. */
    @JvmStatic external fun nativeSetSims(handle: Long, simsJson: String)

    /** JSON for the UI: link state, relay, phone id, last error, queue depth, SIMs, ... */
    @JvmStatic external fun nativeStatus(handle: Long): String

    /**
     * Pairs with a relay (`ws://` or `wss://` URL, one-time code, optional SHA-256 pin of a
     * self-signed certificate) and stores the link; it runs once a worker is attached
     * ([nativeSetWorker]). [maxLinks]: the most links to a cluster's nodes, 1 to 16, or 0 for
     * the core's default (3); a single relay is one link whatever it says. Blocks up to 30 s:
     * never call it on the main thread. Returns the phone id the relay assigned.
     */
    @JvmStatic external fun nativePair(handle: Long, url: String, code: String, pinSha256: String?, maxLinks: Int): String
}
