//! HTTPS and wss with a self-signed certificate: the fingerprint printed at start is the one
//! a phone pins, it survives a restart, and a pinned phone pairs and sends over wss.

mod common;

use std::time::Duration;

use common::{Http, KEY_A, server};
use serde_json::json;
use sha2::{Digest, Sha256};
use simrelay_core::SimConfig;
use simrelay_core::link::pair;
use simrelay_core::phone::{LinkConfig, Phone, PhoneConfig};
use simrelay_core::sim_modem::{SimModem, SimModemConfig};
use simrelay_server::config::TlsMode;

fn self_signed(c: &mut simrelay_server::config::Config) {
    c.tls = TlsMode::SelfSigned {
        names: vec!["localhost".into(), "127.0.0.1".into()],
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_signed_tls_is_pinned_and_stable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), self_signed).await;
    assert!(srv.url.starts_with("https://127.0.0.1:"));
    let fp = srv.state.tls_fingerprint.clone().expect("a fingerprint");
    let pem = std::fs::read(dir.path().join("tls-cert.pem")).expect("cert kept in the data dir");
    let der = rustls_pki_types::pem::PemObject::from_pem_slice(&pem)
        .map(|c: rustls_pki_types::CertificateDer<'_>| c.to_vec())
        .expect("pem");
    assert_eq!(fp, hex::encode(Sha256::digest(&der)));
    assert_eq!(fp.len(), 64);
    assert_eq!(fp, fp.to_lowercase());

    let http = Http::new(&srv.url);
    let (s, code) = http.req("POST", "/v1/pairing-codes", KEY_A, None).await;
    assert_eq!(s, 201);
    assert_eq!(code["tls_fingerprint"], fp.as_str());
    assert!(code["ws_url"].as_str().expect("url").starts_with("wss://"));

    // A wrong pin is refused, the right one pairs.
    let code = code["code"].as_str().expect("code");
    assert!(
        pair(&srv.ws_base(), code, None, Some(&"0".repeat(64)))
            .await
            .is_err()
    );
    let paired = pair(&srv.ws_base(), code, None, Some(&fp))
        .await
        .expect("pinned pairing");
    let modem = SimModem::new(SimModemConfig::default());
    let phone = Phone::start(
        PhoneConfig {
            link: Some(LinkConfig {
                url: srv.ws_base(),
                token: paired.token,
                pin_sha256: Some(fp.clone()),
                ..LinkConfig::default()
            }),
            ..PhoneConfig::new(dir.path().join("phone.sqlite"))
        },
        Box::new(modem.clone()),
    )
    .expect("phone starts");
    phone
        .handle()
        .set_sims(vec![SimConfig {
            sub_id: 1,
            slot: 0,
            carrier: None,
            parts_per_minute: None,
            daily_cap: None,
        }])
        .expect("sims");
    let (s, _) = http
        .req(
            "POST",
            "/v1/messages",
            KEY_A,
            Some(json!({"to": ["+15551230001"], "text": "over wss", "id": "t1"})),
        )
        .await;
    assert_eq!(s, 202);
    let mut updates = srv.state.updates.subscribe();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        updates.borrow_and_update();
        let (_, m) = http.req("GET", "/v1/messages/t1", KEY_A, None).await;
        if m["state"] == "delivered" {
            break;
        }
        tokio::time::timeout_at(deadline, updates.changed())
            .await
            .expect("delivered in time")
            .expect("open");
    }
    phone.shutdown().await;
    srv.stop().await.expect("stops");

    let again = server(dir.path(), self_signed).await;
    assert_eq!(
        again.state.tls_fingerprint.as_deref(),
        Some(fp.as_str()),
        "same certificate after restart"
    );
    again.stop().await.expect("stops");
}

#[tokio::test]
async fn a_given_certificate_is_served_and_fingerprinted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let made = rcgen::generate_simple_self_signed(vec!["relay.test".to_string()]).expect("cert");
    let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    std::fs::write(&cert, made.cert.pem()).expect("write");
    std::fs::write(&key, made.signing_key.serialize_pem()).expect("write");
    let want = hex::encode(Sha256::digest(made.cert.der()));
    let srv = server(dir.path(), |c| c.tls = TlsMode::Files { cert, key }).await;
    assert_eq!(srv.state.tls_fingerprint.as_deref(), Some(want.as_str()));
    let (s, _) = Http::new(&srv.url)
        .req("GET", "/v1/phones", KEY_A, None)
        .await;
    assert_eq!(s, 200);
    srv.stop().await.expect("stops");

    let missing = TlsMode::Files {
        cert: dir.path().join("none.pem"),
        key: dir.path().join("none.key"),
    };
    let mut c = simrelay_server::config::Config::for_data_dir(dir.path());
    c.tls = missing;
    assert!(
        simrelay_server::Server::start(c).await.is_err(),
        "a missing certificate fails the start"
    );
}
