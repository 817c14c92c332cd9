use super::*;

fn message() -> OutboundMessage {
    OutboundMessage {
        id: "m1".into(),
        recipients: vec![Recipient {
            idx: 0,
            to: "+15551230001".into(),
        }],
        text: "hi".into(),
        priority: 0,
        valid_until: None,
        schedule_at: Some(1_700_000_000_000),
        sim: Some(3),
        delivery_report: true,
        resend_unknown: false,
        encrypted: false,
        data_port: None,
    }
}

#[test]
fn frames_round_trip() {
    let frames = vec![
        RelayFrame::Welcome {
            version: PROTOCOL_VERSION,
            phone_id: "p1".into(),
            acked: 7,
            heartbeat_ms: 15_000,
            nodes: Vec::new(),
        },
        RelayFrame::Welcome {
            version: PROTOCOL_VERSION,
            phone_id: "p1".into(),
            acked: 7,
            heartbeat_ms: 15_000,
            nodes: vec!["wss://a.example:8443".into(), "wss://b.example:8443".into()],
        },
        RelayFrame::Send {
            seq: 1,
            message: message(),
        },
        RelayFrame::Cancel {
            seq: 2,
            message_id: "m1".into(),
            recipients: None,
        },
        RelayFrame::Cancel {
            seq: 3,
            message_id: "m1".into(),
            recipients: Some(vec![0, 2]),
        },
        RelayFrame::Ack { seq: 9 },
    ];
    for f in frames {
        assert_eq!(decode_relay_frame(&encode(&f)).expect("decodes"), f);
    }
    let event = PhoneFrame::Event {
        seq: 4,
        event: Event::Recipient(RecipientUpdate {
            message_id: "m1".into(),
            idx: 0,
            state: RecipientState::Delivered,
            at: 5,
            reason: None,
            code: None,
            sim: Some(1),
            parts: 2,
            parts_sent: 2,
            parts_delivered: 2,
            unsent: false,
        }),
    };
    assert_eq!(decode_phone_frame(&encode(&event)).expect("decodes"), event);
}

#[test]
fn wire_shape_is_tagged_by_type() {
    let json = encode(&PhoneFrame::Ack { seq: 3 });
    assert_eq!(json, r#"{"type":"ack","seq":3}"#);
    let hello = r#"{"type":"hello","version":1,"token":"t","acked":0,
        "status":{"sims":[],"queue_depth":0,"app_version":"1"}}"#;
    assert!(matches!(
        decode_phone_frame(hello),
        Ok(PhoneFrame::Hello { acked: 0, .. })
    ));
}

#[test]
fn defaults_apply_to_optional_message_fields() {
    let json = r#"{"type":"send","seq":1,"message":{"id":"a","recipients":[{"idx":0,"to":"+1555"}],"text":"x"}}"#;
    let Ok(RelayFrame::Send { message, .. }) = decode_relay_frame(json) else {
        panic!("send frame expected")
    };
    assert!(message.delivery_report);
    assert!(!message.resend_unknown);
    assert_eq!(message.priority, 0);
    assert_eq!(message.sim, None);
}

#[test]
fn unknown_fields_and_types_are_refused() {
    for bad in [
        r#"{"type":"ack","seq":1,"extra":true}"#,
        r#"{"type":"nope","seq":1}"#,
        r#"{"seq":1}"#,
        r#"{"type":"ack","seq":-1}"#,
        r#"{"type":"ack","seq":"1"}"#,
        r#"{"type":"event","seq":1,"event":{"kind":"incoming","id":"i","from":"x","text":"t","received_at":1,"bogus":1}}"#,
        r#"{"type":"ack""#,
        "",
    ] {
        assert!(decode_phone_frame(bad).is_err(), "accepted: {bad}");
    }
    assert!(
        decode_relay_frame(
            r#"{"type":"send","seq":1,"message":{"id":"a","recipients":[],"text":"x","color":"red"}}"#
        )
        .is_err()
    );
}

#[test]
fn oversized_frames_are_refused_before_parsing() {
    let big = format!(
        r#"{{"type":"heartbeat","at":1,"pad":"{}"}}"#,
        "x".repeat(MAX_FRAME_BYTES)
    );
    assert!(matches!(
        decode_phone_frame(&big),
        Err(DecodeError::TooLarge(_))
    ));
}

#[test]
fn final_states() {
    use RecipientState::*;
    for s in [Delivered, Failed, Expired, Cancelled] {
        assert!(s.is_final());
    }
    for s in [Queued, Sending, Sent, Unknown] {
        assert!(!s.is_final());
    }
    for s in [
        Queued, Sending, Sent, Delivered, Failed, Expired, Cancelled, Unknown,
    ] {
        assert_eq!(RecipientState::parse(s.as_str()), Some(s));
    }
}

#[test]
fn decode_errors_never_quote_values() {
    for bad in [
        r#"{"type":"ack","seq":"+15551230001"}"#,
        r#"{"type":"event","seq":1,"event":{"kind":"incoming","id":"i","from":15551230001,"text":"t","received_at":1}}"#,
        r#"{"type":"event","seq":1,"event":{"kind":"incoming","id":"i","from":"x","text":["secret body"],"received_at":1}}"#,
        r#"{"type":"hello","version":1,"token":"secret-token","acked":"x"}"#,
    ] {
        let text = decode_phone_frame(bad).expect_err("refused").to_string();
        for leak in ["5551230001", "secret"] {
            assert!(!text.contains(leak), "{text}");
        }
        assert!(text.contains("wrong type or an invalid value"), "{text}");
    }
    let unknown = decode_phone_frame(r#"{"type":"ack","seq":1,"colour":1}"#)
        .expect_err("refused")
        .to_string();
    assert!(unknown.contains("unknown field `colour`"), "{unknown}");
}

#[test]
fn unknown_field_names_are_quoted_only_when_short_identifiers() {
    let long = "a".repeat(1024);
    let digits = "x".to_string() + "9".repeat(10).as_str();
    for (field, quoted) in [
        ("colour", true),
        ("sub_id2", true),
        ("_x", true),
        ("+15551234567", false),
        ("15551234567", false),
        (digits.as_str(), false),
        ("hello there", false),
        ("a`b", false),
        ("x, expected", false),
        ("", false),
        (long.as_str(), false),
        (&"b".repeat(33), false),
    ] {
        let frame = format!(r#"{{"type":"ack","seq":1,{}:1}}"#, serde_json::json!(field));
        let text = decode_phone_frame(&frame).expect_err("refused").to_string();
        assert!(text.contains("unknown field"), "{text}");
        if quoted {
            assert!(text.contains(&format!("unknown field `{field}`")), "{text}");
        } else {
            assert!(!text.contains('`'), "{field}: {text}");
            if field.len() > 1 {
                assert!(!text.contains(field), "{field}: {text}");
            }
        }
        assert!(text.len() < 120, "{text}");
    }
    // Missing fields are ours and keep their name.
    let missing = decode_phone_frame(r#"{"type":"ack"}"#)
        .expect_err("refused")
        .to_string();
    assert!(missing.contains("missing field `seq`"), "{missing}");
}

#[test]
fn a_cancel_without_recipients_means_the_whole_message() {
    let f =
        decode_relay_frame(r#"{"type":"cancel","seq":8,"message_id":"order-1"}"#).expect("decodes");
    assert_eq!(
        f,
        RelayFrame::Cancel {
            seq: 8,
            message_id: "order-1".into(),
            recipients: None,
        }
    );
    assert!(
        !encode(&f).contains("recipients"),
        "absent, not null, when it is the whole message"
    );
}

#[test]
fn e164_rule() {
    for ok in ["+15551230001", "+49", "+123456789012345"] {
        assert!(is_e164(ok), "{ok}");
    }
    for bad in [
        "15551230001",
        "+0555",
        "+1",
        "+1234567890123456",
        "+1555-123",
        "+",
    ] {
        assert!(!is_e164(bad), "{bad}");
    }
}
