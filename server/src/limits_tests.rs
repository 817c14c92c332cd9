use super::*;

const NOW_MS: Millis = 1_790_000_000_000; // 2026

fn sms() -> IncomingSms {
    IncomingSms {
        id: "in_0123456789abcdef01234567".into(),
        sim: Some(1),
        from: "+15557654321".into(),
        text: "your code is 1234".into(),
        sent_at: Some(NOW_MS - 5_000),
        received_at: NOW_MS,
        encrypted: false,
        data_port: None,
    }
}

#[test]
fn incoming_sms_within_the_bounds_passes_and_each_bound_refuses() {
    assert_eq!(check_incoming(&sms()), Ok(()));
    let longest = IncomingSms {
        text: "€".repeat(MAX_INCOMING_TEXT_BYTES / 3),
        ..sms()
    };
    assert_eq!(check_incoming(&longest), Ok(()), "255 parts fit");
    let cases = [
        (
            IncomingSms {
                text: "x".repeat(MAX_INCOMING_TEXT_BYTES + 1),
                ..sms()
            },
            IncomingFault::TextTooLong,
        ),
        (
            IncomingSms {
                from: "1".repeat(MAX_SENDER_CHARS + 1),
                ..sms()
            },
            IncomingFault::BadSender,
        ),
        (
            IncomingSms {
                id: "i".repeat(MAX_INCOMING_ID_BYTES + 1),
                ..sms()
            },
            IncomingFault::BadId,
        ),
    ];
    for (bad, fault) in cases {
        assert_eq!(check_incoming(&bad), Err(fault));
    }
    // A phone with a passphrase sends ciphertexts: an ASCII sender of 64 characters
    // becomes 166.
    let encrypted = IncomingSms {
        from: format!(
            "$aes-256-cbc/pbkdf2-sha1$i=75000${}==${}",
            "s".repeat(22),
            "c".repeat(108)
        ),
        text: "t".repeat(MAX_INCOMING_TEXT_BYTES * 4 / 3),
        encrypted: true,
        ..sms()
    };
    assert_eq!(check_incoming(&encrypted), Ok(()));
    for (bad, fault) in [
        (
            IncomingSms {
                from: "1".repeat(MAX_ENCRYPTED_SENDER_CHARS + 1),
                ..encrypted.clone()
            },
            IncomingFault::BadSender,
        ),
        (
            IncomingSms {
                text: "t".repeat(MAX_ENCRYPTED_TEXT_BYTES + 1),
                ..encrypted.clone()
            },
            IncomingFault::TextTooLong,
        ),
    ] {
        assert_eq!(check_incoming(&bad), Err(fault));
    }
    let anonymous = IncomingSms {
        from: String::new(),
        ..sms()
    };
    assert_eq!(
        check_incoming(&anonymous),
        Ok(()),
        "an empty sender is kept"
    );
}

#[test]
fn impossible_time_stamps_are_replaced_never_refused() {
    assert_eq!(retimed(&sms(), NOW_MS), None);
    // A day ahead of the relay's clock is still a phone clock being a little off.
    let ahead = IncomingSms {
        received_at: NOW_MS + FUTURE_SLACK_MS,
        sent_at: Some(EARLIEST_MS),
        ..sms()
    };
    assert_eq!(retimed(&ahead, NOW_MS), None);
    for received_at in [EARLIEST_MS - 1, NOW_MS + FUTURE_SLACK_MS + 1, i64::MIN, 5] {
        let bad = IncomingSms {
            received_at,
            ..sms()
        };
        let fixed = retimed(&bad, NOW_MS).expect("retimed");
        assert_eq!(fixed.received_at, NOW_MS);
        assert_eq!(fixed.sent_at, sms().sent_at, "a plausible sent_at stays");
        assert_eq!((fixed.text, fixed.from), (bad.text, bad.from));
    }
    for sent_at in [i64::MAX, i64::MIN, NOW_MS + FUTURE_SLACK_MS + 1] {
        let bad = IncomingSms {
            sent_at: Some(sent_at),
            ..sms()
        };
        let fixed = retimed(&bad, NOW_MS).expect("retimed");
        assert_eq!((fixed.received_at, fixed.sent_at), (NOW_MS, None));
    }
}

#[test]
fn incoming_rate_allows_a_burst_then_the_pace() {
    let t0 = Instant::now();
    let rate = IncomingRate::new(60);
    for _ in 0..60 {
        assert!(rate.take("a", t0));
    }
    assert!(!rate.take("a", t0), "the burst is one minute's worth");
    assert!(rate.take("b", t0), "another phone has its own allowance");
    assert!(!rate.take("a", t0 + Duration::from_millis(900)));
    assert!(
        rate.take("a", t0 + Duration::from_millis(1_000)),
        "one a second"
    );
    assert!(!rate.take("a", t0 + Duration::from_millis(1_500)));
    let later = t0 + Duration::from_secs(3600);
    for _ in 0..60 {
        assert!(rate.take("a", later));
    }
    assert!(!rate.take("a", later), "refills to the burst, not beyond");
}

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().expect("ip"))
}

#[test]
fn pairing_locks_a_source_out_after_ten_failures_and_the_lockout_grows() {
    let t0 = Instant::now();
    let th = PairingThrottle::new(PairingPolicy::default(), t0);
    for _ in 0..10 {
        assert_eq!(th.begin(ip("192.0.2.1"), t0), Ok(()));
    }
    let refused = th.begin(ip("192.0.2.1"), t0);
    assert_eq!(
        refused,
        Err(PairingRefusal::Source {
            retry_after: Duration::from_secs(60)
        })
    );
    assert_eq!(th.begin(ip("192.0.2.2"), t0), Ok(()), "another source");
    let t1 = t0 + Duration::from_secs(30);
    assert!(th.begin(ip("192.0.2.1"), t1).is_err(), "still locked");
    // After the lockout: ten more failures, then a lockout twice as long.
    let t2 = t0 + Duration::from_secs(61);
    for _ in 0..10 {
        assert_eq!(th.begin(ip("192.0.2.1"), t2), Ok(()));
    }
    assert_eq!(
        th.begin(ip("192.0.2.1"), t2),
        Err(PairingRefusal::Source {
            retry_after: Duration::from_secs(120)
        })
    );
    // A day of quiet forgets the lockouts.
    let t3 = t2 + Duration::from_secs(24 * 3600 + 1);
    assert_eq!(th.begin(ip("192.0.2.1"), t3), Ok(()));
}

#[test]
fn successful_pairings_do_not_count_and_ipv6_counts_per_64() {
    let t0 = Instant::now();
    let th = PairingThrottle::new(PairingPolicy::default(), t0);
    for _ in 0..50 {
        assert_eq!(th.begin(ip("192.0.2.1"), t0), Ok(()));
        th.succeeded(ip("192.0.2.1"));
    }
    for i in 0..10 {
        let a = format!("2001:db8:1:2::{i:x}");
        assert_eq!(th.begin(ip(&a), t0), Ok(()));
    }
    assert!(
        th.begin(ip("2001:db8:1:2:ffff::1"), t0).is_err(),
        "same /64"
    );
    assert_eq!(th.begin(ip("2001:db8:1:3::1"), t0), Ok(()), "another /64");
    assert!(
        th.begin(ip("::ffff:192.0.2.1"), t0).is_ok(),
        "a v4-mapped address is its v4 source"
    );
}

#[test]
fn pairing_is_throttled_globally_per_window() {
    let t0 = Instant::now();
    let policy = PairingPolicy {
        global: 100,
        ..PairingPolicy::default()
    };
    let th = PairingThrottle::new(policy, t0);
    for i in 0..100u32 {
        let a = format!("10.0.{}.{}", i / 200, i % 200);
        assert_eq!(th.begin(ip(&a), t0), Ok(()));
    }
    let refused = th.begin(ip("10.9.9.9"), t0 + Duration::from_secs(20));
    assert_eq!(
        refused,
        Err(PairingRefusal::Global {
            retry_after: Duration::from_secs(40)
        })
    );
    assert!(
        th.begin(None, t0).is_err(),
        "unknown sources share the count"
    );
    assert_eq!(
        th.begin(ip("10.9.9.9"), t0 + Duration::from_secs(60)),
        Ok(()),
        "a new window"
    );
}

#[test]
fn the_clock_moves_only_forward_by_what_tests_add() {
    let c = Clock::default();
    let a = c.now();
    c.clone().advance(Duration::from_secs(120));
    assert!(c.now() >= a + Duration::from_secs(120));
}
