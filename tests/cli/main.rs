//! Integration tests: the real `wkctl` binary against the real `wksim` simulator.

mod harness;
mod sim;
mod ssh;
