//! The rack simulator at reduced size (10 phones × 2 SIMs, 1,200 messages, phone deaths and
//! failing SIMs): nothing lost, nothing transmitted twice, throughput at least 0.9 of the
//! theoretical limit (the full-size bench reaches more; see docs/BENCHMARKS.md, "Rack").

use simrelay_server::rack_sim::{Scenario, run};

#[test]
fn a_reduced_rack_loses_nothing_sends_nothing_twice_and_keeps_pace() {
    let s = Scenario::reduced();
    let r = run(&s);
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
    assert!(r.ratio >= 0.9, "throughput ratio {:.3}: {r:?}", r.ratio);
}
