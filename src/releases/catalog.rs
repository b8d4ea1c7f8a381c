//! The catalog itself: every real WuKongIM tag (facts §7.1) with its notes (known
//! problems from facts §8.3, with the upstream issue and the fixing release).

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
        notes: &[info("image tag used by the official Helm chart")],
    },
    Release {
        tag: "v2.0.5-20240925",
        notes: &[],
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
        ],
    },
    Release {
        tag: "v2.1.2-20250120",
        notes: &[info(
            "fixes the v2.1.1 cluster errors (#310); restarting every node at once from v2.0.10 left 1 node of 3 visible: upgrade one at a time, 1001 first",
        )],
    },
    Release {
        tag: "v2.1.3-20250210",
        notes: &[],
    },
    Release {
        tag: "v2.1.4-20250319",
        notes: &[],
    },
    Release {
        tag: "v2.1.5-20250424",
        notes: &[],
    },
    Release {
        tag: "v2.2.0-20250426",
        notes: &[],
    },
    Release {
        tag: "v2.2.1-20250624",
        notes: &[],
    },
    Release {
        tag: "v2.2.2-20251229",
        notes: &[
            known(
                "restart panic loop `applied index > last log index`",
                509,
                Some("v2.2.4-20260313"),
            ),
            known(
                "single node → 3-node scale-out showed duplicated node ids and lost conversations",
                497,
                None,
            ),
        ],
    },
    Release {
        tag: "v2.2.3-20260128",
        notes: &[
            known(
                "restart panic loop `applied index > last log index`",
                509,
                Some("v2.2.4-20260313"),
            ),
            info(
                "adds slot-log command CMDUpdateConversationIfSeqGreater: older replicas skip it, keep the mixed window short",
            ),
        ],
    },
    Release {
        tag: "v2.2.4-20260313",
        notes: &[
            known(
                "panic `apply log err` while upgrading a 3-node docker cluster to this version",
                522,
                Some("v2.2.5-20260422"),
            ),
            known(
                "crash loop on restart catch-up (`context deadline exceeded`)",
                545,
                None,
            ),
        ],
    },
    Release {
        tag: "v2.2.5-20260422",
        notes: &[known(
            "crash loop on restart catch-up (`apply slot logs failed … context deadline exceeded`), open upstream",
            546,
            None,
        )],
    },
];
