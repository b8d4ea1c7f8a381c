//! Integration tests: the real `wkctl` binary against the real `wksim` simulator.

// One test binary: `pub` only shares helpers between its modules.
#![allow(unreachable_pub)]

mod architecture;
mod attack;
mod attack_529;
mod attack_holes;
mod attack_lock;
mod attack_lock2;
mod attack_recover;
mod attack_refactor;
mod attack_resume;
mod attack_resume_back;
mod attack_service;
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
mod lifecycle;
mod live;
mod matrix;
mod notify;
mod operator;
mod operator2;
mod planfile;
mod playbooks;
mod recover;
mod recovery;
mod restart;
mod review;
mod scale;
mod service;
mod sim;
mod ssh;
mod support;
mod upgrade;
