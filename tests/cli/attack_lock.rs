//! Attacks on the per-node cluster locks (commit 65122b8): `state::cluster_lock_keys`
//! (one key per node address as this machine reaches it), `state::acquire_cluster` (all
//! or nothing, in sorted order) and `Context::ensure_no_live_run`. Unit-level attacks go
//! through the public `wkctl::state` API; the rest run the real `wkctl` against `wksim`,
//! judged on the simulator's event log.

use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use wkctl::state::{
    LockOwner, StateDir, Takeover, acquire_cluster, cluster_lock_keys, lock_dir_name, lock_owner,
};

use crate::attack_resume_back::{
    LOCKED, NEW, RESUME, RUN_T, UP, all_on, dead_pid, finish, forge_lock, held_ws, killed_in,
    locks_of, parked, second_run_is_refused_while_a_is_live, touch,
};
use crate::harness::{Sim, SimOpts, rollout_was_safe};
use crate::matrix::touched_after;
use crate::support::{Opts, Ws, now_ms};

fn keys(apis: &[&str]) -> Vec<String> {
    cluster_lock_keys(apis)
}

fn shares(a: &[&str], b: &[&str]) -> bool {
    let kb = keys(b);
    keys(a).iter().any(|k| kb.contains(k))
}

/// The lock file of one key under `base`.
fn key_lock(base: &Path, key: &str) -> PathBuf {
    base.join(lock_dir_name(key)).join("lock")
}

/// The lock keys of `sim`'s nodes (sorted), as the manifest of [`Ws::new`] spells them.
fn sim_keys(sim: &Sim) -> Vec<String> {
    let apis: Vec<&str> = sim.nodes.iter().map(|n| n.api.as_str()).collect();
    keys(&apis)
}

/// A process that stays alive (a live lock owner for a forged lock); killed on drop.
struct Sleeper(std::process::Child);

impl Sleeper {
    fn new() -> Sleeper {
        Sleeper(
            std::process::Command::new("sleep")
                .arg("300")
                .spawn()
                .unwrap(),
        )
    }
    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// ---- the keys ----

/// Every spelling of one local node the URL parser and the resolver agree on shares a
/// key with `http://127.0.0.1:P`: shorthand and numeric IPv4, IPv4-mapped IPv6, `[::1]`,
/// the unspecified address, upper case, userinfo, a trailing `/`, a query string;
/// `http://h` and `http://h:80` are one port.
#[test]
fn every_spelling_of_one_local_node_shares_a_key() {
    let base = "http://127.0.0.1:5701";
    for alias in [
        "http://127.1:5701",
        "http://0x7f.0.0.1:5701",
        "http://2130706433:5701",
        "http://[::ffff:127.0.0.1]:5701",
        "http://[::ffff:7f00:1]:5701",
        "http://[::1]:5701",
        "http://0.0.0.0:5701",
        "http://[::]:5701",
        "HTTP://LOCALHOST:5701",
        "http://LocalHost:5701/",
        "http://u:p@127.0.0.1:5701",
        "https://127.0.0.1:5701",
        "  http://127.0.0.1:5701//  ",
        "http://127.0.0.1:5701?x=1",
        "http://%31%32%37.0.0.1:5701",
    ] {
        assert!(shares(&[base], &[alias]), "{alias}: {:?}", keys(&[alias]));
    }
    assert!(shares(&["http://127.0.0.1"], &["http://localhost:80"]));
    assert!(shares(&["https://127.0.0.1"], &["http://127.0.0.1:443"]));
    // Other ports and other machines are other nodes.
    assert!(!shares(&[base], &["http://127.0.0.1:5702"]));
    assert!(!shares(
        &["http://198.51.100.7:5001"],
        &["http://198.51.100.8:5001"]
    ));
    assert!(!shares(
        &["http://198.51.100.7:5001"],
        &["http://127.0.0.1:5001"]
    ));
}

/// Odd URLs (no host, no port, bad brackets, out-of-range ports, other schemes, a 300-label
/// name, IDN, NUL) neither panic nor hang: each gives at least one key, quickly.
#[test]
fn odd_urls_neither_panic_nor_hang() {
    let long = format!("http://{}x.invalid:5001", "a.".repeat(300));
    let t = Instant::now();
    for odd in [
        "",
        " ",
        "/",
        "http://",
        "http://:5001",
        "http://[::1:5001",
        "http://127.0.0.1:99999",
        "http://127.0.0.1:0",
        "file:///etc/passwd",
        "mailto:a@b",
        "unix:/run/wk.sock",
        "http://bücher.invalid:5001",
        "http://a\0b:5001",
        "http://[fe80::1%25eth0]:5001",
        long.as_str(),
    ] {
        assert!(!keys(&[odd]).is_empty(), "{odd:?}");
    }
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
}

/// A node host literally named `local` (a short name the resolver does not know here)
/// is keyed `local:5001`, the very key of every address of THIS machine on port 5001:
/// a run against a remote cluster whose nodes are `local`, `wk-b`, ... is refused while
/// an unrelated local cluster on port 5001 runs. The literal `host:port` keys and the
/// synthetic `local:port` keys shared one namespace (`state::lock::endpoint_keys`). Was a
/// hole (fixed): each kind of key has its own prefix (`name:`, `addr:`, `local:`).
#[test]
fn a_host_named_local_is_not_this_machine() {
    assert!(!shares(&["http://local:5001"], &["http://127.0.0.1:5001"]));
}

// ---- acquiring several keys ----

/// Lock dirs for `keys` under `base`, created, in the given order.
fn dirs(base: &Path, keys: &[&str]) -> Vec<StateDir> {
    keys.iter()
        .map(|k| {
            let root = base.join(lock_dir_name(k));
            std::fs::create_dir_all(&root).unwrap();
            StateDir { root }
        })
        .collect()
}

/// A run that is gone holds key `a` (stale), a live run holds key `b`. `--resume` (a
/// stale takeover) of a run whose keys are `a` and `b` is refused at `b`, rightly, but the
/// stale lock on `a` it took over on the way is deleted: the trace of the gone run (pid,
/// its state directory, "continue it with --resume") is lost, and a later plain
/// `upgrade` from any directory is no longer told about it. Was a hole (fixed). The cause was:
/// `state::lock::acquire_cluster` takes each key with `acquire_as`, which renames the
/// stale lock away and deletes it before the next key is tried; on a later refusal the
/// guards dropped remove this run's own lock, not restore the stale one. Fixed as suggested: check every
/// key first (all free or stale-and-allowed) and take over only once all can be taken,
/// or put the judged owner back when a later key refuses.
#[test]
fn a_refused_acquisition_keeps_the_stale_lock_it_met() {
    let base = tempfile::tempdir().unwrap();
    let d = dirs(base.path(), &["a", "b"]);
    let gone = dead_pid();
    let live = Sleeper::new();
    forge_lock(&d[0].lock_path(), gone, Some(Path::new("/srv/a/.wkctl/t")));
    forge_lock(&d[1].lock_path(), live.pid(), None);
    let e = acquire_cluster(&d, Takeover::Stale, &LockOwner::me()).unwrap_err();
    assert!(e.to_string().contains(LOCKED), "{e}");
    assert_eq!(lock_owner(&d[1]).map(|o| o.pid), Some(live.pid()));
    assert_eq!(
        lock_owner(&d[0]).map(|o| o.pid),
        Some(gone),
        "the gone run's lock on `a` was taken and thrown away by a refused run"
    );
}

/// A live run holds only the LAST key of the cluster (a run whose other keys are another
/// cluster's), a gone run the first: `status` names the live one, and a plain `upgrade`
/// and `--resume` from another directory are refused naming it, touch nothing and leave
/// both lock files as they were.
#[test]
fn a_live_lock_on_any_key_is_named_and_keeps_every_run_out() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    let k = sim_keys(&sim);
    let live = Sleeper::new();
    let (first, last) = (
        key_lock(&locks_of(&ws), &k[0]),
        key_lock(&locks_of(&ws), &k[k.len() - 1]),
    );
    forge_lock(&first, dead_pid(), Some(Path::new("/srv/a/.wkctl/t")));
    forge_lock(&last, live.pid(), None);
    let before = (
        std::fs::read(&first).unwrap(),
        std::fs::read(&last).unwrap(),
    );
    let r = ws.run(&["status"], &[]);
    assert!(
        r.all().contains(&format!("pid {} on host", live.pid())),
        "{}",
        r.all()
    );
    let t0 = now_ms();
    for args in [&UP[..], &RESUME, &["restart", "--yes", "--json"]] {
        let r = ws.run(args, &[]);
        assert_eq!(r.code, 1, "{args:?}: {}", r.all());
        assert!(
            r.all()
                .contains(&format!("{LOCKED} (pid {} on host", live.pid())),
            "{args:?}: {}",
            r.all()
        );
        assert!(!ws.state_file().exists(), "{args:?}");
    }
    assert!(touched_after(&sim, t0).is_empty());
    assert_eq!(
        (
            std::fs::read(&first).unwrap(),
            std::fs::read(&last).unwrap()
        ),
        before
    );
}

// ---- locks left behind ----

/// A run killed after taking its locks but before its first state save (in the live
/// check, at the confirmation, or between two of its cluster keys: forged here as its
/// state directory's lock and the first cluster key, its pid gone, no `state.json`). It
/// changed nothing, so nothing should need `--break-lock` (which also takes LIVE locks).
/// What happens: a plain `upgrade` is refused "locked by a run that is gone", hint "its
/// state is saved: continue it with `wkctl upgrade --resume`" (there is none), and that `--resume` is refused "no unfinished run to
/// resume": a dead end. Was a hole (fixed). The cause was: `Flow::take_locks` (src/commands/upgrade.rs) takes the locks
/// with `Takeover::Never` for a plain run, whether or not the gone owner left a run to
/// resume, and `scope::Scope::resolve` refuses `--resume` without a state before the
/// locks are looked at. Fixed as suggested: a plain run may take over a stale lock whose owner's
/// `state_dir` holds no unfinished run (or `--resume` with nothing to resume may release
/// the stale locks of this directory).
#[test]
fn a_run_killed_before_its_first_state_save_does_not_need_break_lock() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    let own = ws.state_base().join("t");
    let gone = dead_pid();
    forge_lock(&own.join("lock"), gone, None);
    forge_lock(
        &key_lock(&locks_of(&ws), &sim_keys(&sim)[0]),
        gone,
        Some(&own),
    );
    let plain = ws.run(&UP, &[]);
    let resumed = (plain.code != 0).then(|| ws.run(&RESUME, &[]));
    assert!(
        plain.code == 0 || resumed.as_ref().is_some_and(|r| r.code == 0),
        "plain: {}\n--resume: {}",
        plain.all(),
        resumed.map(|r| r.all()).unwrap_or_default()
    );
    all_on(&sim, NEW);
}

/// The lock of a run that is gone, its pid since reused by an unrelated process (after
/// a reboot, a crashed host's pids come back as other daemons): the lock was written a day
/// before that process started, so it cannot be its owner. Every run is still refused
/// "another wkctl run holds the cluster lock (pid N ...)", `--resume` too, leaving only
/// `--break-lock`. Was a hole (fixed): `LockOwner::is_stale` (src/state/lock.rs) checked
/// only that the pid exists; a lock now records its writer's boot id and process start
/// time (`/proc/self/stat` field 22), and is stale when the pid's differ. (A lock
/// without them, from an older wkctl, is still judged by its pid alone.) The gone run left
/// nothing to resume, so a plain run takes the lock over.
#[test]
fn a_reused_pid_does_not_keep_a_gone_runs_lock_live() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    let other = Sleeper::new();
    let lock = key_lock(&locks_of(&ws), &sim_keys(&sim)[0]);
    // The gone run's state directory, holding its own lock and no run.
    let gone = tempfile::tempdir().unwrap();
    forge_lock(&gone.path().join("lock"), other.pid(), None);
    forge_lock(&lock, other.pid(), Some(gone.path()));
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&lock).unwrap()).unwrap();
    v["started_at_ms"] = (u64::try_from(now_ms()).unwrap() - 86_400_000).into();
    // As wkctl writes it since the fix: the writer's boot and process start time (a start
    // of 1 clock tick after boot is not the sleeper's).
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    v["boot_id"] = boot.trim().into();
    v["proc_start"] = 1.into();
    std::fs::write(&lock, v.to_string()).unwrap();
    let r = ws.run(&UP, &[]);
    assert!(!r.all().contains(LOCKED), "{}", r.all());
    rollout_was_safe(&sim.events()).unwrap();
}

// ---- the same nodes under addresses that do not resolve alike ----

/// Rewrites each node's `api` in `ws`'s manifest as `alias` spells it.
pub(crate) fn respell(sim: &Sim, ws: &Ws, alias: impl Fn(&str) -> String) {
    let mut text = std::fs::read_to_string(&ws.manifest).unwrap();
    for n in &sim.nodes {
        let was = format!("api: {}\n", n.api);
        assert!(text.contains(&was), "{text}");
        text = text.replace(&was, &format!("api: {}\n", alias(&n.api)));
    }
    std::fs::write(&ws.manifest, text).unwrap();
}

/// A TCP tunnel to `to` (`host:port`) on a port of its own, as `ssh -L 15001:node:5001`
/// or `kubectl port-forward` give: its base URL. Serves until the test process ends.
pub(crate) fn tunnel(to: &str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let to = to.to_string();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(node) = TcpStream::connect(&to) else {
                continue;
            };
            let pairs = [
                (client.try_clone().unwrap(), node.try_clone().unwrap()),
                (node, client),
            ];
            for (mut from, mut into) in pairs {
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from, &mut into);
                    let _ = into.shutdown(Shutdown::Write);
                });
            }
        }
    });
    format!("http://127.0.0.1:{port}")
}

/// Run A (`http://127.0.0.1:P`) is live, its stop of 1001 issued but not landed. Run B,
/// another directory, manifest `u`, reaches the SAME nodes through tunnels (an operator
/// on a jump host: `http://127.0.0.1:15001` -> node:5001) and runs `--nodes 1003`. Its keys
/// (`127.0.0.1:Q`, `local:Q`) share nothing with A's (`local:P`), its pre-check sees a
/// settled cluster (A's stop has not landed), and it stops and upgrades 1003 while A's
/// stop of 1001 is under way: two runs proceed, two nodes down as soon as that lands.
/// Was a hole (fixed). The cause was: `state::cluster_lock_keys` identifies a node by the address this machine dials,
/// and a tunnel, proxy, NAT or load balancer is another address for the same node. Fixed as suggested: once
/// the cluster answers (`observe::cluster`, before any step), also take a lock keyed by
/// what the cluster says about itself, the same through any route: each member's node id
/// with its cluster (raft) address from `/cluster/nodes`, or the cluster's own id.
#[test]
fn the_same_nodes_through_a_tunnel_are_the_same_cluster() {
    let sim = Sim::start(SimOpts::default());
    let a = held_ws(&sim, "60s", "30s");
    let b = Ws::new(
        &sim,
        &Opts {
            name: "u",
            ..Opts::default()
        },
    );
    respell(&sim, &b, |api| {
        let via = tunnel(api.trim_start_matches("http://"));
        assert!(!shares(&[api], &[&via]), "{via}");
        via
    });
    second_run_is_refused_while_a_is_live(&sim, &a, &b, "the same nodes through tunnels");
}

// ---- races and takeovers ----

/// Two full upgrades started at the same instant from two directories, one manifest
/// spelling the nodes `http://127.0.0.1:P`, the other `http://[::ffff:127.0.0.1]:P/`:
/// whatever the interleaving of their key acquisitions, every node is stopped once and
/// never two at a time, and at least one of them finishes the upgrade.
#[test]
fn two_runs_started_at_once_never_both_proceed() {
    let sim = Sim::start(SimOpts::default());
    let a = Ws::new(&sim, &Opts::default());
    let b = Ws::new(
        &sim,
        &Opts {
            name: "u",
            ..Opts::default()
        },
    );
    respell(&sim, &b, |api| {
        format!("{}/", api.replace("127.0.0.1", "[::ffff:127.0.0.1]"))
    });
    let locks = locks_of(&a).display().to_string();
    let env = [("WKCTL_LOCK_DIR", locks.as_str())];
    let (mut ra, mut rb) = (a.spawn(&UP, &env), b.spawn(&UP, &env));
    let ((ca, ea), (cb, eb)) = (finish(&mut ra), finish(&mut rb));
    rollout_was_safe(&sim.events()).unwrap();
    for id in [1001, 1002, 1003] {
        let stops = touched_after(&sim, 0)
            .iter()
            .filter(|(v, n)| v == "stop" && *n == id)
            .count();
        assert_eq!(stops, 1, "node {id}\nA: {ea}\nB: {eb}");
    }
    assert!(ca == 0 || cb == 0, "A {ca}: {ea}\nB {cb}: {eb}");
    all_on(&sim, NEW);
}

/// Run B (directory b) upgraded 1001 and was killed in 1002's stop (cancelled: all
/// serve), leaving an unfinished run. Run A (directory a) was then started with
/// `--break-lock --nodes 1003`, stopped 1003 and was killed in its held `start`: 1003 is
/// down, the locks name A, gone. B's `upgrade --resume` takes over A's stale locks
/// (nothing checks that they name another state directory) but must not stop 1002 while
/// 1003 is down.
#[test]
fn a_resume_from_another_directory_never_stops_a_second_node() {
    let sim = Sim::start(SimOpts::default());
    let b = held_ws(&sim, "5s", "3s");
    let a = held_ws(&sim, "60s", "30s");
    killed_in(&sim, &b, &UP, "stop", false);
    let locks = locks_of(&b).display().to_string();
    let env = [("WKCTL_LOCK_DIR", locks.as_str())];
    touch(&sim, "hold-start-1003");
    let mut up: Vec<&str> = UP.to_vec();
    up.extend(["--break-lock", "--nodes", "1003"]);
    let mut run = a.spawn(&up, &env);
    run.wait_for("1003's start", RUN_T, |v| {
        v["type"] == "step_started" && v["data"]["node"] == 1003 && v["data"]["step"] == "start"
    });
    parked(&sim, "hold-start-1003");
    run.kill9();
    assert_eq!(sim.node_state(1003), "stopped");
    let t0 = now_ms();
    let r = b.run(&RESUME, &[]);
    let touched = touched_after(&sim, t0);
    touch(&sim, "go-start");
    assert!(
        !touched.iter().any(|(v, _)| v == "stop"),
        "a second node stopped while 1003 was down: {touched:?}\n{}",
        r.all()
    );
    assert_ne!(r.code, 0, "{}", r.all());
    // (It names only the first lock taken over, its own directory's: not that A's, a run
    // of another directory with a node down, were taken too.)
    let all = r.all();
    assert!(all.contains("took over the lock of pid"), "{all}");
    assert!(all.contains("node 1003 at"), "refused by the check: {all}");
    rollout_was_safe(&sim.events()).unwrap();
}
