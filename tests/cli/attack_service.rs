//! An outsider's attack on the service-level gate (issue #18: clients come back, messages
//! keep flowing, the smoke test) and on the run-wide safety of the drain hooks.
//!
//! Most tests reproduced a real hole (each was `#[ignore]`d while wkctl failed it, until
//! issue #18's follow-up closed it) and now guard the fix; those marked "Held" show an
//! attack that held. Hostile answers come from the simulator's own faults, its one
//! hostile knob `clients-drop` (a node's counted clients disconnect now and never come back), and a tiny
//! `/varz`-rewriting proxy in front of one node ([`VarzProxy`]).

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{Sim, rollout_was_safe};
use crate::hooks::ws_with_hooks;
use crate::service::{
    RUN_T, SMOKE, UP, of_type, probe_channel_only, requests, run_upgrade, sim_with_clients, ws,
};
use crate::support::{FAST_POLICY, Opts, Ws, ctl_ok};

const RESUME: [&str; 4] = ["upgrade", "--resume", "--yes", "--json"];

/// Cluster-wide `/varz.connections`, straight from the simulator.
pub(crate) fn sim_connections(sim: &Sim) -> u64 {
    (1001..=1003)
        .map(|id| {
            sim.get_json(id, "/varz").1["connections"]
                .as_u64()
                .unwrap_or(0)
        })
        .sum()
}

fn failed_reason(lines: &[Value]) -> String {
    of_type(lines, "node_failed")
        .first()
        .and_then(|f| f["data"]["reason"].as_str())
        .unwrap_or("")
        .to_string()
}

fn lines_of(r: &crate::support::Run) -> Vec<Value> {
    r.lines()
}

// ---- --resume forgets the client baseline ------------------------------------------

/// The natural reaction to a failed client check is `--resume`. The resumed run re-gates
/// and re-soaks the node, but the client baseline lived only in memory: "no baseline
/// before the stop: client check skipped", and the node passes with a third of the
/// clients still gone. The later nodes then take their baselines from the shrunken
/// cluster, so the whole run completes (exit 0) while #397/#683 is in effect.
#[test]
fn resume_after_a_client_shortfall_still_checks_the_clients() {
    let sim = sim_with_clients(1600);
    let ws = ws(&sim, "");
    ctl_ok(&sim, &["fault", "1003", "clients-stuck"]);
    let (code, lines, err) = run_upgrade(&ws);
    assert_eq!(code, 1, "{err}");
    assert!(failed_reason(&lines).contains("clients did not come back"));
    // The clients are still stuck: nothing changed but the operator's `--resume`.
    let now = sim_connections(&sim);
    assert!(now < 4800 * 9 / 10, "still short: {now}");
    let r = ws.run(&RESUME, &[]);
    let lines = lines_of(&r);
    assert_eq!(
        r.code,
        1,
        "the resumed run passed node 1001 with {now} of 4,800 clients:\n{}",
        r.all()
    );
    assert!(
        failed_reason(&lines).contains("clients did not come back"),
        "{}",
        r.all()
    );
}

/// The same through a crash: wkctl is killed during 1001's gate, after #397/#683 took the
/// clients of 1003. The resumed run skips the client check of the node it was interrupted
/// on, and of every later one in effect (their baselines already lack the lost clients).
#[test]
fn resume_after_a_kill_during_the_gate_still_checks_the_clients() {
    let sim = sim_with_clients(1600);
    let ws = ws(&sim, "");
    ctl_ok(&sim, &["fault", "1003", "clients-stuck"]);
    let mut run = ws.spawn(&UP, &[]);
    run.wait_for("1001's gate", RUN_T, |v| {
        v["type"] == "step_started"
            && v["data"]["node"] == 1001
            && v["data"]["step"] == "wait_ready"
    });
    run.kill9();
    sim.wait_until(
        "#397/#683 took 1003's clients",
        Duration::from_secs(20),
        |s| s.events().iter().any(|e| e["kind"] == "clients_stuck"),
    );
    let r = ws.run(&RESUME, &[]);
    let lines = lines_of(&r);
    let warned_skip = of_type(&lines, "warning").iter().any(|w| {
        w["data"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("no baseline before the stop"))
    });
    assert_eq!(
        r.code,
        1,
        "resume passed with {} of 4,800 clients (skip warned: {warned_skip}):\n{}",
        sim_connections(&sim),
        r.all()
    );
    assert!(failed_reason(&lines).contains("clients did not come back"));
}

// ---- the baseline is taken after the drain ------------------------------------------

/// `drain` runs before the pre-stop check, and the client baseline is recorded from the
/// observation that allowed the stop: after the drain. A drain that disconnects the node's
/// clients (they have not reconnected yet, or never do) lowers the baseline by exactly the
/// clients the check exists to count: the node then reports "0 clients moved off; 0 back
/// (100%)" and passes while a third of the cluster's clients are gone.
#[test]
fn clients_dropped_by_the_drain_count_in_the_baseline() {
    let sim = sim_with_clients(1600);
    let drain = "if [ {{node.id}} = 1002 ]; then {{wksim}} ctl --state-dir {{state_dir}} fault 1002 clients-drop; fi";
    let ws = ws_with_hooks(&sim, drain, "true");
    let mut run = ws.spawn(&UP, &[]);
    let (code, err) = run.finish(RUN_T);
    let lines: Vec<Value> = run.values().into_iter().map(|(_, v)| v).collect();
    let dropped = sim
        .events()
        .iter()
        .any(|e| e["kind"] == "clients_dropped" && e["node"] == 1002);
    assert!(dropped, "the drain hook dropped 1002's clients");
    let end = sim_connections(&sim);
    assert!(end < 4000, "clients really gone at the end: {end}");
    let soak_1002 = of_type(&lines, "soak_finished")
        .into_iter()
        .find(|s| s["data"]["node"] == 1002)
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(
        code, 1,
        "run passed with {end} of 4,800 clients; 1002's soak said {}\n{err}",
        soak_1002["data"]["clients"]
    );
    assert!(failed_reason(&lines).contains("clients did not come back"));
    rollout_was_safe(&sim.events()).unwrap();
}

// ---- recovery is latched: clients that come back and leave again ---------------------

/// The soak marks the clients "recovered" at the first poll that sees 90% and never looks
/// again: clients that came back and then dropped again during the soak (the node they
/// moved to drops them) pass, and `soak_finished` says `check: passed` next to
/// `connections` at two thirds of the baseline.
#[test]
fn clients_that_come_back_then_drop_during_the_soak_fail_it() {
    let sim = sim_with_clients(1600);
    let policy = FAST_POLICY.replace("soak: 300ms", "soak: 4s");
    let ws = Ws::new(
        &sim,
        &Opts {
            policy,
            ..Opts::default()
        },
    );
    let mut run = ws.spawn(&UP, &[]);
    run.wait_for("1001 ready", RUN_T, |v| {
        v["type"] == "node_ready" && v["data"]["node"] == 1001
    });
    sim.wait_until("clients back", Duration::from_secs(10), |s| {
        sim_connections(s) >= 4800 * 9 / 10
    });
    // wkctl has seen them back: two more /varz polls of the soaked node.
    let polls = |s: &Sim| requests(s)["1001"].get("/varz").copied().unwrap_or(0);
    let seen = polls(&sim);
    sim.wait_until("two soak polls", Duration::from_secs(10), |s| {
        polls(s) >= seen + 2
    });
    ctl_ok(&sim, &["fault", "1003", "clients-drop"]);
    let after = sim_connections(&sim);
    let soak = run.wait_for("1001's soak", RUN_T, |v| {
        v["type"] == "soak_finished" && v["data"]["node"] == 1001
    });
    run.kill9();
    assert!(after < 4800 * 9 / 10, "{after}");
    assert_eq!(
        soak["data"]["ok"], false,
        "soak passed with {after} of 4,800 clients: {soak}"
    );
}

// ---- on_shortfall: warn ------------------------------------------------------------

/// Under `on_shortfall: warn` a client shortfall found at `policy.clients.within` ended the
/// soak at once (the verdict was Ready), so a `within` shorter than the soak cut the
/// whole-cluster watch after the node from `soak` down to `within`. Fixed in
/// `gate::tracker` (the warned soak runs its whole length); this guards it.
#[test]
fn a_warned_shortfall_does_not_cut_the_soak_short() {
    let sim = sim_with_clients(1600);
    let policy = FAST_POLICY.replace("soak: 300ms", "soak: 3s")
        + "  clients:\n    within: 300ms\n    on_shortfall: warn\n";
    let ws = Ws::new(
        &sim,
        &Opts {
            policy,
            ..Opts::default()
        },
    );
    ctl_ok(&sim, &["fault", "1003", "clients-stuck"]);
    let mut run = ws.spawn(&UP, &[]);
    let soak = run.wait_for("1001's soak", RUN_T, |v| {
        v["type"] == "soak_finished" && v["data"]["node"] == 1001
    });
    run.kill9();
    let took = soak["data"]["duration_s"].as_f64().unwrap_or(0.0);
    assert!(took >= 3.0, "1001 soaked {took}s of its 3s soak: {soak}");
}

/// `warn` never hides a second node down: a peer stopped during a warned soak still stops
/// the run (signal F / the peer watch are not service-level).
#[test]
fn on_shortfall_warn_does_not_hide_a_peer_going_down_in_the_soak() {
    let sim = sim_with_clients(1600);
    let policy =
        FAST_POLICY.replace("soak: 300ms", "soak: 4s") + "  clients:\n    on_shortfall: warn\n";
    let ws = Ws::new(
        &sim,
        &Opts {
            policy,
            ..Opts::default()
        },
    );
    ctl_ok(&sim, &["fault", "1003", "clients-stuck"]);
    let mut run = ws.spawn(&UP, &[]);
    run.wait_for("1001's soak", RUN_T, |v| {
        v["type"] == "step_started" && v["data"]["node"] == 1001 && v["data"]["step"] == "soak"
    });
    let t_stop = crate::support::now_ms();
    ctl_ok(&sim, &["stop", "1002"]);
    let (code, err) = run.finish(RUN_T);
    let lines: Vec<Value> = run.values().into_iter().map(|(_, v)| v).collect();
    assert_eq!(code, 1, "{err}");
    let reason = failed_reason(&lines);
    assert!(reason.contains("1002"), "{reason}");
    assert_eq!(of_type(&lines, "summary")[0]["data"]["status"], "failed");
    // Nothing after 1001 was touched.
    let stops: Vec<u64> = crate::support::lifecycle(&sim)
        .into_iter()
        .filter(|(t, v, _)| v == "stop" && *t < t_stop)
        .map(|(_, _, n)| n)
        .collect();
    assert_eq!(stops, [1001]);
    crate::harness::safe_before(&sim.events(), t_stop).unwrap();
}

// ---- the smoke test ------------------------------------------------------------------

/// `wkctl smoke` reads back "through another node" by manifest id, never checking which
/// node answers. A manifest whose 1002 points at 1001's API (a copy-paste slip; nothing
/// rejects two nodes with one `api`) reads 1001's probe message back through 1001 itself:
/// "✓ node 1001 … read back through 1002" although 1001 replicates nothing.
#[test]
fn smoke_never_reads_back_through_the_node_it_wrote_to() {
    let sim = sim_with_clients(100);
    let ws = ws(&sim, SMOKE);
    let text = std::fs::read_to_string(&ws.manifest).unwrap().replace(
        &format!("api: {}\n", sim.api(1002)),
        &format!("api: {}\n", sim.api(1001)),
    );
    std::fs::write(&ws.manifest, text).unwrap();
    ctl_ok(&sim, &["fault", "1001", "no-replicate"]);
    let r = ws.run(&["smoke", "--json"], &[]);
    // A refusal (two nodes with one API) would do; a ✓ for 1001 must not happen.
    let doc: Value = serde_json::from_str(&r.stdout).unwrap_or(Value::Null);
    let n1001 = doc["nodes"]
        .as_array()
        .and_then(|a| a.iter().find(|n| n["node"] == 1001))
        .cloned()
        .unwrap_or(Value::Null);
    assert_ne!(
        n1001["ok"],
        true,
        "1001's probe was \"read back through 1002\", i.e. through 1001 itself, although 1001 replicates nothing:\n{}",
        r.all()
    );
}

/// The same slip spelled so that the manifest cannot see it (`localhost` for 1001's
/// `127.0.0.1`): `wkctl smoke` compares `/varz.server_id` of writer and reader and refuses
/// to read 1001's probe back through 1001 itself, before anything is written.
#[test]
fn smoke_refuses_a_reader_that_is_the_writers_server() {
    let sim = sim_with_clients(100);
    let ws = ws(&sim, SMOKE);
    let alias = sim.api(1001).replace("127.0.0.1", "localhost");
    assert_ne!(alias, sim.api(1001));
    let text = std::fs::read_to_string(&ws.manifest).unwrap().replace(
        &format!("api: {}\n", sim.api(1002)),
        &format!("api: {alias}\n"),
    );
    std::fs::write(&ws.manifest, text).unwrap();
    ctl_ok(&sim, &["fault", "1001", "no-replicate"]);
    let r = ws.run(&["smoke", "--json"], &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    let doc: Value = serde_json::from_str(&r.stdout).unwrap_or(Value::Null);
    let n1001 = doc["nodes"]
        .as_array()
        .and_then(|a| a.iter().find(|n| n["node"] == 1001))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(n1001["ok"], false, "{}", r.all());
    let reason = n1001["reason"].as_str().unwrap_or("");
    assert!(
        reason.contains("node 1001 and node 1002 answer as one server (`/varz.server_id` `1001`)"),
        "{}",
        r.all()
    );
    // Refused before writing: the simulator saw no probe message of 1001's smoke (its
    // `client_msg_no` names the manifest node), while 1002's (reader 1003) was sent.
    let sent = |prefix: &str| {
        sim.events()
            .iter()
            .filter(|e| {
                e["kind"] == "message_sent"
                    && e["detail"]
                        .as_str()
                        .is_some_and(|d| d.contains(&format!("client_msg_no={prefix}")))
            })
            .count()
    };
    assert_eq!(sent("wkctl-smoke-1001-"), 0, "{:#?}", sim.events());
    assert_eq!(sent("wkctl-smoke-1002-"), 1, "{:#?}", sim.events());
}

/// The smoke test of the interrupted node is not skipped by `--resume`: killed during
/// 1002's soak (smoke not run yet), the resumed run re-soaks 1002 and runs its smoke, which
/// fails under `no-replicate`; still only the probe channel was written.
#[test]
fn resume_runs_the_smoke_test_of_the_interrupted_node() {
    let sim = sim_with_clients(100);
    let policy = FAST_POLICY.replace("soak: 300ms", "soak: 3s") + SMOKE;
    let ws = Ws::new(
        &sim,
        &Opts {
            policy,
            ..Opts::default()
        },
    );
    ctl_ok(&sim, &["fault", "1002", "no-replicate"]);
    let mut run = ws.spawn(&UP, &[]);
    run.wait_for("1002's soak", RUN_T, |v| {
        v["type"] == "step_started" && v["data"]["node"] == 1002 && v["data"]["step"] == "soak"
    });
    run.kill9();
    let r = ws.run(&RESUME, &[]);
    let lines = lines_of(&r);
    assert_eq!(r.code, 1, "{}", r.all());
    let reason = failed_reason(&lines);
    assert!(
        reason.contains("smoke test failed")
            && reason.contains("sent through node 1002 is not readable through node 1003"),
        "{}",
        r.all()
    );
    // 1001's smoke ran once (before the kill), 1002's once (in the resume).
    assert_eq!(probe_channel_only(&sim), 2);
    let stops_1003 = crate::support::lifecycle(&sim)
        .into_iter()
        .filter(|(_, v, n)| v == "stop" && *n == 1003)
        .count();
    assert_eq!(stops_1003, 0, "1003 untouched");
}

// ---- hostile /varz numbers (a proxy in front of one node) ------------------------------

/// A blocking HTTP/1.1 proxy in front of one simulator node that sets (or, with `null`,
/// removes) fields of its `/varz` answers. Every request is answered and closed
/// (`Connection: close`); everything but `/varz` passes through unchanged.
pub(crate) struct VarzProxy {
    pub(crate) url: String,
    set: Arc<Mutex<serde_json::Map<String, Value>>>,
    /// Paths answered `500 {"status":"error","msg":"… (token: <the request's token>)"}` by
    /// the proxy itself.
    fail: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl VarzProxy {
    pub(crate) fn start(upstream: &str) -> VarzProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let set = Arc::new(Mutex::new(serde_json::Map::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let up = upstream.trim_start_matches("http://").to_string();
        let fail = Arc::new(Mutex::new(Vec::new()));
        let (s2, f2, stop2) = (set.clone(), fail.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((c, _)) => {
                        let (up, set, fail) = (up.clone(), s2.clone(), f2.clone());
                        std::thread::spawn(move || proxy_one(c, &up, &set, &fail));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        VarzProxy {
            url,
            set,
            fail,
            stop,
        }
    }

    pub(crate) fn set(&self, field: &str, v: Value) {
        self.set.lock().unwrap().insert(field.into(), v);
    }

    /// Stops rewriting `field`: upstream's own value passes through again.
    pub(crate) fn unset(&self, field: &str) {
        self.set.lock().unwrap().remove(field);
    }

    fn fail(&self, path: &str) {
        self.fail.lock().unwrap().push(path.into());
    }
}

impl Drop for VarzProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn proxy_one(
    mut client: TcpStream,
    up: &str,
    set: &Mutex<serde_json::Map<String, Value>>,
    fail: &Mutex<Vec<String>>,
) {
    let _ = client.set_nonblocking(false);
    let _ = client.set_read_timeout(Some(Duration::from_secs(5)));
    let mut req = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        let Ok(n) = client.read(&mut buf) else { return };
        if n == 0 {
            return;
        }
        req.extend_from_slice(&buf[..n]);
        if let Some(p) = req.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&req[..head_end]).to_string();
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    while req.len() < head_end + len {
        let Ok(n) = client.read(&mut buf) else { return };
        if n == 0 {
            break;
        }
        req.extend_from_slice(&buf[..n]);
    }
    let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
    if fail.lock().is_ok_and(|f| f.contains(&path)) {
        // Like a debugging proxy or WAF that echoes the request's headers in its error.
        let token = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("token")
                    .then(|| v.trim().to_string())
            })
            .unwrap_or_default();
        let body = serde_json::json!({
            "status": "error",
            "message": "proxy says no",
            "msg": format!("request rejected (token: {token})"),
        })
        .to_string();
        let _ = client.write_all(
            format!(
                "HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
        return;
    }
    let mut fwd = String::new();
    for l in head
        .lines()
        .filter(|l| !l.is_empty() && !l.to_ascii_lowercase().starts_with("connection:"))
    {
        fwd.push_str(l);
        fwd.push_str("\r\n");
    }
    fwd.push_str("Connection: close\r\n\r\n");
    // An upstream that is down: close without an answer.
    let Ok(mut upstream) = TcpStream::connect(up) else {
        return;
    };
    let _ = upstream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = upstream.write_all(fwd.as_bytes());
    let _ = upstream.write_all(&req[head_end..]);
    let mut resp = Vec::new();
    let _ = upstream.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp).to_string();
    let rewritten = (path == "/varz")
        .then(|| {
            let (h, body) = text.split_once("\r\n\r\n")?;
            if !h.starts_with("HTTP/1.1 200") || h.to_ascii_lowercase().contains("chunked") {
                return None;
            }
            let mut v: Value = serde_json::from_str(body).ok()?;
            for (k, val) in set.lock().ok()?.iter() {
                if val.is_null() {
                    v.as_object_mut()?.remove(k);
                } else {
                    v[k.as_str()] = val.clone();
                }
            }
            let out = v.to_string();
            Some(format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{out}",
                out.len()
            ))
        })
        .flatten();
    match rewritten {
        Some(r) => {
            let _ = client.write_all(r.as_bytes());
        }
        None => {
            let _ = client.write_all(&resp);
        }
    }
}

/// A manifest for `sim` whose node `via` is reached through `proxy`.
pub(crate) fn ws_through(sim: &Sim, via: u64, proxy: &VarzProxy, policy: &str) -> Ws {
    let ws = Ws::new(
        sim,
        &Opts {
            policy: policy.to_string(),
            ..Opts::default()
        },
    );
    let text = std::fs::read_to_string(&ws.manifest).unwrap().replace(
        &format!("api: {}\n", sim.api(via)),
        &format!("api: {}\n", proxy.url),
    );
    std::fs::write(&ws.manifest, text).unwrap();
    ws
}

/// Only 1001 is upgraded (`--nodes 1001`), so the proxied 1003 never restarts.
pub(crate) fn upgrade_1001(ws: &Ws) -> (i32, Vec<Value>, String) {
    let mut run = ws.spawn(&[&UP[..], &["--nodes", "1001"]].concat(), &[]);
    let (code, err) = run.finish(RUN_T);
    (
        code,
        run.values().into_iter().map(|(_, v)| v).collect(),
        err,
    )
}

/// A node whose counter is absurd (10^17 connections, as a broken counter shows) makes the
/// cluster-wide sum meaningless, and the ratio then always looks like ~100%: #397/#683 on
/// 1002 passes. (`lenient_count` rejects a float ≥ 1e18 but takes any integer up to
/// `u64::MAX`; the release build's sum then wraps silently, a debug build panics.)
#[test]
fn an_absurd_connection_count_on_one_node_does_not_pass_the_check() {
    let sim = sim_with_clients(1600);
    let proxy = VarzProxy::start(sim.api(1003));
    proxy.set("connections", Value::from(100_000_000_000_000_000u64));
    let ws = ws_through(&sim, 1003, &proxy, FAST_POLICY);
    ctl_ok(&sim, &["fault", "1002", "clients-stuck"]);
    let (code, lines, err) = upgrade_1001(&ws);
    let soak = of_type(&lines, "soak_finished")
        .first()
        .map_or(Value::Null, |s| s["data"]["clients"].clone());
    assert_ne!(
        code,
        0,
        "1001 passed with {} real clients of 4,800; wkctl saw {soak}\n{err}",
        sim_connections(&sim)
    );
}

/// One node without `/varz.connections` (or with a negative or non-numeric one) turns the
/// client check off for the whole cluster ("client check skipped", a warning), and
/// #397/#683 on 1002 passes under `on_shortfall: fail`. Documented ("missing `/varz` fields
/// are unknown: the client check is skipped"), but it is the one place where unknown
/// passes: the other nodes' counts alone show the loss.
#[test]
fn one_node_without_a_connection_count_does_not_turn_the_check_off() {
    let sim = sim_with_clients(1600);
    let proxy = VarzProxy::start(sim.api(1003));
    proxy.set("connections", Value::from(-1));
    let ws = ws_through(&sim, 1003, &proxy, FAST_POLICY);
    ctl_ok(&sim, &["fault", "1002", "clients-stuck"]);
    let (code, lines, err) = upgrade_1001(&ws);
    let warnings: Vec<&Value> = of_type(&lines, "warning");
    assert_ne!(
        code,
        0,
        "passed with {} of 4,800 clients; warnings: {warnings:?}\n{err}",
        sim_connections(&sim)
    );
}

/// Held: counts written as strings are read as numbers, and the check still catches
/// #397/#683 through the proxy.
#[test]
fn connection_counts_as_strings_are_counted_and_the_shortfall_is_caught() {
    let sim = sim_with_clients(1600);
    let proxy = VarzProxy::start(sim.api(1003));
    proxy.set("connections", Value::from("1600"));
    let ws = ws_through(&sim, 1003, &proxy, FAST_POLICY);
    ctl_ok(&sim, &["fault", "1002", "clients-stuck"]);
    let (code, lines, err) = upgrade_1001(&ws);
    assert_eq!(code, 1, "{err}\n{lines:#?}");
    let reason = failed_reason(&lines);
    assert!(
        reason.contains("clients did not come back") && reason.contains("4,800 before the stop"),
        "{reason}"
    );
}

/// Held: a node whose `/varz` answers (with its counters) but whose `/health` says 500 is
/// never trusted: the pre-check refuses before anything is stopped.
#[test]
fn a_node_answering_varz_with_a_failing_health_blocks_the_run() {
    let sim = sim_with_clients(100);
    let proxy = VarzProxy::start(sim.api(1003));
    let ws = ws_through(&sim, 1003, &proxy, FAST_POLICY);
    proxy.fail("/health");
    let t0 = Instant::now();
    let (code, lines, err) = upgrade_1001(&ws);
    assert_eq!(code, 1, "{err}\n{lines:#?}");
    let stops = crate::support::lifecycle(&sim)
        .into_iter()
        .filter(|(_, v, _)| v == "stop")
        .count();
    assert_eq!(stops, 0, "nothing stopped ({:?})", t0.elapsed());
}

/// Held: `upgrade` itself never runs on a manifest whose two nodes share one API: the
/// manifest is refused at load (before that, the pre-check saw 1001 answering as "1002").
#[test]
fn an_upgrade_with_two_nodes_on_one_api_is_refused_before_any_stop() {
    let sim = sim_with_clients(100);
    let ws = ws(&sim, SMOKE);
    let text = std::fs::read_to_string(&ws.manifest).unwrap().replace(
        &format!("api: {}\n", sim.api(1002)),
        &format!("api: {}\n", sim.api(1001)),
    );
    std::fs::write(&ws.manifest, text).unwrap();
    let r = ws.run(&UP, &[]);
    // Refused when the manifest loads (an input error), naming both nodes.
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("nodes 1001") && r.stderr.contains("and 1002 have the same API"),
        "{}",
        r.all()
    );
    assert!(r.stderr.contains("hint:"), "{}", r.all());
    assert!(crate::support::lifecycle(&sim).is_empty(), "{}", r.all());
}

// ---- drain hooks across a kill and `--nodes` -----------------------------------------

/// Held: killed during 1002's gate, the resumed run neither drains 1002 again nor drains
/// an upgraded node (1001 is only re-verified): every node is drained and undrained
/// exactly once, on itself, in order; never two nodes down.
#[test]
fn a_resumed_run_drains_and_undrains_each_node_exactly_once() {
    use crate::hooks::{hooks, log_line};
    let sim = crate::harness::Sim::start(crate::harness::SimOpts::default());
    let ws = ws_with_hooks(&sim, &log_line("drain"), &log_line("undrain"));
    let mut run = ws.spawn(&UP, &[]);
    run.wait_for("1002's gate", RUN_T, |v| {
        v["type"] == "step_started"
            && v["data"]["node"] == 1002
            && v["data"]["step"] == "wait_ready"
    });
    run.kill9();
    let r = ws.run(&RESUME, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let order: Vec<(String, u64)> = hooks(&sim).into_iter().map(|(k, n, _)| (k, n)).collect();
    let want: Vec<(String, u64)> = [1001, 1002, 1003]
        .into_iter()
        .flat_map(|id| [("drain".to_string(), id), ("undrain".to_string(), id)])
        .collect();
    assert_eq!(order, want);
    rollout_was_safe(&sim.events()).unwrap();
}

/// Held: `--nodes 1002` drains only 1002.
#[test]
fn nodes_limits_the_drain_hooks_to_the_selected_node() {
    use crate::hooks::{hooks, log_line};
    let sim = crate::harness::Sim::start(crate::harness::SimOpts::default());
    let ws = ws_with_hooks(&sim, &log_line("drain"), &log_line("undrain"));
    let r = ws.run(&[&UP[..], &["--nodes", "1002"]].concat(), &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let order: Vec<(String, u64)> = hooks(&sim).into_iter().map(|(k, n, _)| (k, n)).collect();
    assert_eq!(
        order,
        [("drain".to_string(), 1002), ("undrain".to_string(), 1002)]
    );
}

/// A node (or a proxy in front of it) that echoes the request's `token` header in its
/// error text: wkctl prints upstream's `msg` verbatim (`smoke`'s `answer_error`), so the
/// managerToken lands on stdout. wkctl knows the token and could scrub it from any text a
/// node hands it.
#[test]
fn a_node_echoing_the_token_in_an_error_never_gets_it_printed() {
    const TOKEN: &str = "s3cr3t-token-echoed";
    let sim = crate::harness::Sim::start(crate::harness::SimOpts {
        token: Some(TOKEN.into()),
        ..Default::default()
    });
    let proxy = VarzProxy::start(sim.api(1002));
    proxy.fail("/route?uid=wkctl-probe");
    let ws = Ws::new(
        &sim,
        &Opts {
            token_env: true,
            policy: format!("{FAST_POLICY}{SMOKE}"),
            ..Opts::default()
        },
    );
    let text = std::fs::read_to_string(&ws.manifest).unwrap().replace(
        &format!("api: {}\n", sim.api(1002)),
        &format!("api: {}\n", proxy.url),
    );
    std::fs::write(&ws.manifest, text).unwrap();
    let r = ws.run(&["smoke"], &[(crate::support::TOKEN_ENV, TOKEN)]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stdout.contains("node 1002"), "{}", r.all());
    assert!(
        !r.all().contains(TOKEN),
        "the managerToken was printed:\n{}",
        r.all()
    );
}
