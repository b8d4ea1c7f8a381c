//! wkctl: safe rolling upgrades of WuKongIM v2 clusters.
//!
//! One node at a time, 1001 first, each gated on real readiness (see `DESIGN.md`).
//! The crate is a library with two binaries: `wkctl` (the tool) and `wksim` (a
//! simulator of a WuKongIM v2 cluster, used by `wkctl demo` and the tests).

pub mod finding;
pub mod releases;
pub mod sim;
pub mod version;
pub mod error;
pub mod manifest;
pub mod playbook;
pub mod probe; pub mod gate; pub mod checks;
