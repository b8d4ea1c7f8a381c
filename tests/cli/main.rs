//! Integration tests: the real `wkctl` binary against the real `wksim` simulator.

mod attack;
mod bench;
mod claims;
mod docs;
mod doctor;
mod ecosystem;
mod foundation;
mod harness;
mod history;
mod holes;
mod hooks;
mod hostnet;
mod live;
mod matrix;
mod notify;
mod operator;
mod planfile;
mod playbooks;
mod recovery;
mod review;
mod scale;
mod sim;
mod ssh;
mod support;
mod upgrade;
