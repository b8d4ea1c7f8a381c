//! Injectable faults of one simulated node (DESIGN §7) and their parsing from `wksim ctl fault`.
//!
//! Start-time faults (`never-starts`, `crash-loop`, `wrong-version`, `slow-start`, `no-rejoin`,
//! `slow-rejoin`, `slow-catch-up`, `slow-migrate`, `slow-join`) are read when the node next
//! boots or rejoins; the others act immediately. Each one reproduces a failure seen upstream
//! (facts §4.5, §8.3, §12): #197 slot-ready panic, #545/#546 crash loop, #388 `connect not
//! authed`, #310 "image not pulled", #529 a node stuck in Joining. The service-level faults
//! (`clients-stuck` #397/#683, `traffic-stops`, `no-replicate`) act in `clients.rs`.

use std::collections::{BTreeMap, BTreeSet};

/// Active faults of one node; `clear` resets it to `Faults::default()`.
#[allow(clippy::struct_excessive_bools)] // independent switches, any combination is valid
#[derive(Debug, Clone, Default)]
pub struct Faults {
    pub never_starts: bool,
    pub crash_loop: bool,
    pub wrong_version: bool,
    pub slow_start_secs: Option<f64>,
    pub no_rejoin: bool,
    pub blackhole: bool,
    pub http500: bool,
    pub partition: bool,
    pub token: Option<String>,
    pub config: BTreeMap<String, String>,
    pub netsplit: BTreeSet<u64>,
    /// Simulated seconds a restarted node stays stale (pinging, so not marked offline, but
    /// not knowing the controller and not caught up) before it rejoins.
    pub slow_rejoin_secs: Option<f64>,
    /// Extra simulated seconds between being marked online and catching up on the config.
    pub slow_catch_up_secs: Option<f64>,
    /// Simulated seconds the leader moves towards the node take after its catch-up.
    pub slow_migrate_secs: Option<f64>,
    /// Extra simulated seconds a seed-joining node stays in Joining (2).
    pub slow_join_secs: Option<f64>,
    /// Upstream #529: stays Joining (2) although online, caught up and holding replicas.
    pub stuck_joining: bool,
    /// Upstream #397/#683: after a peer restarts, this node's clients are not counted
    /// online and do not come back (`clients.rs`).
    pub clients_stuck: bool,
    /// After this node restarts, every message counter of the cluster freezes.
    pub traffic_stops: bool,
    /// Messages sent through this node are readable only on it.
    pub no_replicate: bool,
    /// The node lost track of the controller (a controller move it has not followed yet):
    /// it keeps pinging, so it is never marked offline, but `/cluster/info` answers
    /// `leader not found` and its view is frozen, until `clear` (facts §4.3).
    pub leader_lost: bool,
}

/// Simulated ms of an optional seconds value.
pub fn ms(secs: Option<f64>) -> u64 {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    secs.map_or(0, |s| (s * 1000.0) as u64)
}

impl Faults {
    /// Short names for `ctl show`.
    pub fn names(&self) -> Vec<String> {
        let mut out = Vec::new();
        let flags = [
            (self.never_starts, "never-starts"),
            (self.crash_loop, "crash-loop"),
            (self.wrong_version, "wrong-version"),
            (self.no_rejoin, "no-rejoin"),
            (self.blackhole, "blackhole"),
            (self.http500, "http500"),
            (self.partition, "partition"),
            (self.stuck_joining, "stuck-joining"),
            (self.clients_stuck, "clients-stuck"),
            (self.traffic_stops, "traffic-stops"),
            (self.no_replicate, "no-replicate"),
            (self.leader_lost, "leader-lost"),
        ];
        out.extend(
            flags
                .iter()
                .filter(|(on, _)| *on)
                .map(|(_, n)| (*n).to_string()),
        );
        for (v, name) in [
            (self.slow_start_secs, "slow-start"),
            (self.slow_rejoin_secs, "slow-rejoin"),
            (self.slow_catch_up_secs, "slow-catch-up"),
            (self.slow_migrate_secs, "slow-migrate"),
            (self.slow_join_secs, "slow-join"),
        ] {
            if let Some(s) = v {
                out.push(format!("{name} {s}"));
            }
        }
        if self.token.is_some() {
            out.push("token".to_string());
        }
        out.extend(self.config.iter().map(|(k, v)| format!("config {k}={v}")));
        out.extend(self.netsplit.iter().map(|p| format!("netsplit {p}")));
        out
    }
}

/// One `wksim ctl fault NODE KIND [ARG]` request.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    NeverStarts,
    CrashLoop,
    WrongVersion,
    SlowStart(f64),
    NoRejoin,
    Blackhole,
    Http500,
    Partition,
    Token(String),
    Log(String),
    Config(String, String),
    Netsplit(u64),
    SlowRejoin(f64),
    SlowCatchUp(f64),
    SlowMigrate(f64),
    SlowJoin(f64),
    StuckJoining,
    ClientsStuck,
    TrafficStops,
    NoReplicate,
    LeaderLost,
    /// Hostile knob (attack tests): the node's counted clients disconnect now and never
    /// reconnect anywhere (a drain that drops them, clients that give up). Not a fault flag:
    /// it acts once.
    ClientsDrop,
}

impl FaultKind {
    pub fn parse(kind: &str, args: &[String]) -> Result<FaultKind, String> {
        let one = |what: &str| -> Result<String, String> {
            match args {
                [a] => Ok(a.clone()),
                _ => Err(format!("fault `{kind}` needs exactly one argument: {what}")),
            }
        };
        let none = |k: FaultKind| -> Result<FaultKind, String> {
            if args.is_empty() {
                Ok(k)
            } else {
                Err(format!("fault `{kind}` takes no argument"))
            }
        };
        match kind {
            "never-starts" => none(FaultKind::NeverStarts),
            "crash-loop" => none(FaultKind::CrashLoop),
            "wrong-version" => none(FaultKind::WrongVersion),
            "no-rejoin" => none(FaultKind::NoRejoin),
            "blackhole" => none(FaultKind::Blackhole),
            "http500" => none(FaultKind::Http500),
            "partition" => none(FaultKind::Partition),
            "stuck-joining" => none(FaultKind::StuckJoining),
            "clients-stuck" => none(FaultKind::ClientsStuck),
            "traffic-stops" => none(FaultKind::TrafficStops),
            "no-replicate" => none(FaultKind::NoReplicate),
            "leader-lost" => none(FaultKind::LeaderLost),
            "clients-drop" => none(FaultKind::ClientsDrop),
            "slow-start" | "slow-rejoin" | "slow-catch-up" | "slow-migrate" | "slow-join" => {
                let s = one("SECS")?;
                let secs: f64 = s
                    .parse()
                    .map_err(|_| format!("{kind}: `{s}` is not a number of seconds"))?;
                if !(secs.is_finite() && secs >= 0.0) {
                    return Err(format!("{kind}: `{s}` must be a non-negative number"));
                }
                Ok(match kind {
                    "slow-start" => FaultKind::SlowStart(secs),
                    "slow-rejoin" => FaultKind::SlowRejoin(secs),
                    "slow-catch-up" => FaultKind::SlowCatchUp(secs),
                    "slow-migrate" => FaultKind::SlowMigrate(secs),
                    _ => FaultKind::SlowJoin(secs),
                })
            }
            "token" => Ok(FaultKind::Token(one("NEWTOKEN")?)),
            "log" if !args.is_empty() => Ok(FaultKind::Log(args.join(" "))),
            "log" => Err("fault `log` needs the text to append".to_string()),
            "config" => match args {
                [k, v] => Ok(FaultKind::Config(k.clone(), v.clone())),
                _ => Err("fault `config` needs KEY VALUE".to_string()),
            },
            "netsplit" => {
                let s = one("PEER_ID")?;
                Ok(FaultKind::Netsplit(s.parse().map_err(|_| {
                    format!("netsplit: `{s}` is not a node id")
                })?))
            }
            other => Err(format!(
                "unknown fault `{other}` (expected never-starts, crash-loop, wrong-version, slow-start, no-rejoin, \
                 slow-rejoin, slow-catch-up, slow-migrate, slow-join, stuck-joining, \
                 clients-stuck, traffic-stops, no-replicate, leader-lost, clients-drop, blackhole, http500, partition, token, log, config, netsplit)"
            )),
        }
    }

    /// Whether the fault only acts at the node's next start.
    pub fn is_start_time(&self) -> bool {
        matches!(
            self,
            FaultKind::NeverStarts
                | FaultKind::CrashLoop
                | FaultKind::WrongVersion
                | FaultKind::SlowStart(_)
                | FaultKind::NoRejoin
                | FaultKind::SlowRejoin(_)
                | FaultKind::SlowCatchUp(_)
                | FaultKind::SlowMigrate(_)
                | FaultKind::SlowJoin(_)
                | FaultKind::ClientsStuck
                | FaultKind::TrafficStops
        )
    }

    /// Text for the `fault` event's `detail`.
    pub fn describe(&self) -> String {
        match self {
            FaultKind::NeverStarts => "never-starts".into(),
            FaultKind::CrashLoop => "crash-loop".into(),
            FaultKind::WrongVersion => "wrong-version".into(),
            FaultKind::SlowStart(s) => format!("slow-start {s}"),
            FaultKind::NoRejoin => "no-rejoin".into(),
            FaultKind::Blackhole => "blackhole".into(),
            FaultKind::Http500 => "http500".into(),
            FaultKind::Partition => "partition".into(),
            FaultKind::Token(_) => "token".into(),
            FaultKind::Log(t) => format!("log {t}"),
            FaultKind::Config(k, v) => format!("config {k} {v}"),
            FaultKind::Netsplit(p) => format!("netsplit {p}"),
            FaultKind::SlowRejoin(s) => format!("slow-rejoin {s}"),
            FaultKind::SlowCatchUp(s) => format!("slow-catch-up {s}"),
            FaultKind::SlowMigrate(s) => format!("slow-migrate {s}"),
            FaultKind::SlowJoin(s) => format!("slow-join {s}"),
            FaultKind::StuckJoining => "stuck-joining".into(),
            FaultKind::ClientsStuck => "clients-stuck".into(),
            FaultKind::TrafficStops => "traffic-stops".into(),
            FaultKind::NoReplicate => "no-replicate".into(),
            FaultKind::LeaderLost => "leader-lost".into(),
            FaultKind::ClientsDrop => "clients-drop".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kinds_and_rejects_bad_args() {
        assert_eq!(
            FaultKind::parse("slow-start", &["2.5".into()]),
            Ok(FaultKind::SlowStart(2.5))
        );
        assert_eq!(
            FaultKind::parse("netsplit", &["1002".into()]),
            Ok(FaultKind::Netsplit(1002))
        );
        assert!(FaultKind::parse("crash-loop", &["x".into()]).is_err());
        assert!(FaultKind::parse("slow-start", &[]).is_err());
        assert!(FaultKind::parse("bogus", &[]).is_err());
        assert_eq!(
            FaultKind::parse("slow-catch-up", &["4".into()]),
            Ok(FaultKind::SlowCatchUp(4.0))
        );
        assert!(FaultKind::parse("slow-migrate", &["-1".into()]).is_err());
        assert_eq!(
            FaultKind::parse("stuck-joining", &[]),
            Ok(FaultKind::StuckJoining)
        );
        assert!(FaultKind::CrashLoop.is_start_time());
        assert!(!FaultKind::Blackhole.is_start_time());
    }
}
