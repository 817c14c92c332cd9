//! The `simrelay` binary.

fn main() {}
