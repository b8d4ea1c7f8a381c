//! The HTTP side of `wksim serve`: the node API rendered from the model (`views`, facts §3),
//! the listeners of each simulated node (`server`) and the control server used by
//! `wksim ctl`, the tests and the benchmarks (`control`).

pub mod control;
pub mod server;
pub mod views;
