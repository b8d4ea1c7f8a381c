//! Known failure signatures in WuKongIM logs (facts §4.5, §8.3, §12), each with an
//! explanation and what to do. Pure: lines in, matches out.
//!
//! Every signature is anchored on text that only its failure prints (issue 14 §2). The
//! upstream source of each string is cited next to it (tag `v2.2.5-20260422` unless
//! said otherwise). Deliberately *not* signatures:
//! - a bare `context deadline exceeded`: routine error lines carry it as their `error`
//!   field (#284, #526: `【user】更新设备失败！ … "error":"context deadline exceeded"`);
//! - `leader not found`: upstream logs it from the channel API handlers
//!   (`pkg/cluster/cluster/api_cluster.go`, about a *channel's* leader), and
//!   `slot[%d] leader not found` / `slot leader not found` are routine during every slot
//!   re-election (`pkg/cluster/cluster/iserver.go`, `model.go`). A node that does not know
//!   the controller is found live instead (`cluster.node_rejoining`, `cluster.no_controller`);
//! - `slot count not match`: only the `/health` body carries it (`CheckClusterStatus`,
//!   `pkg/cluster/cluster/iserver.go`, v2.1.4+); the live check reports it
//!   (`cluster.slot_count_mismatch`).

use serde::Serialize;

use crate::finding::FindingId;

/// One known signature.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Signature {
    pub id: FindingId,
    /// Alternatives; a line matches when it contains (case-insensitively) every
    /// substring of one alternative.
    #[serde(skip)]
    pub patterns: &'static [&'static [&'static str]],
    pub explanation: &'static str,
    pub hint: &'static str,
    pub issue: Option<u32>,
}

/// Most specific first: a line is attributed to the first signature that matches.
pub const SIGNATURES: &[Signature] = &[
    Signature {
        id: FindingId::LogsSlotsReadyTimeout,
        // `s.Panic("wait all slots ready timeout")`, pkg/cluster/slot/iserver.go (and
        // pkg/cluster/clusterserver/server_wait.go before v2.1.1, #197).
        patterns: &[&["wait all slots ready timeout"]],
        explanation: "the node gave up waiting for a leader of every slot at start (no quorum: peers down or unreachable)",
        hint: "start the nodes in id order, 1001 first, and check that every node reaches the others on the cluster port (11110)",
        issue: Some(197),
    },
    Signature {
        id: FindingId::LogsAppliedIndexPanic,
        // `n.Panic("applied index > last log index")`, pkg/raft/raft/node.go:62, every tag
        // from v2.1.1; for slots v2.2.4 repairs the state first (commit 9fc693d5 "fix: #509").
        patterns: &[&["applied index > last log index"]],
        explanation: "restart panic loop in raft node init: a slot's applied index is ahead of its log",
        hint: "v2.2.4-20260313 and later repair this state at start (#509): upgrade this node to v2.2.4 or later, keeping a backup of its data",
        issue: Some(509),
    },
    Signature {
        id: FindingId::LogsAppliedIndexRepaired,
        // `p.Warn("detected inconsistent state: appliedIndex > lastLogIndex, auto-fixing")`,
        // pkg/cluster/slot/storage_pebble.go:167, v2.2.4+.
        patterns: &[&["detected inconsistent state: appliedindex > lastlogindex"]],
        explanation: "the node found a slot whose applied index was ahead of its log (the #509 state) and repaired it at start",
        hint: "nothing to do if the node then runs; if it keeps restarting, read its log for `apply slot logs failed` (#546)",
        issue: Some(509),
    },
    Signature {
        id: FindingId::LogsCatchUpCrashLoop,
        // `s.Panic("apply slot logs failed", …, zap.Error(err))`, pkg/cluster/cluster/server.go,
        // every tag from v2.1.1, with err = context deadline exceeded (#545, #546).
        patterns: &[&["apply slot logs failed", "context deadline exceeded"]],
        explanation: "the node panics while catching up a large raft backlog (`apply slot logs failed` on a timeout) and restarts: a crash loop",
        hint: "open upstream (#546; every release from v2.1.1): reduce write load and disk latency so it can catch up, and add the log to #546",
        issue: Some(546),
    },
    Signature {
        id: FindingId::LogsApplyLogErr,
        // `s.Panic("apply log err", …)`, pkg/cluster/store/store_apply.go:40; #522 shows it
        // under `【RaftGroup[slot]】raftgroup:go pool panic` when upgrading to v2.2.4.
        patterns: &[&["【store】apply log err"], &["panic: apply log err"]],
        explanation: "the store could not apply a slot log entry and panicked (reported when upgrading a 3-node docker cluster to v2.2.4-20260313)",
        hint: "open upstream (#522; v2.2.5 changed nothing in `pkg/cluster/store`): keep this node's data backup, and add the `cmd` and `index` of the line to #522",
        issue: Some(522),
    },
    Signature {
        id: FindingId::LogsApplySlotLogsFailed,
        // The same panic as #546 with another error.
        patterns: &[&["apply slot logs failed"]],
        explanation: "the node could not apply a slot's raft log and panicked",
        hint: "read the `error` field of the line; the node restarts and retries (see #546 for the timeout case)",
        issue: None,
    },
    Signature {
        id: FindingId::LogsPeerUnreachable,
        // `c.Error("connect not authed", zap.String("addr", …))`, pkg/wkserver/client/client.go:195.
        // Expected for a few seconds while a peer restarts; many lines mean it stays unreachable.
        patterns: &[&["connect not authed"]],
        explanation: "this node could not talk to a peer's cluster port (normal for a few seconds while that peer restarts)",
        hint: "if it persists, check firewalls and routes between the nodes on port 11110 (see the network matrix)",
        issue: Some(388),
    },
    Signature {
        id: FindingId::LogsAddressChanged,
        // `Error("Send event to node is nil")`, pkg/cluster/cluster/transport_{node,slot,channel}.go;
        // #363/#364 (pod IP changed on a k8s restart).
        patterns: &[&["send event to node is nil"]],
        explanation: "a peer's cluster address is unknown here; v2 pins node addresses in the persisted cluster config",
        hint: "if a node's address changed, edit it in `data/cluster/config/remote.json` on every node, then restart (#364); keep `cluster.serverAddr` stable",
        issue: Some(364),
    },
    Signature {
        id: FindingId::LogsPanic,
        // Go's runtime output (`panic: …`) and zap's panic level (`"level":"panic"`).
        patterns: &[&["panic:"], &["\"level\":\"panic\""]],
        explanation: "the process panicked",
        hint: "read the lines around the panic; search the message in the WuKongIM issues",
        issue: None,
    },
];

/// One matching line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogMatch {
    pub node: u64,
    pub signature: FindingId,
    /// The line's timestamp, when it starts with one.
    pub time: Option<String>,
    pub line: String,
}

/// The signature a line belongs to, if any.
pub fn classify(line: &str) -> Option<&'static Signature> {
    let lower = line.to_lowercase();
    SIGNATURES.iter().find(|s| {
        s.patterns
            .iter()
            .any(|all| all.iter().all(|n| lower.contains(&n.to_lowercase())))
    })
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
    // WuKongIM's own log files are zap JSON lines (`pkg/wklog/logger.go`): `"time":"…"`.
    if let Some(i) = line.find("\"time\":\"") {
        let after = &line[i + 8..];
        if let Some(end) = after.find('"') {
            return Some(after[..end].to_string());
        }
    }
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

pub fn signature(id: FindingId) -> Option<&'static Signature> {
    SIGNATURES.iter().find(|s| s.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines each signature must recognise, from upstream's source strings and issue threads.
    const POSITIVE: &[(&str, FindingId)] = &[
        // #197 (v2.0.x, clusterserver) and Mininglamp-OSS/octo-deployment#106 (v2.2.5).
        (
            r#"{"level":"panic","msg":"【cluster[1]】wait all slots ready timeout","stacktrace":"…"}"#,
            FindingId::LogsSlotsReadyTimeout,
        ),
        (
            "panic: 【slot.Server】wait all slots ready timeout",
            FindingId::LogsSlotsReadyTimeout,
        ),
        // #509 (the thread's fields, joined as zap writes them).
        (
            r#"{"level":"panic","linenum":"/go/release/pkg/raft/raft/node.go:62","msg":"【raft.node[16]】applied index > last log index","appliedIndex":1776018,"lastLogIndex":1776008}"#,
            FindingId::LogsAppliedIndexPanic,
        ),
        // pkg/cluster/slot/storage_pebble.go:167 (v2.2.4+).
        (
            r#"{"level":"warn","time":"2026-04-22T10:00:00.1+08:00","msg":"【PebbleShardLogStorage[/root/wukongim/data/slots]】detected inconsistent state: appliedIndex > lastLogIndex, auto-fixing","shardNo":"16","appliedIndex":1776018,"lastLogIndex":1776008}"#,
            FindingId::LogsAppliedIndexRepaired,
        ),
        // #546 (JSON line) and #545 (console form).
        (
            r#"{"level":"panic","msg":"【cluster】apply slot logs failed","slotId":18,"error":"context deadline exceeded"}"#,
            FindingId::LogsCatchUpCrashLoop,
        ),
        (
            r#"PANIC   apply slot logs failed {"slotId": 7, "error": "context deadline exceeded"}"#,
            FindingId::LogsCatchUpCrashLoop,
        ),
        // #522: `panic: "【store】apply log err"` under the go pool panic.
        (
            r#"{"level":"panic","msg":"【store】apply log err","error":"key not found","cmd":"CMDAddOrUpdateConversations","index":88213}"#,
            FindingId::LogsApplyLogErr,
        ),
        ("panic: 【store】apply log err", FindingId::LogsApplyLogErr),
        // server.go's panic with another error (#482's stack runs through it).
        (
            r#"{"level":"panic","msg":"【cluster】apply slot logs failed","slotId":3,"error":"shardId key is empty"}"#,
            FindingId::LogsApplySlotLogsFailed,
        ),
        // pkg/wkserver/client/client.go:195.
        (
            r#"{"level":"error","msg":"【Client[10.0.0.12:11110]】connect not authed","addr":"10.0.0.12:11110","path":"/rpc/cluster/join"}"#,
            FindingId::LogsPeerUnreachable,
        ),
        // #363.
        (
            r#"{"level":"error","time":"2025-05-13T13:12:44.638365024+08:00","msg":"【slotTransport】Send event to node is nil","key":"11","to":5}"#,
            FindingId::LogsAddressChanged,
        ),
        // #26 (Go runtime) and #398 (zap panic level).
        (
            "panic: runtime error: slice bounds out of range [:-217]",
            FindingId::LogsPanic,
        ),
        (
            r#"{"level":"panic","time":"2025-07-06T23:38:45.80317805+08:00","msg":"【wukongDB】shardId key is empty"}"#,
            FindingId::LogsPanic,
        ),
    ];

    /// Routine lines that must not be attributed to a failure.
    const NEGATIVE: &[&str] = &[
        // #526: routine errors carrying a bare `context deadline exceeded`.
        r#"{"level":"error","time":"2026-04-03T01:01:21.876915017+00:00","msg":"【Channel】移除订阅者失败！","error":"context deadline exceeded"}"#,
        r#"{"level":"error","time":"2026-04-03T01:05:14.971589143+00:00","msg":"【user】更新设备失败！","error":"context deadline exceeded","uid":"0100","deviceFlag":0}"#,
        r#"{"level":"error","msg":"【RaftGroup[slot]】propose batch until applied timeout","raftKey":"5","progress":"key:5, maxIndex:111332, waitApplied:true, done:false"}"#,
        // Slot re-election: pkg/cluster/cluster/iserver.go `fmt.Errorf("slot[%d] leader not found")`.
        r#"{"level":"error","msg":"【cluster】getSlotLeader failed","error":"slot[12] leader not found"}"#,
        r#"{"level":"error","msg":"【cluster】slot leader not found","slotId":12}"#,
        // api_cluster.go: a channel's leader, not the controller.
        r#"{"level":"error","msg":"【cluster】leader not found","cfg":"channelId:g1 channelType:2 leaderId:0"}"#,
        // /health body text, never a log line on its own (v2.1.4+ `CheckClusterStatus`).
        r#"{"status":"error","message":"slot count not match"}"#,
        // pkg/raft/raft/node_step.go: routine during elections (#364).
        r#"{"level":"warn","msg":"【raft.node[clusterconfig]】become follower but leader is none","from":3}"#,
        // Startup banner (#364).
        r#"{"level":"info","time":"2025-05-13T13:55:03.889162249+08:00","msg":"【Server】  Version:  v2.1.2-20250120"}"#,
        "INFO Server is ready",
    ];

    #[test]
    fn every_signature_is_recognised_from_upstream_lines() {
        for (line, id) in POSITIVE {
            assert_eq!(classify(line).map(|s| s.id), Some(*id), "{line}");
        }
        for sig in SIGNATURES {
            assert!(
                POSITIVE.iter().any(|(_, id)| *id == sig.id),
                "{} has no positive fixture",
                sig.id
            );
        }
    }

    #[test]
    fn routine_lines_are_not_misattributed() {
        for line in NEGATIVE {
            assert_eq!(classify(line).map(|s| s.id), None, "{line}");
        }
        assert!(FindingId::from_name("logs.leader_not_found").is_none());
        assert!(FindingId::from_name("logs.slot_count_mismatch").is_none());
    }

    #[test]
    fn no_hint_claims_a_fix_for_an_open_issue() {
        // #522 and #546 are open in v2.2.5 (issue 14 §2).
        for id in [FindingId::LogsApplyLogErr, FindingId::LogsCatchUpCrashLoop] {
            let s = signature(id).unwrap();
            assert!(
                !s.hint.contains("upgrade to v2.2.5") && s.hint.contains("open upstream"),
                "{id}: {}",
                s.hint
            );
        }
    }

    #[test]
    fn timestamps_are_kept() {
        let m = scan(
            1002,
            "wukongim2  | 2026-11-26T08:41:47.977Z ERROR panic: 【store】apply log err\nok line\n",
        );
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].time.as_deref(), Some("2026-11-26T08:41:47.977Z"));
        assert_eq!(m[0].node, 1002);
        let m = scan(1, "2026/11/26 08:41:47 panic: runtime error");
        assert_eq!(m[0].time.as_deref(), Some("2026/11/26 08:41:47"));
        let m = scan(
            1,
            POSITIVE[0]
                .0
                .replace(
                    "\"level\"",
                    "\"time\":\"2026-04-22T10:00:00+08:00\",\"level\"",
                )
                .as_str(),
        );
        assert_eq!(m[0].time.as_deref(), Some("2026-04-22T10:00:00+08:00"));
    }
}
