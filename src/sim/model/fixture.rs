//! The model's test cluster, shared by its unit tests (`tests`, `clients/tests`,
//! `split/tests`): `n` nodes 1001… on fixed ports, `joined` of them members, a fake clock
//! that starts at 0 and moves only when a test runs it.

use super::builds::Build;
use super::{Cluster, ModelOpts, NodeSpec};

/// A build the tests name by its version text.
pub(crate) fn build(s: &str) -> Build {
    Build::parse(s).unwrap()
}

/// `n` nodes running `version`, the first `joined` of them members.
pub(crate) fn cluster(n: u16, joined: usize, version: &str) -> Cluster {
    let opts = ModelOpts {
        speed: 1.0,
        epoch_ms: 1_776_816_000_000,
        release_style: false,
        token: None,
        slot_count: 8,
        replicas: 3,
        host: "127.0.0.1".into(),
        external: false,
        addrs: std::collections::BTreeMap::new(),
    };
    let specs: Vec<NodeSpec> = (0..n)
        .map(|i| NodeSpec {
            id: 1001 + u64::from(i),
            api_port: 20000 + i,
            cluster_port: 21000 + i,
        })
        .collect();
    Cluster::new(opts, &specs, joined, &build(version), 0)
}

/// Runs the fake clock until `now`, one deadline at a time.
pub(crate) fn run_to(c: &mut Cluster, now: u64) {
    while let Some(at) = c.next_deadline().filter(|at| *at <= now) {
        c.advance(at);
    }
    c.advance(now);
}
