//! Rack benchmark: 50 phones × 2 SIMs at 20 parts/min with the engine's default jitter (0.25),
//! 10,000 messages of mixed length, with
//! phone deaths and returns and SIMs that start failing with SIM-bound errors, on virtual time
//! (see `simrelay_server::sims::rack_sim`). Prints lost, duplicates and throughput against the
//! theoretical limit, once with the relay's real store and routing pass and once with the
//! in-memory model. `cargo bench -p simrelay-server --bench rack` (`-- --quick` for the
//! reduced size, `-- --model` for the model only, `-- --jitter 0` for another jitter).

use std::time::Instant;

use simrelay_server::sims::rack_sim::{Scenario, run};

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let model_only = std::env::args().any(|a| a == "--model");
    let mut base = if quick {
        Scenario::reduced()
    } else {
        Scenario::full()
    };
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--jitter") {
        base.jitter = args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .filter(|j| (0.0..=1.0).contains(j))
            .expect("--jitter takes a number within 0..=1");
    }
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    }
    .expect("a temporary directory");
    let relays = [
        (
            "real store and routing pass",
            Some(dir.path().to_path_buf()),
        ),
        ("in-memory relay model", None),
    ];
    for (what, store_dir) in relays {
        if model_only && store_dir.is_some() {
            continue;
        }
        let scenario = Scenario {
            store_dir,
            ..base.clone()
        };
        report(what, &scenario);
    }
}

fn report(what: &str, scenario: &Scenario) {
    let started = Instant::now();
    let r = run(scenario);
    let wall = started.elapsed();
    println!(
        "rack ({what}): {} phones x {} SIMs, {} parts/min, jitter {}, {} messages, seed {}",
        scenario.phones,
        scenario.sims_per_phone,
        scenario.parts_per_minute,
        scenario.jitter,
        scenario.messages,
        scenario.seed
    );
    println!(
        "faults: {} phone deaths, {} failing SIMs; {} quarantined, {} recovered; {} failovers, {} re-routes",
        r.phone_deaths, r.failing_sims, r.quarantined, r.recovered, r.failovers, r.reroutes
    );
    println!(
        "outcome: {} delivered, {} failed after 3 SIMs, {} lost, {} parts transmitted twice",
        r.delivered, r.failed, r.lost, r.duplicates
    );
    println!(
        "throughput while the relay had a backlog ({:.1} virtual min): ratio {:.3} of the limit ({:.0} parts)",
        r.backlog_ms as f64 / 60_000.0,
        r.ratio,
        r.capacity_parts
    );
    println!(
        "whole run incl. drain ({:.1} virtual min, {} parts): ratio {:.3}",
        r.virtual_ms as f64 / 60_000.0,
        r.parts_transmitted,
        r.ratio_to_end
    );
    println!("wall time: {:.1} s", wall.as_secs_f64());
}
