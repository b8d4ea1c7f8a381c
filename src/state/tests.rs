//! Unit tests of `state.rs`.
use super::*;

#[test]
fn state_round_trips_atomically() {
    let d = tempfile::tempdir().unwrap();
    let sd = StateDir::new(d.path(), "c");
    sd.ensure_writable().unwrap();
    assert!(sd.load().unwrap().is_none());
    let st = RunState {
        format_version: STATE_FORMAT,
        cluster: "c".into(),
        to: "v2.1.2-20250120".into(),
        plan_digest: "p".into(),
        manifest_digest: "m".into(),
        playbook_digest: "b".into(),
        playbook: "sim".into(),
        status: RunStatus::Running,
        started_at_ms: 1,
        updated_at_ms: 1,
        nodes: vec![NodeRun::new(1001, Some("v2.0.10-20241221".into()))],
        plan_file: None,
        only_nodes: Vec::new(),
        kind: PlanKind::Upgrade,
    };
    sd.save(&st).unwrap();
    let back = sd.load().unwrap().unwrap();
    assert_eq!(back.nodes, st.nodes);
    assert_eq!(
        fs::read_dir(&sd.root).unwrap().count(),
        1,
        "no temp files left"
    );
    let archived = sd.archive().unwrap();
    assert!(archived.exists() && sd.load().unwrap().is_none());
}

#[test]
fn lock_is_exclusive_and_stale_locks_need_resume_or_break() {
    let d = tempfile::tempdir().unwrap();
    let sd = StateDir::new(d.path(), "c");
    sd.ensure_writable().unwrap();
    let g = acquire(&sd, Takeover::Never).unwrap();
    let e = acquire(&sd, Takeover::Stale).unwrap_err();
    assert!(
        e.message
            .contains("another wkctl run holds the cluster lock"),
        "{}",
        e.message
    );
    drop(g);
    assert!(!sd.lock_path().exists());
    // a lock left by a dead process on this host
    let dead = LockOwner {
        state_dir: None,
        pid: 999_999_999,
        host: hostname(),
        started_at_ms: now_ms(),
        boot_id: None,
        proc_start: None,
    };
    fs::write(sd.lock_path(), serde_json::to_vec(&dead).unwrap()).unwrap();
    let e = acquire(&sd, Takeover::Never).unwrap_err();
    assert!(e.message.contains("gone") && e.hint.unwrap().contains("--resume"));
    let g = acquire(&sd, Takeover::Stale).unwrap();
    assert_eq!(g.took_over.as_ref().map(|o| o.pid), Some(999_999_999));
    drop(g);
    // another host's lock is never stale
    let foreign = LockOwner {
        state_dir: None,
        pid: 1,
        host: "elsewhere".into(),
        started_at_ms: now_ms(),
        boot_id: None,
        proc_start: None,
    };
    fs::write(sd.lock_path(), serde_json::to_vec(&foreign).unwrap()).unwrap();
    assert!(acquire(&sd, Takeover::Stale).is_err());
    assert!(acquire(&sd, Takeover::Force).is_ok());
}

#[test]
fn unwritable_state_dir_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("not-a-dir");
    fs::write(&file, "x").unwrap();
    let sd = StateDir::new(&file, "c");
    assert!(
        sd.ensure_writable()
            .unwrap_err()
            .message
            .contains("not writable")
    );
}

/// The client baseline (issue #18) round-trips, and a state file written before it
/// existed still loads (no `clients`: the check says it has no baseline).
#[test]
fn the_client_baseline_is_saved_and_older_state_files_still_load() {
    let mut n = NodeRun::new(1001, None);
    n.clients = Some(ClientBaseline {
        connections: [(1001, 1600), (1002, 1600), (1003, 1600)].into(),
        growing: Some(true),
        slow_clients: Some(0),
        retry_queue: None,
        at_ms: 42,
    });
    let json = serde_json::to_string(&n).unwrap();
    assert!(
        json.contains(r#""connections":{"1001":1600,"1002":1600,"1003":1600}"#),
        "{json}"
    );
    let back: NodeRun = serde_json::from_str(&json).unwrap();
    assert_eq!(back, n);
    let old = r#"{"id":1001,"from":null,"status":"in_progress","step":"wait_ready","done":["check_settled","stop"],"baseline":{"version":"2.0.10","uptime_s":5.0,"at_ms":1},"started_at_ms":1,"finished_at_ms":null,"error":null}"#;
    let old: NodeRun = serde_json::from_str(old).unwrap();
    assert_eq!(old.clients, None);
    let partial: ClientBaseline = serde_json::from_str(r#"{"connections":{"1001":3}}"#).unwrap();
    assert_eq!((partial.growing, partial.at_ms), (None, 0));
}

/// A state file written before `wkctl restart` existed has no `kind`: it is an upgrade.
/// A restart's state says so, and its nodes keep when their stop was issued.
#[test]
fn a_state_file_without_a_kind_is_an_upgrade() {
    let old = r#"{"format_version":1,"cluster":"c","to":"v2.1.2-20250120","plan_digest":"p",
        "manifest_digest":"m","playbook_digest":"b","playbook":"sim","status":"failed",
        "started_at_ms":1,"updated_at_ms":2,"nodes":[{"id":1001,"from":null,"status":"pending",
        "step":null,"done":[],"baseline":null,"started_at_ms":null,"finished_at_ms":null,
        "error":null}]}"#;
    let st: RunState = serde_json::from_str(old).unwrap();
    assert_eq!(st.kind, PlanKind::Upgrade);
    assert_eq!(st.nodes[0].stop_issued_at_ms, None);
    let mut restart = st.clone();
    restart.kind = PlanKind::Restart;
    restart.nodes[0].stop_issued_at_ms = Some(5);
    let text = serde_json::to_string(&restart).unwrap();
    assert!(text.contains(r#""kind":"restart""#), "{text}");
    let back: RunState = serde_json::from_str(&text).unwrap();
    assert_eq!(back.kind, PlanKind::Restart);
    assert_eq!(back.nodes[0].stop_issued_at_ms, Some(5));
}

/// The lock keys of a node are its addresses as this machine reaches them: `localhost`,
/// `127.0.0.1`, a trailing `/`, another case and this machine's own interface address all
/// share `local:PORT`; another port, another path or a remote address do not.
#[test]
fn lock_keys_name_a_node_however_its_address_is_spelled() {
    let keys = |apis: &[&str]| cluster_lock_keys(apis);
    let shares = |a: &[&str], b: &[&str]| {
        let b = keys(b);
        keys(a).iter().any(|k| b.contains(k))
    };
    assert!(keys(&["http://127.0.0.1:5001"]).contains(&"local:5001".to_string()));
    // A host named `local` is not this machine (each kind of key has its own prefix).
    assert!(!shares(&["http://local:5001"], &["http://127.0.0.1:5001"]));
    assert!(shares(
        &["http://127.0.0.1:5001"],
        &["http://localhost:5001/"]
    ));
    assert!(shares(
        &["http://127.0.0.1:5001"],
        &["HTTP://LocalHost:5001"]
    ));
    assert!(shares(&["http://[::1]:5001"], &["http://localhost:5001"]));
    assert!(shares(&["http://0.0.0.0:5001"], &["http://127.0.0.1:5001"]));
    assert!(shares(&["http://127.0.0.1:80"], &["http://localhost"]));
    assert!(!shares(
        &["http://127.0.0.1:5001"],
        &["http://127.0.0.1:5002"]
    ));
    assert!(!shares(
        &["http://127.0.0.1:5001/a"],
        &["http://127.0.0.1:5001/b"]
    ));
    // 192.0.2.0/24 is TEST-NET-1: never this machine's.
    assert_eq!(
        keys(&["http://192.0.2.7:5001/"]),
        ["addr:192.0.2.7:5001", "name:192.0.2.7:5001"]
    );
    assert!(!shares(
        &["http://192.0.2.7:5001"],
        &["http://127.0.0.1:5001"]
    ));
    // This machine's outbound address (no packet is sent by `connect` on UDP), if any.
    let own = std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("192.0.2.1:9").and_then(|()| s.local_addr()));
    if let Some(own) = own.ok().map(|a| a.ip()).filter(|ip| !ip.is_unspecified()) {
        assert!(
            shares(&[&format!("http://{own}:5001")], &["http://localhost:5001"]),
            "{own}"
        );
    }
    // Unparsable or unresolvable: keyed by their text, never a panic.
    assert_eq!(keys(&[" not a url/ "]), ["text:not a url"]);
    assert_eq!(
        keys(&["http://wk-1.invalid:5001"]),
        ["name:wk-1.invalid:5001"]
    );
    // Sorted, no repeats, whatever the order of the nodes.
    let k = keys(&[
        "http://127.0.0.1:5002",
        "http://127.0.0.1:5001",
        "http://127.0.0.1:5001",
    ]);
    assert_eq!(
        k,
        [
            "local:5001",
            "local:5002",
            "name:127.0.0.1:5001",
            "name:127.0.0.1:5002"
        ]
    );
}

/// Two runs whose nodes overlap: the second is refused at the first lock they share and
/// keeps none of the locks it took before it; the first's are released on drop.
#[test]
fn cluster_locks_are_all_or_nothing() {
    let base = tempfile::tempdir().unwrap();
    let dirs = |keys: &[&str]| -> Vec<StateDir> {
        keys.iter()
            .map(|k| {
                let root = base.path().join(lock_dir_name(k));
                fs::create_dir_all(&root).unwrap();
                StateDir { root }
            })
            .collect()
    };
    let me = LockOwner::me();
    let a = acquire_cluster(&dirs(&["b", "c"]), Takeover::Never, &me).unwrap();
    let e = acquire_cluster(&dirs(&["a", "c", "d"]), Takeover::Never, &me).unwrap_err();
    assert!(
        e.to_string()
            .contains("another wkctl run holds the cluster lock"),
        "{e}"
    );
    assert!(
        !dirs(&["a"])[0].lock_path().exists(),
        "the refused run kept `a`"
    );
    assert!(!dirs(&["d"])[0].lock_path().exists());
    assert!(live_owner(&dirs(&["x", "c"])).is_some());
    drop(a);
    assert!(live_owner(&dirs(&["b", "c"])).is_none(), "released on drop");
    let again = acquire_cluster(&dirs(&["a", "c", "d"]), Takeover::Never, &me).unwrap();
    assert!(again.took_over.is_empty());
}

/// A refused acquisition changes no lock file: a stale lock met on the way stays, naming
/// its gone run, when a later key is held by a live one.
#[test]
fn a_refused_cluster_acquisition_keeps_the_stale_lock_it_met() {
    let base = tempfile::tempdir().unwrap();
    let dir = |k: &str| {
        let root = base.path().join(lock_dir_name(k));
        fs::create_dir_all(&root).unwrap();
        StateDir { root }
    };
    let gone = LockOwner {
        pid: 999_999_999,
        ..LockOwner::me()
    };
    fs::write(dir("a").lock_path(), serde_json::to_vec(&gone).unwrap()).unwrap();
    let live = acquire(&dir("b"), Takeover::Never).unwrap();
    let e = acquire_cluster(&[dir("a"), dir("b")], Takeover::Stale, &LockOwner::me()).unwrap_err();
    assert!(e.message.contains("another wkctl run holds"), "{e}");
    assert_eq!(
        lock_owner(&dir("a")),
        Some(gone.clone()),
        "the stale lock is kept"
    );
    drop(live);
    let g = acquire_cluster(&[dir("a"), dir("b")], Takeover::Stale, &LockOwner::me()).unwrap();
    assert_eq!(g.took_over, [gone]);
}

/// A lock is the process that wrote it: the same pid alive under another start time or
/// another boot (a pid reused after a crash or a reboot) is stale; the very process, or a
/// lock without those marks (an older wkctl), is judged by its pid alone.
#[test]
fn a_reused_pid_does_not_keep_a_gone_runs_lock_live() {
    let me = LockOwner::me();
    if me.proc_start.is_none() || me.boot_id.is_none() {
        return; // no `/proc` here: the pid alone decides, as before
    }
    assert!(!me.is_stale(), "this very process");
    let start = me.proc_start.unwrap();
    let reused = LockOwner {
        proc_start: Some(start + 1),
        ..me.clone()
    };
    assert!(reused.is_stale(), "same pid, another start time");
    let other_boot = LockOwner {
        boot_id: Some("00000000-0000-0000-0000-000000000000".into()),
        ..me.clone()
    };
    assert!(other_boot.is_stale(), "written in another boot");
    let unmarked = LockOwner {
        boot_id: None,
        proc_start: None,
        ..me.clone()
    };
    assert!(!unmarked.is_stale(), "an older lock: the live pid keeps it");
    let elsewhere = LockOwner {
        host: "elsewhere".into(),
        ..reused
    };
    assert!(!elsewhere.is_stale(), "another host's lock is never stale");
    // The marks round-trip; an older lock file without them still reads.
    let back: LockOwner = serde_json::from_slice(&serde_json::to_vec(&me).unwrap()).unwrap();
    assert_eq!(back, me);
    let old: LockOwner = serde_json::from_str(r#"{"pid":1,"host":"h","started_at_ms":5}"#).unwrap();
    assert_eq!((old.boot_id, old.proc_start), (None, None));
}
