//! The catalog itself: every real WuKongIM tag (facts §7.1) with its notes (known
//! problems from facts §8.3 and §12, with the upstream issue and the fixing release).
//!
//! A known problem is attached to every tag that carries the code behind it, as read in
//! upstream's tags (issue 14 §2), and `fixed_in` is set only when a tag really fixes it.

use serde::Serialize;

/// A note attached to a release.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Note {
    pub kind: NoteKind,
    pub text: &'static str,
    /// The upstream issue the note comes from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issue: Option<u32>,
    /// The release that fixes a known problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixed_in: Option<&'static str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoteKind {
    /// A problem known to hit this version as an upgrade target.
    KnownIssue,
    /// Something that changes how readiness can be observed.
    Readiness,
    /// Anything else worth knowing.
    Info,
}

/// One real tag of the upstream repository.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Release {
    pub tag: &'static str,
    pub notes: &'static [Note],
}

const fn known(text: &'static str, issue: u32, fixed_in: Option<&'static str>) -> Note {
    Note {
        kind: NoteKind::KnownIssue,
        text,
        issue: Some(issue),
        fixed_in,
    }
}
const fn info(text: &'static str) -> Note {
    Note {
        kind: NoteKind::Info,
        text,
        issue: None,
        fixed_in: None,
    }
}

// ---- notes shared by several tags (each cites where upstream shows it) ---------------

/// #509: `n.Panic("applied index > last log index")` (pkg/raft/raft/node.go:62) exists in
/// every tag from v2.1.1; v2.2.4 repairs the state for slots before that check
/// (pkg/cluster/slot/storage_pebble.go `GetState`, commit 9fc693d5 "fix: #509").
const N509: Note = known(
    "restart panic loop `applied index > last log index` after an unclean stop",
    509,
    Some("v2.2.4-20260313"),
);

/// v2.2.4+: the #509 repair and the line it logs.
const N509_REPAIRED: Note = info(
    "repairs the #509 state at start and logs `detected inconsistent state: appliedIndex > lastLogIndex, auto-fixing`",
);

/// #545/#546: `s.Panic("apply slot logs failed")` in pkg/cluster/cluster/server.go, in every
/// tag from v2.1.1 (the rewritten cluster layer). #545 closed as a duplicate; #546 open.
const N546: Note = known(
    "crash loop on restart catch-up: `apply slot logs failed` on `context deadline exceeded` panics the node (#545), open upstream",
    546,
    None,
);

/// #529: `ProposeJoined` only when `migrateSlots` is non-empty
/// (pkg/cluster/node/event/handle_node_joining.go, the same blob from v2.1.1 to branch `v2`);
/// the fix (PR #531) was never merged.
const N529: Note = known(
    "a node that joins through a seed can stay `Joining` (status 2) for good when the slots are already balanced; wkctl reports it as `cluster.stuck_joining_529` and accepts it only with evidence (online, config caught up, holding slot replicas, nothing to migrate); `policy.accept_stuck_joining: false` refuses it",
    529,
    None,
);

/// #397 (open) and #683: a maintainer's canary reproduced it on v2.2.0-20250426 "every time".
const N397: Note = known(
    "after a serial (rolling) restart, clients on an untouched node can be treated as offline and miss online pushes (#683 reproduced it on v2.2.0); check online delivery after the run",
    397,
    None,
);

/// #522 (open): `s.Panic("apply log err")` (pkg/cluster/store/store_apply.go:40) under
/// `raftgroup:go pool panic`; nothing changed in pkg/cluster/store or
/// pkg/cluster/cluster/server.go between v2.2.4 and v2.2.5.
const N522: Note = known(
    "panic `apply log err` (store) while upgrading a 3-node docker cluster to v2.2.4-20260313; v2.2.5 changed nothing in that code",
    522,
    None,
);

/// Every real tag, oldest first (facts §7.1). Readiness quirks are derived from
/// `Capabilities` and added by `notes_for`, so they cannot drift from the gate.
pub const CATALOG: &[Release] = &[
    Release {
        tag: "v1.2.6",
        notes: &[info(
            "last v1 release; v1 → v2 needs a data migration, not an in-place upgrade (#447)",
        )],
    },
    Release {
        tag: "v2.0.0-beta",
        notes: &[],
    },
    Release {
        tag: "v2.0.1-beta-20240715",
        notes: &[],
    },
    Release {
        tag: "v2.0.2-beta-20240805",
        notes: &[],
    },
    Release {
        tag: "v2.0.3-beta-20240828",
        notes: &[],
    },
    Release {
        tag: "v2.0.4-beta-20240904",
        // WuKongIM/helm branch `main`, values.yaml; gh-pages chart 2.0.4 moved on (index.yaml).
        notes: &[info(
            "image tag of the old Helm chart 1.0.0 (WuKongIM/helm `main`: StatefulSet `helm-wukongim`, container `wukoingim`); the published chart 2.0.4 ships v2.0.5-20240925",
        )],
    },
    Release {
        tag: "v2.0.5-20240925",
        notes: &[info(
            "appVersion of the published Helm chart 2.0.4 (StatefulSet `wukongim`, service `wkim-headless`, liveness probe on `/health`)",
        )],
    },
    Release {
        tag: "v2.0.6-20241008",
        notes: &[],
    },
    Release {
        tag: "v2.0.7-20241104",
        notes: &[],
    },
    Release {
        tag: "v2.0.8-20241129",
        notes: &[],
    },
    Release {
        tag: "v2.0.9-20241220",
        notes: &[],
    },
    Release {
        tag: "v2.0.10-20241221",
        notes: &[known(
            "scale-out join via seed fails; maintainers suggest a newer build",
            291,
            Some("v2.1.2-20250120"),
        )],
    },
    Release {
        tag: "v2.1.0-20241224",
        notes: &[info(
            "last release on the old cluster layer (pkg/cluster/clusterserver)",
        )],
    },
    Release {
        tag: "v2.1.1-20241230",
        notes: &[
            info("first release on the rewritten cluster/raft layer (pkg/cluster/cluster)"),
            known(
                "cluster errors in the logs after upgrading from v2.0.10",
                310,
                Some("v2.1.2-20250120"),
            ),
            N509,
            N546,
            N529,
        ],
    },
    Release {
        tag: "v2.1.2-20250120",
        notes: &[
            info(
                "fixes the v2.1.1 cluster errors (#310); restarting every node at once from v2.0.10 left 1 node of 3 visible: upgrade one at a time, 1001 first",
            ),
            N509,
            N546,
            N529,
        ],
    },
    Release {
        tag: "v2.1.3-20250210",
        notes: &[N509, N546, N529],
    },
    Release {
        tag: "v2.1.4-20250319",
        notes: &[N509, N546, N529],
    },
    Release {
        tag: "v2.1.5-20250424",
        notes: &[
            info(
                "image of the release-pipeline Helm chart (StatefulSet `helm-wukongim`, container `wukongim`, PVC, no probes)",
            ),
            N509,
            N546,
            N529,
        ],
    },
    Release {
        tag: "v2.2.0-20250426",
        notes: &[N509, N546, N529, N397],
    },
    Release {
        tag: "v2.2.1-20250624",
        notes: &[N509, N546, N529, N397],
    },
    Release {
        tag: "v2.2.2-20251229",
        notes: &[
            N509,
            known(
                "single node → 3-node scale-out showed duplicated node ids and lost conversations",
                497,
                None,
            ),
            N546,
            N529,
            N397,
        ],
    },
    Release {
        tag: "v2.2.3-20260128",
        notes: &[
            N509,
            info(
                "adds slot-log command CMDUpdateConversationIfSeqGreater: older replicas skip it, keep the mixed window short",
            ),
            N546,
            N529,
            N397,
        ],
    },
    Release {
        tag: "v2.2.4-20260313",
        notes: &[N522, N546, N529, N397, N509_REPAIRED],
    },
    Release {
        tag: "v2.2.5-20260422",
        notes: &[N522, N546, N529, N397, N509_REPAIRED],
    },
];
