//! The rack simulator at reduced size (10 phones × 2 SIMs, 1,200 messages, phone deaths and
//! failing SIMs), with the relay's real store and routing pass and with the in-memory model:
//! nothing lost, nothing transmitted twice, throughput at least 0.97 of the theoretical limit
//! while the relay has a backlog, with the engine's default jitter (docs/BENCHMARKS.md, "Rack").

use simrelay_server::sims::rack_sim::{Report, Scenario, run};

fn check(s: &Scenario, r: &Report) {
    assert_eq!(r.recipients, s.messages);
    assert_eq!(r.lost, 0, "{r:?}");
    assert_eq!(r.duplicates, 0, "{r:?}");
    assert!(
        r.failing_sims > 0 && r.phone_deaths > 0,
        "faults happened: {r:?}"
    );
    assert!(
        r.failovers > 0,
        "SIM-bound failures moved to other SIMs: {r:?}"
    );
    assert!(r.quarantined > 0, "{r:?}");
    assert_eq!(r.delivered + r.failed, s.messages);
    // The jitter is pace-neutral, so the router's plan at the nominal pace holds.
    assert!(r.ratio >= 0.97, "throughput ratio {:.3}: {r:?}", r.ratio);
}

#[test]
fn a_reduced_rack_on_the_real_store_loses_nothing_sends_nothing_twice_and_keeps_pace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Scenario {
        store_dir: Some(dir.path().to_path_buf()),
        ..Scenario::reduced()
    };
    check(&s, &run(&s));
}

#[test]
fn a_reduced_rack_on_the_relay_model_loses_nothing_sends_nothing_twice_and_keeps_pace() {
    let s = Scenario::reduced();
    check(&s, &run(&s));
}
