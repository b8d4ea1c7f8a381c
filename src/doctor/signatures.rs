//! Known failure signatures in WuKongIM logs (facts §4.5, §8.3), each with an
//! explanation and what to do. Pure: lines in, matches out.

use serde::Serialize;

/// One known signature.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Signature {
    pub id: &'static str,
    /// Any of these substrings (case-insensitive) identifies it.
    #[serde(skip)]
    pub needles: &'static [&'static str],
    pub explanation: &'static str,
    pub hint: &'static str,
    pub issue: Option<u32>,
}

/// Most specific first: a line is attributed to the first signature that matches.
pub const SIGNATURES: &[Signature] = &[
    Signature {
        id: "logs.slots_ready_timeout",
        needles: &["wait all slots ready timeout"],
        explanation: "the node gave up waiting for a leader of every slot at start (no quorum: peers down or unreachable)",
        hint: "start the nodes in id order, 1001 first, and check that every node reaches the others on the cluster port (11110)",
        issue: Some(197),
    },
    Signature {
        id: "logs.applied_index_panic",
        needles: &["applied index > last log index"],
        explanation: "restart panic loop in raft node init",
        hint: "fixed in v2.2.4-20260313: upgrade this node to v2.2.4 or later",
        issue: Some(509),
    },
    Signature {
        id: "logs.catch_up_crash_loop",
        needles: &["apply slot logs failed", "context deadline exceeded"],
        explanation: "the node crashes while catching up a large raft backlog and restarts (crash loop)",
        hint: "known in v2.2.4/v2.2.5 (open upstream): reduce write load so it can catch up, and report the log in #545",
        issue: Some(545),
    },
    Signature {
        id: "logs.apply_log_err",
        needles: &["apply log err"],
        explanation: "the store failed to apply a log entry (seen when upgrading to v2.2.4-20260313)",
        hint: "upgrade to v2.2.5-20260422 instead of v2.2.4; keep the backup of this node's data",
        issue: Some(522),
    },
    Signature {
        id: "logs.peer_unreachable",
        needles: &["connect not authed"],
        explanation: "this node cannot reach a peer's cluster port",
        hint: "check firewalls and routes between the nodes on port 11110 (see the network matrix)",
        issue: Some(388),
    },
    Signature {
        id: "logs.address_changed",
        needles: &["send event to node is nil"],
        explanation: "a node's cluster address changed; v2 pins addresses in the persisted cluster config",
        hint: "edit the node's address in `data/cluster/config/remote.json` on every node, then restart (#364); keep `cluster.serverAddr` stable",
        issue: Some(364),
    },
    Signature {
        id: "logs.leader_not_found",
        needles: &["leader not found"],
        explanation: "the node does not know the controller: it has not rejoined the cluster",
        hint: "check that a quorum of nodes runs and that this node reaches them on 11110; start 1001 first after a full stop (#310)",
        issue: Some(310),
    },
    Signature {
        id: "logs.slot_count_mismatch",
        needles: &["slot count not match"],
        explanation: "this node's `cluster.slotCount` differs from the cluster's real slot count",
        hint: "set the same `cluster.slotCount` on every node (see the settings table)",
        issue: None,
    },
    Signature {
        id: "logs.panic",
        needles: &["panic:"],
        explanation: "the process panicked",
        hint: "read the lines around the panic; search the message in the WuKongIM issues",
        issue: None,
    },
];

/// One matching line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogMatch {
    pub node: u64,
    pub signature: &'static str,
    /// The line's timestamp, when it starts with one.
    pub time: Option<String>,
    pub line: String,
}

/// The signature a line belongs to, if any.
pub fn classify(line: &str) -> Option<&'static Signature> {
    let lower = line.to_ascii_lowercase();
    SIGNATURES
        .iter()
        .find(|s| s.needles.iter().any(|n| lower.contains(n)))
}

/// Scans a node's log text.
pub fn scan(node: u64, text: &str) -> Vec<LogMatch> {
    text.lines()
        .filter_map(|line| {
            let sig = classify(line)?;
            let line = line.trim();
            let line = if line.len() > 400 {
                format!("{}…", &line[..line.floor_char_boundary(400)])
            } else {
                line.to_string()
            };
            Some(LogMatch {
                node,
                signature: sig.id,
                time: timestamp(&line),
                line,
            })
        })
        .collect()
}

/// A leading timestamp (`2026-11-26T08:41:47.977Z`, `2026/11/26 08:41:47`, or after a
/// compose prefix `wukongim1  | 2026-…`).
fn timestamp(line: &str) -> Option<String> {
    let rest = line.split_once(" | ").map_or(line, |(_, r)| r).trim_start();
    let token: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
    let looks = token.len() >= 10
        && token.as_bytes()[..4].iter().all(u8::is_ascii_digit)
        && matches!(token.as_bytes()[4], b'-' | b'/');
    if !looks {
        return None;
    }
    // `2026/11/26 08:41:47`: take the time too.
    if token.len() == 10 {
        let after = rest[token.len()..].trim_start();
        let time: String = after.chars().take_while(|c| !c.is_whitespace()).collect();
        if time.contains(':') {
            return Some(format!("{token} {time}"));
        }
    }
    Some(token)
}

pub fn signature(id: &str) -> Option<&'static Signature> {
    SIGNATURES.iter().find(|s| s.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_signature_is_recognised_from_a_realistic_line() {
        let lines = [
            (
                "2026-11-26T08:00:00.000Z ERROR panic: wait all slots ready timeout",
                "logs.slots_ready_timeout",
            ),
            (
                "panic: applied index > last log index",
                "logs.applied_index_panic",
            ),
            (
                "2026-11-26T08:00:00Z ERROR panic: apply slot logs failed: context deadline exceeded",
                "logs.catch_up_crash_loop",
            ),
            (
                "ERROR 【store】apply log err: invalid",
                "logs.apply_log_err",
            ),
            (
                "WARN connect not authed 10.0.0.12:11110",
                "logs.peer_unreachable",
            ),
            (
                "ERROR Send event to node is nil nodeId=1003",
                "logs.address_changed",
            ),
            ("ERROR leader not found", "logs.leader_not_found"),
            ("ERROR slot count not match", "logs.slot_count_mismatch"),
            ("panic: runtime error: invalid memory address", "logs.panic"),
        ];
        for (line, id) in lines {
            assert_eq!(classify(line).map(|s| s.id), Some(id), "{line}");
        }
        assert!(classify("INFO Server is ready").is_none());
        assert_eq!(lines.len(), SIGNATURES.len());
    }

    #[test]
    fn timestamps_are_kept() {
        let m = scan(
            1002,
            "wukongim2  | 2026-11-26T08:41:47.977Z ERROR panic: apply log err\nok line\n",
        );
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].time.as_deref(), Some("2026-11-26T08:41:47.977Z"));
        assert_eq!(m[0].node, 1002);
        let m = scan(1, "2026/11/26 08:41:47 leader not found");
        assert_eq!(m[0].time.as_deref(), Some("2026/11/26 08:41:47"));
    }
}
