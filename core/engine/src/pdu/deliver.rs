//! 3GPP TS 23.040 SMS-DELIVER parsing for incoming data SMS (and building, for the simulated
//! radio and tests).
//!
//! Android broadcasts an SMS addressed to an application port as `DATA_SMS_RECEIVED` with the
//! raw PDUs in its `"pdus"` extra (SMSC address first, as for delivery reports). The core
//! parses them itself: first octet (TP-MTI 0, TP-UDHI set), TP-OA, TP-PID, TP-DCS (8-bit
//! data), TP-SCTS, TP-UDL and the user data, whose header must carry an application-port
//! element (IEI 0x05, 16-bit ports, or 0x04, 8-bit ports). A concatenation element (0x00 or
//! 0x08) joins several PDUs in order. Errors never quote PDU bytes, numbers or payloads.

use super::{
    PduError, Reader, decode_smsc, decode_timestamp, encode_timestamp, read_address, write_address,
};
use crate::pdu::Millis;

/// One SMS-DELIVER PDU of a data SMS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataPdu {
    /// TP-OA: the sender (`+` for international numbers, or alphanumeric text).
    pub from: String,
    /// The destination application port.
    pub port: u16,
    /// TP-SCTS (UTC unix ms); `None` when the network sent an impossible date.
    pub sc_timestamp: Option<Millis>,
    /// This PDU's place in a concatenated SMS, if it is one.
    pub concat: Option<Concat>,
    /// The user data after the header.
    pub payload: Vec<u8>,
}

/// A concatenation element (TS 23.040 9.2.3.24.1 and .8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Concat {
    pub reference: u16,
    pub total: u8,
    /// 1-based.
    pub seq: u8,
}

/// A data SMS as the engine stores it: every part joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataSmsIn {
    pub from: String,
    pub port: u16,
    pub sent_at: Option<Millis>,
    pub payload: Vec<u8>,
}

const MTI_DELIVER: u8 = 0;
const UDHI: u8 = 0x40;
/// First octet of a built PDU: MTI 0, TP-MMS (no more messages) and TP-UDHI.
const FIRST_OCTET: u8 = 0x04 | UDHI;
const IEI_CONCAT_8: u8 = 0x00;
const IEI_PORTS_8: u8 = 0x04;
const IEI_PORTS_16: u8 = 0x05;
const IEI_CONCAT_16: u8 = 0x08;
/// TP-DCS of a built PDU: general coding, no class, 8-bit data.
const DCS_8BIT: u8 = 0x04;

/// Whether TP-DCS (TS 23.038 section 4) says 8-bit data, uncompressed.
fn is_eight_bit(dcs: u8) -> bool {
    match dcs >> 4 {
        // General data coding and automatic deletion groups: bit 5 compressed,
        // bits 3-2 the alphabet (01 = 8-bit).
        0x0..=0x7 => dcs & 0x20 == 0 && (dcs >> 2) & 0x03 == 0x01,
        // Data coding / message class: bit 2 = 8-bit.
        0xF => dcs & 0x04 != 0,
        // Message waiting groups (GSM-7 or UCS-2) and reserved codings.
        _ => false,
    }
}

/// Parses one SMS-DELIVER PDU of a data SMS (the SMSC address first).
pub fn parse_data_pdu(pdu: &[u8]) -> Result<DataPdu, PduError> {
    let mut r = Reader { bytes: pdu, pos: 0 };
    let sca_len = usize::from(r.u8("SMSC length")?);
    if sca_len > 0 {
        let sca = r.take(sca_len, "SMSC address")?;
        let (toa, digits) = sca
            .split_first()
            .ok_or(PduError::Truncated { field: "SMSC" })?;
        decode_smsc(*toa, digits)?;
    }
    let first = r.u8("first octet")?;
    let mti = first & 0x03;
    if mti != MTI_DELIVER {
        return Err(PduError::NotDeliver { mti });
    }
    let from = read_address(&mut r)?;
    let _pid = r.u8("protocol identifier")?;
    let dcs = r.u8("data coding scheme")?;
    let sc_timestamp = decode_timestamp(r.take(7, "SC timestamp")?, "SC").ok();
    // For 8-bit data TP-UDL counts octets, the header included.
    let udl = usize::from(r.u8("user data length")?);
    if !is_eight_bit(dcs) {
        return Err(PduError::NotData {
            why: "not 8-bit data",
        });
    }
    if first & UDHI == 0 {
        return Err(PduError::NotData {
            why: "no user data header",
        });
    }
    let ud = r.take(udl, "user data")?;
    let (&udhl, rest) = ud.split_first().ok_or(PduError::Truncated {
        field: "user data header",
    })?;
    let udhl = usize::from(udhl);
    if udhl > rest.len() {
        return Err(PduError::Truncated {
            field: "user data header",
        });
    }
    let (mut header, payload) = rest.split_at(udhl);
    let mut port = None;
    let mut concat = None;
    while let [iei, len, tail @ ..] = header {
        let len = usize::from(*len);
        if len > tail.len() {
            return Err(PduError::Truncated {
                field: "user data header",
            });
        }
        let (data, next) = tail.split_at(len);
        // Later elements of the same kind win (TS 23.040 9.2.3.24: the last occurrence).
        match (*iei, data) {
            (IEI_PORTS_16, [d1, d0, _, _]) => port = Some(u16::from_be_bytes([*d1, *d0])),
            (IEI_PORTS_8, [d, _]) => port = Some(u16::from(*d)),
            (IEI_CONCAT_8, [reference, total, seq]) => {
                concat = Some(Concat {
                    reference: u16::from(*reference),
                    total: *total,
                    seq: *seq,
                });
            }
            (IEI_CONCAT_16, [r1, r0, total, seq]) => {
                concat = Some(Concat {
                    reference: u16::from_be_bytes([*r1, *r0]),
                    total: *total,
                    seq: *seq,
                });
            }
            // Other elements (and malformed known ones) are skipped, as AOSP does.
            _ => {}
        }
        header = next;
    }
    let port = port.ok_or(PduError::NotData {
        why: "no application port",
    })?;
    Ok(DataPdu {
        from,
        port,
        sc_timestamp,
        concat,
        payload: payload.to_vec(),
    })
}

/// Parses the PDUs of one incoming data SMS (Android's `"pdus"` extra) and joins their
/// payloads in concatenation order. Every part must be there, once, with the same sender,
/// port and reference.
pub fn parse_data_sms(pdus: &[Vec<u8>]) -> Result<DataSmsIn, PduError> {
    let mut parts = pdus
        .iter()
        .map(|p| parse_data_pdu(p))
        .collect::<Result<Vec<_>, _>>()?;
    let first = parts.first().ok_or(PduError::Parts {
        why: "no PDU given",
    })?;
    let (from, port, concat) = (first.from.clone(), first.port, first.concat);
    let expected = concat.map_or(1, |c| usize::from(c.total));
    if parts.len() != expected {
        return Err(PduError::Parts {
            why: "part count differs from the concatenation header",
        });
    }
    if parts.len() > 1 {
        let mismatch = parts.iter().any(|p| {
            p.from != from
                || p.port != port
                || p.concat.map(|c| (c.reference, c.total))
                    != concat.map(|c| (c.reference, c.total))
        });
        if mismatch {
            return Err(PduError::Parts {
                why: "parts of different messages",
            });
        }
        parts.sort_by_key(|p| p.concat.map_or(0, |c| c.seq));
        let in_order = parts
            .iter()
            .enumerate()
            .all(|(i, p)| p.concat.is_some_and(|c| usize::from(c.seq) == i + 1));
        if !in_order {
            return Err(PduError::Parts {
                why: "part numbers are not 1 to total",
            });
        }
    }
    let sent_at = parts.iter().find_map(|p| p.sc_timestamp);
    Ok(DataSmsIn {
        from,
        port,
        sent_at,
        payload: parts.into_iter().flat_map(|p| p.payload).collect(),
    })
}

/// Builds an SMS-DELIVER PDU of a data SMS (no SMSC address, 16-bit ports, 8-bit data) that
/// [`parse_data_pdu`] reads back; `concat` is (reference, total, seq). The payload is cut to
/// what one PDU holds.
pub fn build_data_pdu(
    from: &str,
    port: u16,
    payload: &[u8],
    sc_timestamp: Millis,
    concat: Option<(u8, u8, u8)>,
) -> Vec<u8> {
    let mut header = vec![IEI_PORTS_16, 4];
    header.extend_from_slice(&port.to_be_bytes());
    header.extend_from_slice(&port.to_be_bytes());
    if let Some((reference, total, seq)) = concat {
        header.extend_from_slice(&[IEI_CONCAT_8, 3, reference, total, seq]);
    }
    let room = 140 - 1 - header.len();
    let payload = &payload[..payload.len().min(room)];
    let mut out = vec![0, FIRST_OCTET];
    write_address(&mut out, from);
    out.push(0); // TP-PID
    out.push(DCS_8BIT);
    out.extend_from_slice(&encode_timestamp(sc_timestamp));
    out.push(u8::try_from(1 + header.len() + payload.len()).expect("at most 140 octets"));
    out.push(u8::try_from(header.len()).expect("a short header"));
    out.extend_from_slice(&header);
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdu::parse_hex;
    use proptest::prelude::*;

    /// A data SMS to port 8901 from +15551234567, built by hand:
    ///
    /// ```text
    /// 07 91 51 55 00 00 00 F0   SMSC: 7 octets, TOA 0x91 (international), "15550000000" + F filler
    /// 44                        first octet: TP-UDHI (0x40) | TP-MMS (0x04), TP-MTI 00 = DELIVER
    /// 0B 91 51 55 21 43 65 F7   TP-OA: 11 digits, TOA 0x91, "15551234567" + F filler
    /// 00                        TP-PID
    /// 04                        TP-DCS: general coding, no class, 8-bit data
    /// 62 21 30 50 04 00 00      TP-SCTS: 2026-12-03 05:40:00, TZ +0 (swapped-nibble BCD)
    /// 0A                        TP-UDL: 10 octets (header included, 8-bit data)
    /// 06                        UDHL: 6 header octets follow
    /// 05 04 22 C5 23 F0         IEI 0x05 (16-bit ports), length 4, dest 0x22C5 = 8901, orig 0x23F0
    /// DE AD BE                  payload
    /// ```
    const PORT16: &str =
        "07915155000000F0 44 0B915155214365F7 00 04 62213050040000 0A 06 050422C523F0 DEADBE";
    /// 2026-12-03T05:40:00Z.
    const SCTS_MS: Millis = 1_796_276_400_000;

    #[test]
    fn parses_a_hand_built_16_bit_port_pdu() {
        let pdu = parse_hex(PORT16).expect("hex");
        let parsed = parse_data_pdu(&pdu).expect("parses");
        assert_eq!(
            parsed,
            DataPdu {
                from: "+15551234567".into(),
                port: 8901,
                sc_timestamp: Some(SCTS_MS),
                concat: None,
                payload: vec![0xDE, 0xAD, 0xBE],
            }
        );
        let sms = parse_data_sms(&[pdu]).expect("one part");
        assert_eq!(sms.port, 8901);
        assert_eq!(sms.sent_at, Some(SCTS_MS));
        assert_eq!(sms.payload, vec![0xDE, 0xAD, 0xBE]);
    }

    #[test]
    fn parses_8_bit_ports_without_smsc_and_other_elements() {
        // 00: no SMSC. 40: TP-UDHI, DELIVER. 04 81 21 43: TP-OA "1234" (TOA 0x81, unknown).
        // 00 F5: PID, DCS 0xF5 (data coding group, class 1, 8-bit). SCTS as above.
        // 0B: UDL 11. 07: UDHL. 0A 01 00: an unknown element (text formatting) is skipped.
        // 04 02 10 20: IEI 0x04 (8-bit ports), dest 0x10 = 16, orig 0x20. Then 01 02 03.
        let pdu = parse_hex("00 40 04812143 00 F5 62213050040000 0B 07 0A0100 04021020 010203")
            .expect("hex");
        let parsed = parse_data_pdu(&pdu).expect("parses");
        assert_eq!(parsed.from, "1234");
        assert_eq!(parsed.port, 16);
        assert_eq!(parsed.payload, vec![1, 2, 3]);
    }

    #[test]
    fn refuses_what_is_not_a_data_sms() {
        let pdu = parse_hex(PORT16).expect("hex");
        // Offsets: first octet 8, DCS 18, UDHI in the first octet.
        let mut text = pdu.clone();
        text[18] = 0x00; // GSM-7
        assert_eq!(
            parse_data_pdu(&text),
            Err(PduError::NotData {
                why: "not 8-bit data"
            })
        );
        let mut compressed = pdu.clone();
        compressed[18] = 0x24; // 8-bit, compressed
        assert!(matches!(
            parse_data_pdu(&compressed),
            Err(PduError::NotData { .. })
        ));
        let mut no_udh = pdu.clone();
        no_udh[8] = 0x04;
        assert_eq!(
            parse_data_pdu(&no_udh),
            Err(PduError::NotData {
                why: "no user data header"
            })
        );
        let mut no_port = pdu.clone();
        no_port[28] = 0x0A; // the port element becomes an unknown one
        assert_eq!(
            parse_data_pdu(&no_port),
            Err(PduError::NotData {
                why: "no application port"
            })
        );
        let mut submit = pdu.clone();
        submit[8] = 0x41;
        assert_eq!(
            parse_data_pdu(&submit),
            Err(PduError::NotDeliver { mti: 1 })
        );
        let mut long_header = pdu;
        long_header[27] = 0x0A; // UDHL beyond the user data
        assert!(matches!(
            parse_data_pdu(&long_header),
            Err(PduError::Truncated { .. })
        ));
    }

    #[test]
    fn every_truncation_errors() {
        let pdu = parse_hex(PORT16).expect("hex");
        for len in 0..pdu.len() {
            assert!(
                matches!(parse_data_pdu(&pdu[..len]), Err(PduError::Truncated { .. })),
                "{len}"
            );
        }
    }

    #[test]
    fn joins_concatenated_parts_in_order() {
        let a = build_data_pdu("+15551234567", 8901, b"hello ", SCTS_MS, Some((7, 2, 1)));
        let b = build_data_pdu("+15551234567", 8901, b"world", SCTS_MS, Some((7, 2, 2)));
        let sms = parse_data_sms(&[b, a.clone()]).expect("joins");
        assert_eq!(sms.payload, b"hello world");
        assert_eq!(sms.from, "+15551234567");
        let err = |pdus: &[Vec<u8>]| parse_data_sms(pdus).expect_err("refused");
        assert!(
            matches!(err(std::slice::from_ref(&a)), PduError::Parts { .. }),
            "missing part"
        );
        assert!(matches!(
            err(&[a.clone(), a.clone()]),
            PduError::Parts { .. }
        ));
        let other = build_data_pdu("+15551234567", 9000, b"world", SCTS_MS, Some((7, 2, 2)));
        assert!(matches!(err(&[a, other]), PduError::Parts { .. }));
        assert!(matches!(err(&[]), PduError::Parts { .. }));
    }

    #[test]
    fn built_pdu_matches_the_hand_built_one() {
        // Same bytes but the SMSC (none: 1 octet instead of 8) and the originator port
        // (the destination's).
        let built = build_data_pdu("+15551234567", 8901, &[0xDE, 0xAD, 0xBE], SCTS_MS, None);
        let hand = parse_hex(PORT16).expect("hex");
        assert_eq!(built.len(), hand.len() - 7);
        assert_eq!(built[0], 0);
        assert_eq!(built[1..25], hand[8..32]);
        assert_eq!(&built[25..27], &[0x22, 0xC5]);
        assert_eq!(built[27..], hand[34..]);
    }

    proptest! {
        #[test]
        fn build_parse_round_trips(
            from in "\\+?[0-9]{1,15}",
            port: u16,
            payload in prop::collection::vec(any::<u8>(), 0..=133),
            scts in 631_152_000i64..=3_786_911_999,
        ) {
            let pdu = build_data_pdu(&from, port, &payload, scts * 1000, None);
            let sms = parse_data_sms(&[pdu]).expect("built PDUs parse");
            prop_assert_eq!(sms.from, from);
            prop_assert_eq!(sms.port, port);
            prop_assert_eq!(sms.payload, payload);
            prop_assert_eq!(sms.sent_at, Some(scts * 1000));
        }

        #[test]
        fn parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..160)) {
            let _ = parse_data_pdu(&bytes);
        }
    }
}
