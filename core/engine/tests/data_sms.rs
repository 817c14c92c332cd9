//! Data SMS (binary payload to an application port) through the engine and the simulated
//! radio: what reaches the radio, what is refused before it, and incoming data PDUs.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{Rig, T0, msg, reported_states};
use simrelay_core::config::MINUTE;
use simrelay_core::protocol::{Event, IncomingSms, OutboundMessage, RecipientState::*};
use simrelay_core::sim_modem::{DataSent, SimBehaviour, SimModemConfig};
use simrelay_core::{
    Command, DataSms, EngineConfig, Error, MAX_DATA_BYTES, ModemEvent, Origin, RelayOp, Submitted,
    pdu,
};

fn rig() -> Rig {
    let config = EngineConfig {
        seed: Some(7),
        ..EngineConfig::default()
    };
    let radio = SimModemConfig {
        default: SimBehaviour {
            latency_ms: 1_000,
            report_delay_ms: 3_000,
            ..SimBehaviour::default()
        },
        ..SimModemConfig::default()
    };
    Rig::new(config, radio, &[1])
}

fn data_msg(id: &str, to: &[&str], port: u16, payload: &[u8]) -> OutboundMessage {
    OutboundMessage {
        data_port: Some(port),
        ..msg(id, to, &STANDARD.encode(payload))
    }
}

fn incoming(rig: &Rig) -> Vec<IncomingSms> {
    rig.engine
        .events_after(0, 1_000)
        .expect("events")
        .into_iter()
        .filter_map(|(_, e)| match e {
            Event::Incoming(sms) => Some(sms),
            Event::Recipient(_) => None,
        })
        .collect()
}

#[test]
fn a_data_sms_reaches_the_radio_with_its_bytes_and_port_and_is_delivered() {
    let mut rig = rig();
    let payload: Vec<u8> = (0..=255u8).step_by(2).take(MAX_DATA_BYTES).collect();
    assert_eq!(payload.len(), 128);
    rig.submit(data_msg("d1", &["+15551230001"], 8901, &payload));
    rig.run_until(T0 + MINUTE);
    assert_eq!(rig.state("d1", 0), Delivered);
    assert_eq!(
        reported_states(&rig.engine, "d1", 0),
        vec![Queued, Sending, Sent, Delivered]
    );
    assert_eq!(
        rig.radio.data_sent(),
        &[DataSent {
            message_id: "d1".into(),
            idx: 0,
            sim: 1,
            to: "+15551230001".into(),
            port: 8901,
            payload: payload.clone(),
        }]
    );
    assert_eq!(rig.radio.total_transmitted(), 1, "one PDU");
    let (_, cmd) = &rig.handed[0];
    assert_eq!(cmd.text, "", "the radio gets bytes, not the base64 text");
    assert_eq!(cmd.parts, 1);
    let r = rig
        .engine
        .recipient("d1", 0)
        .expect("read")
        .expect("exists");
    assert_eq!((r.parts, r.parts_sent, r.parts_delivered), (1, 1, 1));

    // The shell's command carries the payload in base64 and reads back the same.
    let json = serde_json::to_value(Command::Send(cmd.clone())).expect("json");
    assert_eq!(json["type"], "send");
    assert_eq!(json["data"]["port"], 8901);
    assert_eq!(json["data"]["payload"], STANDARD.encode(&payload));
    let back: Command = serde_json::from_value(json).expect("reads back");
    assert_eq!(back, Command::Send(cmd.clone()));
}

#[test]
fn without_a_delivery_report_a_data_sms_ends_sent() {
    let mut rig = rig();
    let max = vec![0xA5; MAX_DATA_BYTES];
    rig.submit(OutboundMessage {
        delivery_report: false,
        ..data_msg("d2", &["+15551230001", "+15551230002"], 1, &max)
    });
    rig.run_until(T0 + MINUTE);
    assert_eq!((rig.state("d2", 0), rig.state("d2", 1)), (Sent, Sent));
    let sent = rig.radio.data_sent();
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().all(|d| d.port == 1 && d.payload == max));
    assert_eq!(sent[1].to, "+15551230002");
}

#[test]
fn a_payload_over_133_bytes_or_bad_base64_fails_and_never_reaches_the_radio() {
    let mut rig = rig();
    rig.submit(data_msg(
        "long",
        &["+15551230001"],
        8901,
        &[7; MAX_DATA_BYTES + 1],
    ));
    for (id, text) in [("not-b64", "not base64!"), ("no-pad", "AAE"), ("empty", "")] {
        rig.submit(OutboundMessage {
            data_port: Some(8901),
            ..msg(id, &["+15551230001"], text)
        });
    }
    // A text message beside them still goes: the refusals hold nothing up.
    rig.submit(msg("text", &["+15551230001"], "hello"));
    rig.run_until(T0 + MINUTE);
    let reason = |id: &str| {
        let r = rig.engine.recipient(id, 0).expect("read").expect("exists");
        (r.state, r.reason, r.parts_sent)
    };
    assert_eq!(reason("long"), (Failed, Some("data_too_long".into()), 0));
    for id in ["not-b64", "no-pad", "empty"] {
        assert_eq!(reason(id), (Failed, Some("invalid_data".into()), 0), "{id}");
    }
    assert_eq!(rig.state("text", 0), Delivered);
    assert!(rig.radio.data_sent().is_empty());
    assert_eq!(rig.handed.len(), 1, "only the text message was handed over");
    assert_eq!(rig.radio.total_transmitted(), 1);
    assert_eq!(
        reported_states(&rig.engine, "long", 0),
        vec![Queued, Failed]
    );
    // Reported without `unsent`: another phone would refuse it too.
    let update = rig
        .engine
        .events_after(0, 1_000)
        .expect("events")
        .into_iter()
        .find_map(|(_, e)| match e {
            Event::Recipient(u) if u.message_id == "long" && u.state == Failed => Some(u),
            _ => None,
        })
        .expect("failed event");
    assert!(!update.unsent);
    assert_eq!(update.reason.as_deref(), Some("data_too_long"));
}

#[test]
fn the_port_is_part_of_the_content_and_port_zero_is_refused() {
    let mut rig = rig();
    let now = rig.now;
    let m = data_msg("d", &["+15551230001"], 8901, b"abc");
    let r = rig
        .engine
        .submit(std::slice::from_ref(&m), Origin::Local, now);
    assert_eq!(r.expect("stored"), vec![Submitted::New]);
    let r = rig
        .engine
        .submit(std::slice::from_ref(&m), Origin::Local, now);
    assert_eq!(r.expect("same"), vec![Submitted::Duplicate]);
    let other_port = OutboundMessage {
        data_port: Some(8902),
        ..m.clone()
    };
    let r = rig.engine.submit(&[other_port], Origin::Local, now);
    assert_eq!(r.expect("conflict"), vec![Submitted::Conflict]);
    let as_text = OutboundMessage {
        data_port: None,
        ..m
    };
    let r = rig.engine.submit(&[as_text], Origin::Local, now);
    assert_eq!(r.expect("conflict"), vec![Submitted::Conflict]);

    let zero = data_msg("z", &["+15551230001"], 0, b"abc");
    assert!(matches!(
        rig.engine
            .submit(std::slice::from_ref(&zero), Origin::Local, now),
        Err(Error::Invalid(_))
    ));
    // From the relay: reported failed (rejected), never stored.
    let ops = [RelayOp::Send {
        seq: 1,
        message: zero,
    }];
    rig.engine.apply_relay(&ops, now).expect("apply");
    assert_eq!(rig.engine.recipient("z", 0).expect("read"), None);
    assert_eq!(reported_states(&rig.engine, "z", 0), vec![Failed]);
}

#[test]
fn an_incoming_data_pdu_becomes_an_incoming_sms_with_its_port() {
    let mut rig = rig();
    let payload = [0x00, 0xFF, 0x10, 0x80];
    let pdu = pdu::build_data_pdu("+15557770000", 8901, &payload, T0 - 2_000, None);
    rig.radio
        .inject_incoming_data(Some(1), vec![pdu.clone()], rig.now);
    rig.step();
    let got = incoming(&rig);
    assert_eq!(got.len(), 1);
    let sms = &got[0];
    assert_eq!(sms.data_port, Some(8901));
    assert_eq!(sms.text, STANDARD.encode(payload));
    assert_eq!(sms.from, "+15557770000");
    assert_eq!(sms.sim, Some(1));
    assert_eq!(sms.sent_at, Some(T0 - 2_000));

    // A re-broadcast keeps the id and adds nothing; text SMS still have no port.
    let again = ModemEvent::IncomingData {
        sim: Some(1),
        pdus: vec![pdu],
        format: "3gpp".into(),
    };
    rig.engine
        .on_modem_event(&again, rig.now + MINUTE)
        .expect("stored once");
    rig.engine
        .on_incoming(Some(1), "+15557770000", "hi", None, rig.now)
        .expect("text");
    let got = incoming(&rig);
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].data_port, None);
}

#[test]
fn incoming_data_in_several_parts_is_joined_and_bad_pdus_store_nothing() {
    let mut rig = rig();
    let a = pdu::build_data_pdu("+15557770000", 5000, b"first ", T0, Some((9, 2, 1)));
    let b = pdu::build_data_pdu("+15557770000", 5000, b"second", T0, Some((9, 2, 2)));
    let event = |pdus: Vec<Vec<u8>>, format: &str| ModemEvent::IncomingData {
        sim: None,
        pdus,
        format: format.into(),
    };
    rig.engine
        .on_modem_event(&event(vec![a.clone(), b], "3gpp"), rig.now)
        .expect("joined");
    let got = incoming(&rig);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].text, STANDARD.encode(b"first second"));
    assert_eq!(got[0].data_port, Some(5000));

    for bad in [
        event(vec![a.clone()], "3gpp"),        // a part is missing
        event(vec![a[..20].to_vec()], "3gpp"), // truncated
        event(vec![a], "3gpp2"),               // CDMA
        event(Vec::new(), "3gpp"),
    ] {
        let err = rig
            .engine
            .on_modem_event(&bad, rig.now)
            .expect_err("refused");
        assert!(
            matches!(err, Error::Pdu(_) | Error::UnsupportedFormat(_)),
            "{err}"
        );
    }
    assert_eq!(incoming(&rig).len(), 1, "refused PDUs store nothing");
}

#[test]
fn data_sms_decoding_names_the_reason() {
    use simrelay_core::modem::DataRefusal;
    assert_eq!(
        DataSms::decode(9, "AAEC"),
        Ok(DataSms {
            port: 9,
            payload: vec![0, 1, 2]
        })
    );
    assert_eq!(DataSms::decode(9, "AA EC"), Err(DataRefusal::InvalidData));
    assert_eq!(DataSms::decode(9, "-_8="), Err(DataRefusal::InvalidData));
    let long = STANDARD.encode([0u8; MAX_DATA_BYTES + 1]);
    assert_eq!(DataSms::decode(9, &long), Err(DataRefusal::TooLong));
    assert_eq!(DataRefusal::TooLong.reason(), "data_too_long");
    assert_eq!(DataRefusal::InvalidData.reason(), "invalid_data");
}

/// The simulated far end of `echo_prefix` answers a text with `echo: ` and a data SMS with
/// its payload; other numbers stay silent.
#[test]
fn echo_numbers_answer_texts_and_data() {
    use simrelay_core::modem::{DataSms, ModemEvent, SendCommand};
    use simrelay_core::sim_modem::{SimModemConfig, SimRadio};

    let mut radio = SimRadio::new(SimModemConfig {
        echo_prefix: Some("+1555019".into()),
        ..SimModemConfig::default()
    });
    let cmd = |to: &str, data: Option<DataSms>| SendCommand {
        message_id: "m".into(),
        idx: 0,
        attempt: 1,
        sim: 1,
        to: to.into(),
        text: if data.is_some() {
            String::new()
        } else {
            "hi".into()
        },
        parts: 1,
        delivery_report: true,
        data,
    };
    radio.transmit(&cmd("+15550100001", None), 1_000);
    radio.transmit(&cmd("+15550190001", None), 1_000);
    let payload = DataSms {
        port: 53739,
        payload: vec![0, 1, 2, 255],
    };
    radio.transmit(&cmd("+15550190002", Some(payload)), 1_000);
    let events = radio.due(10_000);
    let texts: Vec<(&str, &str)> = events
        .iter()
        .filter_map(|e| match e {
            ModemEvent::Incoming { from, text, .. } => Some((from.as_str(), text.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(texts, [("+15550190001", "echo: hi")]);
    let data: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            ModemEvent::IncomingData { pdus, .. } => {
                Some(simrelay_core::pdu::parse_data_sms(pdus).expect("a data PDU"))
            }
            _ => None,
        })
        .collect();
    assert_eq!(data.len(), 1);
    assert_eq!(
        (
            data[0].from.as_str(),
            data[0].port,
            data[0].payload.as_slice()
        ),
        ("+15550190002", 53739, [0u8, 1, 2, 255].as_slice())
    );
}
