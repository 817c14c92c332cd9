//! 3GPP TS 23.040 SMS-STATUS-REPORT parsing (and building, for the simulated radio and tests).
//!
//! On Android a part's delivery PendingIntent carries the raw report in its `"pdu"` extra, as
//! AOSP `SmsMessage.createFromPdu` reads it: the SMSC address first (its length octet may be
//! `00`), then the TPDU: first octet (TP-MTI must be 2), TP-MR, TP-RA, TP-SCTS, TP-DT, TP-ST.
//! Optional TP-PI and whatever follows are ignored, as are trailing bytes. Timestamps are
//! converted to UTC unix milliseconds. Errors never quote PDU bytes or numbers.
//! [`outcome`] maps TP-Status to what the engine does (reference `android-sms.md`, section 2).
//! Incoming data SMS (SMS-DELIVER with an application port) are parsed in `deliver`.

use crate::segment::{self, GSM7_ESCAPE, Gsm7Code};
pub use simrelay_protocol::Millis;

mod deliver;
pub use deliver::{Concat, DataPdu, DataSmsIn, build_data_pdu, parse_data_pdu, parse_data_sms};

/// A parsed SMS-STATUS-REPORT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    /// The service centre's address (`+` for international numbers), if the PDU carries one.
    pub smsc: Option<String>,
    /// TP-MR: the message reference of the SMS-SUBMIT this reports on.
    pub message_ref: u8,
    /// TP-RA: the recipient of the original message (digits, `+` prefix, or alphanumeric text).
    pub recipient: String,
    /// TP-SCTS: when the service centre received the original message (UTC unix ms);
    /// `None` when the network sent an impossible date (the status still counts).
    pub sc_timestamp: Option<Millis>,
    /// TP-DT: when the status below was reached (UTC unix ms); `None` as above.
    pub discharge_time: Option<Millis>,
    /// TP-ST (TS 23.040 9.2.3.15).
    pub status: u8,
}

/// What a TP-Status value means for the part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportOutcome {
    /// 0x00-0x1F: delivered (0x01: forwarded, delivery unconfirmed).
    Delivered,
    /// 0x20-0x3F: temporary error, the service centre still tries; more reports follow.
    Pending,
    /// Permanent error, or the service centre gave up.
    Failed,
    /// 0x46: the validity period expired.
    Expired,
}

impl ReportOutcome {
    /// Whether no further report is expected for the part.
    pub fn is_final(self) -> bool {
        self != ReportOutcome::Pending
    }
}

/// Why a status report or a data SMS could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PduError {
    #[error("PDU truncated in {field}")]
    Truncated { field: &'static str },
    #[error("PDU is not an SMS-STATUS-REPORT (message type indicator {mti})")]
    NotStatusReport { mti: u8 },
    #[error("status report has a malformed {field} timestamp")]
    BadTimestamp { field: &'static str },
    #[error("status report has a malformed {field} address")]
    BadAddress { field: &'static str },
    #[error("PDU hex is malformed")]
    BadHex,
    #[error("PDU is not an SMS-DELIVER (message type indicator {mti})")]
    NotDeliver { mti: u8 },
    #[error("SMS is not a data SMS: {why}")]
    NotData { why: &'static str },
    #[error("data SMS parts do not fit together: {why}")]
    Parts { why: &'static str },
}

/// TP-MTI of an SMS-STATUS-REPORT.
const MTI_STATUS_REPORT: u8 = 2;
/// First octet of a built report: MTI 2 and TP-MMS (no more messages), as networks send it.
const FIRST_OCTET: u8 = 0x06;
const TON_MASK: u8 = 0x70;
const TON_INTERNATIONAL: u8 = 0x10;
const TON_ALPHANUMERIC: u8 = 0x50;
const TOA_INTERNATIONAL: u8 = 0x91;
const TOA_UNKNOWN: u8 = 0x81;
const TOA_ALPHANUMERIC: u8 = 0xD0;

/// Maps TP-Status to an outcome. Reserved values follow AOSP: >= 64 failed.
pub fn outcome(status: u8) -> ReportOutcome {
    match status {
        0x00..=0x1F => ReportOutcome::Delivered,
        0x20..=0x3F => ReportOutcome::Pending,
        0x46 => ReportOutcome::Expired,
        _ => ReportOutcome::Failed,
    }
}

/// Parses the `"pdu"` extra of a 3GPP delivery report.
pub fn parse_status_report(pdu: &[u8]) -> Result<StatusReport, PduError> {
    let mut r = Reader { bytes: pdu, pos: 0 };
    let sca_len = usize::from(r.u8("SMSC length")?);
    let smsc = if sca_len == 0 {
        None
    } else {
        let sca = r.take(sca_len, "SMSC address")?;
        let (toa, digits) = sca
            .split_first()
            .ok_or(PduError::Truncated { field: "SMSC" })?;
        decode_smsc(*toa, digits)?
    };
    let first = r.u8("first octet")?;
    let mti = first & 0x03;
    if mti != MTI_STATUS_REPORT {
        return Err(PduError::NotStatusReport { mti });
    }
    let message_ref = r.u8("message reference")?;
    let recipient = read_address(&mut r)?;
    // Lenient like AOSP, which never rejects a report for its dates: a malformed timestamp
    // must not cost the part its delivery status.
    let sc_timestamp = decode_timestamp(r.take(7, "SC timestamp")?, "SC").ok();
    let discharge_time = decode_timestamp(r.take(7, "discharge time")?, "discharge").ok();
    let status = r.u8("status")?;
    Ok(StatusReport {
        smsc,
        message_ref,
        recipient,
        sc_timestamp,
        discharge_time,
        status,
    })
}

/// Builds an SMS-STATUS-REPORT `"pdu"` (SMSC address first) that [`parse_status_report`] reads
/// back. Times are encoded in UTC (TZ 0) to the second and clamped to 1990-2089, the range of
/// two-digit years. A recipient of `+`/digits/`*`/`#` is a number, anything else alphanumeric
/// (GSM-7, characters outside it become `?`); over-long addresses are truncated to what the
/// length octet can say.
pub fn build_status_report(
    smsc: Option<&str>,
    message_ref: u8,
    recipient: &str,
    sc_timestamp: Millis,
    discharge_time: Millis,
    status: u8,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(40);
    match smsc.filter(|s| !s.is_empty()) {
        None => out.push(0),
        Some(number) => {
            let (toa, digits) = number_digits(number);
            // At most 10 address octets after the TOA (TS 24.011 RP-address).
            let octets = bcd_pack(&digits[..digits.len().min(20)]);
            out.push(u8::try_from(octets.len() + 1).expect("at most 11 octets"));
            out.push(toa);
            out.extend_from_slice(&octets);
        }
    }
    out.push(FIRST_OCTET);
    out.push(message_ref);
    write_address(&mut out, recipient);
    out.extend_from_slice(&encode_timestamp(sc_timestamp));
    out.extend_from_slice(&encode_timestamp(discharge_time));
    out.push(status);
    out
}

/// Decodes hex (either case; ASCII whitespace is skipped).
pub fn parse_hex(s: &str) -> Result<Vec<u8>, PduError> {
    let compact: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    hex::decode(compact).map_err(|_| PduError::BadHex)
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn u8(&mut self, field: &'static str) -> Result<u8, PduError> {
        Ok(self.take(1, field)?[0])
    }

    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], PduError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len());
        let end = end.ok_or(PduError::Truncated { field })?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }
}

fn decode_smsc(toa: u8, octets: &[u8]) -> Result<Option<String>, PduError> {
    let mut count = octets.len() * 2;
    // A 0xF filler may only stand in the last (high) nibble.
    if octets.last().is_some_and(|o| o >> 4 == 0xF) {
        count -= 1;
    }
    let digits = bcd_digits(octets, count, "SMSC")?;
    if digits.is_empty() {
        return Ok(None);
    }
    Ok(Some(with_ton(toa, digits)))
}

fn read_address(r: &mut Reader<'_>) -> Result<String, PduError> {
    let semi_octets = usize::from(r.u8("recipient length")?);
    let toa = r.u8("recipient type")?;
    let octets = r.take(semi_octets.div_ceil(2), "recipient address")?;
    if toa & TON_MASK == TON_ALPHANUMERIC {
        return Ok(gsm7_unpack(octets, semi_octets * 4 / 7));
    }
    // A stray nibble (0xF filler mid-number) costs the address, not the report: the part's
    // status is what matters. Its digits become `?`.
    let digits = match bcd_digits(octets, semi_octets, "recipient") {
        Err(PduError::BadAddress { .. }) => bcd_lossy(octets, semi_octets),
        other => other?,
    };
    Ok(with_ton(toa, digits))
}

fn bcd_lossy(octets: &[u8], count: usize) -> String {
    (0..count)
        .map(|i| {
            let nibble = octets
                .get(i / 2)
                .map_or(0xF, |o| if i % 2 == 0 { o & 0x0F } else { o >> 4 });
            if nibble <= 9 {
                char::from(b'0' + nibble)
            } else {
                '?'
            }
        })
        .collect()
}

fn with_ton(toa: u8, digits: String) -> String {
    if toa & TON_MASK == TON_INTERNATIONAL {
        format!("+{digits}")
    } else {
        digits
    }
}

/// `count` swapped-nibble BCD digits (TS 23.040 9.1.2.3: A `*`, B `#`, C-E `a`-`c`).
fn bcd_digits(octets: &[u8], count: usize, field: &'static str) -> Result<String, PduError> {
    (0..count)
        .map(|i| {
            let octet = octets.get(i / 2).ok_or(PduError::Truncated { field })?;
            let nibble = if i % 2 == 0 { octet & 0x0F } else { octet >> 4 };
            match nibble {
                0..=9 => Ok(char::from(b'0' + nibble)),
                0xA => Ok('*'),
                0xB => Ok('#'),
                0xC => Ok('a'),
                0xD => Ok('b'),
                0xE => Ok('c'),
                _ => Err(PduError::BadAddress { field }),
            }
        })
        .collect()
}

/// Splits a number into its TOA and BCD nibbles; characters other than digits, `*` and `#`
/// are dropped.
fn number_digits(number: &str) -> (u8, Vec<u8>) {
    let (toa, rest) = match number.strip_prefix('+') {
        Some(rest) => (TOA_INTERNATIONAL, rest),
        None => (TOA_UNKNOWN, number),
    };
    let digits = rest
        .chars()
        .filter_map(|c| match c {
            '0'..='9' => c.to_digit(10).and_then(|d| u8::try_from(d).ok()),
            '*' => Some(0xA),
            '#' => Some(0xB),
            _ => None,
        })
        .collect();
    (toa, digits)
}

fn bcd_pack(digits: &[u8]) -> Vec<u8> {
    digits
        .chunks(2)
        .map(|pair| pair[0] | (pair.get(1).copied().unwrap_or(0xF) << 4))
        .collect()
}

fn is_number(s: &str) -> bool {
    let rest = s.strip_prefix('+').unwrap_or(s);
    rest.chars()
        .all(|c| c.is_ascii_digit() || c == '*' || c == '#')
}

fn write_address(out: &mut Vec<u8>, address: &str) {
    if is_number(address) {
        let (toa, digits) = number_digits(address);
        let digits = &digits[..digits.len().min(usize::from(u8::MAX))];
        out.push(u8::try_from(digits.len()).expect("truncated to 255"));
        out.push(toa);
        out.extend_from_slice(&bcd_pack(digits));
        return;
    }
    // 145 septets = 255 semi-octets, the most the length octet can say.
    let mut septets = Vec::new();
    for c in address.chars() {
        let code = segment::gsm7_code(c).unwrap_or(Gsm7Code::Default(0x3F));
        let enc: &[u8] = match code {
            Gsm7Code::Default(s) => &[s],
            Gsm7Code::Extension(s) => &[GSM7_ESCAPE, s],
        };
        if septets.len() + enc.len() > 145 {
            break;
        }
        septets.extend_from_slice(enc);
    }
    let semi_octets = (septets.len() * 7).div_ceil(4);
    out.push(u8::try_from(semi_octets).expect("at most 255 semi-octets"));
    out.push(TOA_ALPHANUMERIC);
    out.extend_from_slice(&gsm7_pack(&septets));
}

/// Unpacks `count` septets (LSB first) and decodes them with the default and extension tables.
/// An escape before a code the extension table lacks shows the default character (TS 23.038).
fn gsm7_unpack(octets: &[u8], count: usize) -> String {
    let septet = |i: usize| -> u8 {
        let bit = i * 7;
        let lo = u16::from(octets.get(bit / 8).copied().unwrap_or(0));
        let hi = u16::from(octets.get(bit / 8 + 1).copied().unwrap_or(0));
        let both = (hi << 8) | lo;
        u8::try_from((both >> (bit % 8)) & 0x7F).expect("masked to 7 bits")
    };
    let mut text = String::new();
    let mut escaped = false;
    for s in (0..count).map(septet) {
        if escaped {
            escaped = false;
            if let Some(c) = segment::gsm7_extension_char(s).or_else(|| segment::gsm7_char(s)) {
                text.push(c);
            }
        } else if s == GSM7_ESCAPE {
            escaped = true;
        } else if let Some(c) = segment::gsm7_char(s) {
            text.push(c);
        }
    }
    text
}

fn gsm7_pack(septets: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; (septets.len() * 7).div_ceil(8)];
    for (i, &s) in septets.iter().enumerate() {
        let bit = i * 7;
        let value = u16::from(s & 0x7F) << (bit % 8);
        let [lo, hi] = value.to_le_bytes();
        out[bit / 8] |= lo;
        if let Some(next) = out.get_mut(bit / 8 + 1) {
            *next |= hi;
        }
    }
    out
}

/// One swapped-nibble BCD octet as a number 0-99.
fn bcd(octet: u8) -> Option<i64> {
    let (lo, hi) = (octet & 0x0F, octet >> 4);
    (lo <= 9 && hi <= 9).then(|| i64::from(lo) * 10 + i64::from(hi))
}

fn to_bcd(value: i64) -> u8 {
    let v = u8::try_from(value.rem_euclid(100)).expect("0..100");
    ((v % 10) << 4) | (v / 10)
}

/// TP-SCTS / TP-DT: YY MM DD hh mm ss TZ, TZ in quarter hours (bit 3 = negative).
fn decode_timestamp(o: &[u8], field: &'static str) -> Result<Millis, PduError> {
    let bad = || PduError::BadTimestamp { field };
    let mut v = [0i64; 6];
    for (slot, &octet) in v.iter_mut().zip(o) {
        *slot = bcd(octet).ok_or_else(bad)?;
    }
    let [yy, month, day, hour, minute, second] = v;
    let year = if yy >= 90 { 1900 + yy } else { 2000 + yy };
    let valid = (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour < 24
        && minute < 60
        && second < 60;
    let tz = o.get(6).ok_or_else(bad)?;
    if !valid || tz >> 4 > 9 {
        return Err(bad());
    }
    let quarters = i64::from(tz & 0x07) * 10 + i64::from(tz >> 4);
    let offset = if tz & 0x08 != 0 { -quarters } else { quarters } * 15 * 60;
    let local = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    Ok((local - offset) * 1000)
}

/// 1990-01-01T00:00:00Z and 2089-12-31T23:59:59Z: what two-digit years can say.
const MIN_TIMESTAMP: Millis = 631_152_000_000;
const MAX_TIMESTAMP: Millis = 3_786_911_999_000;

fn encode_timestamp(ms: Millis) -> [u8; 7] {
    let secs = ms.clamp(MIN_TIMESTAMP, MAX_TIMESTAMP).div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    [
        to_bcd(year),
        to_bcd(month),
        to_bcd(day),
        to_bcd(rest / 3600),
        to_bcd(rest / 60 % 60),
        to_bcd(rest % 60),
        0,
    ]
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// hbjorgo/ATLib's vector, checked by hand in the reference.
    const VECTOR: &str = "07911326040000F006D60B911326880736F4111011719551401110117195714000";
    /// 2011-01-11 17:59:15+01:00 and 17:59:17+01:00.
    const SCTS_MS: Millis = 1_294_765_155_000;
    const DT_MS: Millis = 1_294_765_157_000;

    fn vector() -> Vec<u8> {
        parse_hex(VECTOR).expect("valid hex")
    }

    #[test]
    fn parses_the_reference_vector() {
        let report = parse_status_report(&vector()).expect("parses");
        assert_eq!(
            report,
            StatusReport {
                smsc: Some("+31624000000".to_owned()),
                message_ref: 214,
                recipient: "+31628870634".to_owned(),
                sc_timestamp: Some(SCTS_MS),
                discharge_time: Some(DT_MS),
                status: 0,
            }
        );
        assert_eq!(outcome(report.status), ReportOutcome::Delivered);
    }

    #[test]
    fn parses_without_smsc() {
        let mut pdu = vec![0];
        pdu.extend_from_slice(&vector()[8..]);
        let report = parse_status_report(&pdu).expect("parses");
        assert_eq!(report.smsc, None);
        assert_eq!(report.recipient, "+31628870634");
        assert_eq!(report.message_ref, 214);
    }

    #[test]
    fn tolerates_pi_and_trailing_bytes() {
        let mut pdu = vector();
        // TP-PI with PID and DCS, then junk.
        pdu.extend_from_slice(&[0x03, 0x00, 0x00, 0xFF, 0xFF]);
        assert_eq!(parse_status_report(&pdu).expect("parses").status, 0);
    }

    #[test]
    fn every_truncation_errors() {
        let pdu = vector();
        for len in 0..pdu.len() {
            let err = parse_status_report(&pdu[..len]).expect_err("truncated must fail");
            assert!(matches!(err, PduError::Truncated { .. }), "{len}: {err:?}");
        }
    }

    #[test]
    fn wrong_mti_is_not_a_status_report() {
        for (first, mti) in [(0x04u8, 0u8), (0x01, 1), (0x03, 3)] {
            let mut pdu = vector();
            pdu[8] = first;
            assert_eq!(
                parse_status_report(&pdu),
                Err(PduError::NotStatusReport { mti })
            );
        }
    }

    #[test]
    fn bad_dates_are_rejected() {
        // Offsets in the vector: SCTS at 18..25, DT at 25..32.
        let cases = [
            (19, 0x31, "SC"),        // month 13
            (20, 0x23, "SC"),        // day 32
            (20, 0xA1, "SC"),        // nibble A
            (21, 0x42, "SC"),        // hour 24
            (30, 0x06, "discharge"), // second 60
            (31, 0xA0, "discharge"), // TZ nibble A
        ];
        for (at, octet, field) in cases {
            let mut pdu = vector();
            pdu[at] = octet;
            assert_eq!(
                decode_timestamp(&pdu[if field == "SC" { 18 } else { 25 }..][..7], field),
                Err(PduError::BadTimestamp { field }),
                "octet {at}"
            );
            // The report itself still counts: only that date is unknown.
            let report = parse_status_report(&pdu).expect("lenient about dates");
            assert_eq!(report.status, 0x00);
            let date = if field == "SC" {
                report.sc_timestamp
            } else {
                report.discharge_time
            };
            assert_eq!(date, None, "octet {at}");
        }
        // 2011 is not a leap year: 29 February is invalid; 2012's is fine.
        let mut pdu = vector();
        pdu[19] = 0x20;
        pdu[20] = 0x92;
        assert_eq!(parse_status_report(&pdu).map(|r| r.sc_timestamp), Ok(None));
        pdu[18] = 0x21;
        assert!(parse_status_report(&pdu).is_ok_and(|r| r.sc_timestamp.is_some()));
    }

    #[test]
    fn bad_address_nibble_costs_the_address_not_the_report() {
        let mut pdu = vector();
        pdu[13] = 0x1F; // a filler in the middle of the recipient
        let report = parse_status_report(&pdu).expect("the status still counts");
        assert_eq!(report.recipient, "+31?18870634");
        assert_eq!(report.status, 0x00);
    }

    #[test]
    fn timezones_convert_to_utc() {
        let mut pdu = vector();
        pdu[24] = 0x00; // SCTS in UTC
        pdu[31] = 0x48; // DT at -01:00 (4 quarters, sign bit)
        let report = parse_status_report(&pdu).expect("parses");
        assert_eq!(report.sc_timestamp, Some(SCTS_MS + 3_600_000));
        assert_eq!(report.discharge_time, Some(DT_MS + 7_200_000));
        pdu[31] = 0x3A; // -5:45 (Nepal is +5:45; 23 quarters)
        let report = parse_status_report(&pdu).expect("parses");
        assert_eq!(
            report.discharge_time,
            Some(DT_MS + 3_600_000 + 23 * 900_000)
        );
    }

    #[test]
    fn alphanumeric_recipient() {
        let pdu = build_status_report(None, 7, "Bank{1}", SCTS_MS, DT_MS, 0x46);
        // 9 septets (two escapes) = 63 bits = 16 semi-octets, TOA 0xD0.
        assert_eq!(&pdu[3..5], &[16, 0xD0]);
        let report = parse_status_report(&pdu).expect("parses");
        assert_eq!(report.recipient, "Bank{1}");
        assert_eq!(outcome(report.status), ReportOutcome::Expired);
        // "Design@Home" is the TS 23.040 example: 0x14 semi-octets, packed "C4F2 ...".
        let pdu = build_status_report(None, 7, "Design@Home", SCTS_MS, DT_MS, 0);
        assert_eq!(&pdu[3..7], &[0x14, 0xD0, 0xC4, 0xF2]);
        assert_eq!(
            parse_status_report(&pdu).expect("parses").recipient,
            "Design@Home"
        );
    }

    #[test]
    fn builds_the_reference_vector() {
        let built =
            build_status_report(Some("+31624000000"), 214, "+31628870634", SCTS_MS, DT_MS, 0);
        // Same bytes except the timestamps, which we write in UTC.
        let v = vector();
        assert_eq!(built.len(), v.len());
        assert_eq!(built[..18], v[..18]);
        assert_eq!(&built[18..25], &[0x11, 0x10, 0x11, 0x61, 0x95, 0x51, 0x00]);
        assert_eq!(&built[25..32], &[0x11, 0x10, 0x11, 0x61, 0x95, 0x71, 0x00]);
        assert_eq!(built[32], v[32]);
    }

    #[test]
    fn outcomes() {
        for (status, expected) in [
            (0x00, ReportOutcome::Delivered),
            (0x01, ReportOutcome::Delivered),
            (0x1F, ReportOutcome::Delivered),
            (0x20, ReportOutcome::Pending),
            (0x30, ReportOutcome::Pending),
            (0x3F, ReportOutcome::Pending),
            (0x40, ReportOutcome::Failed),
            (0x45, ReportOutcome::Failed),
            (0x46, ReportOutcome::Expired),
            (0x47, ReportOutcome::Failed),
            (0x60, ReportOutcome::Failed),
            (0x7F, ReportOutcome::Failed),
            (0x80, ReportOutcome::Failed),
            (0xFF, ReportOutcome::Failed),
        ] {
            assert_eq!(outcome(status), expected, "{status:#04x}");
        }
        assert!(!ReportOutcome::Pending.is_final());
        assert!(ReportOutcome::Delivered.is_final() && ReportOutcome::Expired.is_final());
    }

    #[test]
    fn hex_helper() {
        assert_eq!(parse_hex("00 0a\nFf"), Ok(vec![0, 10, 255]));
        assert_eq!(parse_hex("abc"), Err(PduError::BadHex));
        assert_eq!(parse_hex("zz"), Err(PduError::BadHex));
    }

    #[test]
    fn errors_do_not_quote_the_pdu() {
        let errors = [
            PduError::Truncated { field: "status" },
            PduError::NotStatusReport { mti: 1 },
            PduError::BadTimestamp { field: "SC" },
            PduError::BadAddress { field: "recipient" },
            PduError::BadHex,
            PduError::NotDeliver { mti: 1 },
            PduError::NotData {
                why: "no application port",
            },
            PduError::Parts {
                why: "no PDU given",
            },
        ];
        for err in errors {
            let text = err.to_string();
            assert!(
                !text.chars().any(|c| c.is_ascii_digit() && c != '1'),
                "{text}"
            );
        }
    }

    #[test]
    fn civil_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        for days in [-1, 0, 59, 10_957, 11_016, 11_017, 20_000, 47_482] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    fn number() -> impl Strategy<Value = String> {
        "\\+?[0-9*#]{0,20}"
    }

    fn recipient() -> impl Strategy<Value = String> {
        prop_oneof![number(), "[A-Za-z][A-Za-z0-9 @€{}.]{0,10}"]
    }

    proptest! {
        #[test]
        fn build_parse_round_trips(
            smsc in proptest::option::of("\\+?[0-9]{1,20}"),
            message_ref: u8,
            recipient in recipient(),
            scts in MIN_TIMESTAMP / 1000..=MAX_TIMESTAMP / 1000,
            dt in MIN_TIMESTAMP / 1000..=MAX_TIMESTAMP / 1000,
            status: u8,
        ) {
            let pdu = build_status_report(smsc.as_deref(), message_ref, &recipient, scts * 1000, dt * 1000, status);
            let report = parse_status_report(&pdu).expect("built reports parse");
            prop_assert_eq!(report.smsc, smsc);
            prop_assert_eq!(report.message_ref, message_ref);
            prop_assert_eq!(report.recipient, recipient);
            prop_assert_eq!(report.sc_timestamp, Some(scts * 1000));
            prop_assert_eq!(report.discharge_time, Some(dt * 1000));
            prop_assert_eq!(report.status, status);
        }

        #[test]
        fn parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse_status_report(&bytes);
        }

        #[test]
        fn parse_never_panics_on_mutated_vectors(at in 0usize..33, octet: u8, cut in 0usize..=33) {
            let mut pdu = vector();
            pdu[at] = octet;
            pdu.truncate(cut);
            let _ = parse_status_report(&pdu);
        }
    }
}
