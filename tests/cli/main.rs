//! Integration tests: the real `wkctl` binary against the real `wksim` simulator.

mod bench;
mod doctor;
mod ecosystem;
mod foundation;
mod harness;
mod holes;
mod live;
mod matrix;
mod recovery;
mod review;
mod sim;
mod ssh;
mod support;
mod upgrade;
