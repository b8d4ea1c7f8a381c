//! Integration tests: the real `wkctl` binary against the real `wksim` simulator.

mod ecosystem;
mod foundation;
mod harness;
mod sim;
mod ssh;
