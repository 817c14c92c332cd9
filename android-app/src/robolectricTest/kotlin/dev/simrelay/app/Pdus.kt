package dev.simrelay.app

import java.io.ByteArrayOutputStream

/**
 * SMS-DELIVER PDUs (3GPP TS 23.040 9.2.2.1) as the radio hands them to `SMS_RECEIVED`, in
 * UCS-2 so that a concatenation header needs no septet alignment.
 */
object Pdus {
    /** One PDU; [concat] = (reference, total, sequence) adds a concatenation header. */
    fun deliver(from: String, text: String, concat: Triple<Int, Int, Int>? = null): ByteArray {
        val out = ByteArrayOutputStream()
        out.write(0x00) // no SMSC address
        out.write(if (concat != null) 0x44 else 0x04) // SMS-DELIVER, TP-MMS, TP-UDHI if concatenated
        val digits = from.removePrefix("+")
        if (digits.all { it.isDigit() }) {
            out.write(digits.length)
            out.write(if (from.startsWith("+")) 0x91 else 0x81)
            val padded = if (digits.length % 2 == 1) digits + "F" else digits
            for (i in padded.indices step 2) {
                out.write((padded[i + 1].digitToInt(16) shl 4) or padded[i].digitToInt(16))
            }
        } else {
            // Alphanumeric sender (TON 101): GSM 7-bit packed; length in used semi-octets.
            val packed = pack7(from)
            out.write((from.length * 7 + 3) / 4)
            out.write(0xD0)
            out.write(packed)
        }
        out.write(0x00) // TP-PID
        out.write(0x08) // TP-DCS: UCS-2
        out.write(intArrayOf(0x62, 0x10, 0x21, 0x71, 0x95, 0x51, 0x40).map { it.toByte() }.toByteArray()) // TP-SCTS 2026-01-12 17:59:15
        val body = text.toByteArray(Charsets.UTF_16BE)
        val udh = concat?.let { (ref, total, seq) -> byteArrayOf(5, 0, 3, ref.toByte(), total.toByte(), seq.toByte()) } ?: ByteArray(0)
        out.write(udh.size + body.size)
        out.write(udh)
        out.write(body)
        return out.toByteArray()
    }

    /** GSM 7-bit default alphabet packing, for letters, digits and spaces (same code points as ASCII). */
    private fun pack7(text: String): ByteArray {
        val out = ByteArrayOutputStream()
        var acc = 0
        var bits = 0
        for (c in text) {
            acc = acc or ((c.code and 0x7F) shl bits)
            bits += 7
            while (bits >= 8) {
                out.write(acc and 0xFF)
                acc = acc ushr 8
                bits -= 8
            }
        }
        if (bits > 0) out.write(acc and 0xFF)
        return out.toByteArray()
    }
}
