//! The simulators, behind the `sims` cargo feature (on by default): phones made of the real
//! core engine with a simulated radio, and the rack simulator. None of it is part of the
//! relay: they drive a relay the way real phones would, from the outside (`demo`,
//! `sim_phones`) or on virtual time around the relay's own store and router (`rack_sim`).
//! `cargo check -p simrelay-server --no-default-features --lib` builds the relay alone.
//!
//! - [`demo`]: `simrelay demo`, a relay plus N simulated phones in one process, and
//!   [`demo_api`], its switches (an incoming SMS now, a failing radio);
//! - [`sim_phones`]: `simrelay sim-phones`, N durable simulated phones against any relay (the
//!   fault tests and the load benchmarks use it);
//! - [`rack_sim`]: many phones with several SIMs each on virtual time, for `tests/rack.rs`
//!   and `benches/rack.rs`.

pub mod demo;
pub mod demo_api;
pub mod rack_sim;
pub mod sim_phones;
