package dev.simrelay.app

/** SMS-STATUS-REPORT PDUs (3GPP TS 23.040 9.2.2.3) as a delivery intent's "pdu" extra carries them. */
object StatusReports {
    /** With the SMSC, times and layout of the ATLib test vector; [to] as the recipient address. */
    fun build(to: String, messageRef: Int, status: Int): ByteArray {
        val out = java.io.ByteArrayOutputStream()
        out.write(hexBytes("07911326040000F0")) // SMSC +31624000000
        out.write(0x06) // first octet: TP-MTI status report, TP-SRQ
        out.write(messageRef)
        val digits = to.removePrefix("+")
        out.write(digits.length)
        out.write(if (to.startsWith("+")) 0x91 else 0x81)
        out.write(semiOctets(digits))
        out.write(hexBytes("11101171955140")) // TP-SCTS 2011-01-11 17:59:15 +01:00
        out.write(hexBytes("11101171957140")) // TP-DT   2011-01-11 17:59:17 +01:00
        out.write(status) // TP-ST
        return out.toByteArray()
    }

    private fun semiOctets(digits: String): ByteArray {
        val padded = if (digits.length % 2 == 1) digits + "F" else digits
        return ByteArray(padded.length / 2) { i ->
            val lo = padded[2 * i].digitToInt(16)
            val hi = padded[2 * i + 1].digitToInt(16)
            ((hi shl 4) or lo).toByte()
        }
    }

    private fun hexBytes(s: String) = ByteArray(s.length / 2) { s.substring(2 * it, 2 * it + 2).toInt(16).toByte() }
}
