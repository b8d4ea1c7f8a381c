//! Issue 13, the points not covered by `operator.rs`: each reproduced against `wksim`.

use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

use crate::harness::{Sim, SimOpts, rollout_was_safe};
use crate::support::{Opts, Ws, ctl_ok, lifecycle, node_state_of, varz_version};

const RUN_T: Duration = Duration::from_secs(90);
const UP: [&str; 5] = ["upgrade", "--to", "v2.1.2", "--yes", "--json"];

fn stops(sim: &Sim) -> Vec<u64> {
    lifecycle(sim)
        .into_iter()
        .filter(|(_, v, _)| v == "stop")
        .map(|(_, _, n)| n)
        .collect()
}

fn last_json(stdout: &str) -> Value {
    let line = stdout.lines().rev().find(|l| !l.trim().is_empty());
    serde_json::from_str(line.unwrap_or_default())
        .unwrap_or_else(|e| panic!("last stdout line is not JSON ({e}):\n{stdout}"))
}

fn sigint(pid: u32) {
    kill(Pid::from_raw(i32::try_from(pid).unwrap()), Signal::SIGINT).unwrap();
}

/// The sim playbook as a file next to the manifest, with `edit` applied to its text.
fn with_playbook(ws: &Ws, edit: impl Fn(String) -> String) {
    let builtin =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks/sim.yaml"))
            .unwrap();
    std::fs::write(ws.dir.path().join("pb.yaml"), edit(builtin)).unwrap();
    let m = std::fs::read_to_string(&ws.manifest).unwrap();
    std::fs::write(
        &ws.manifest,
        m.replace("playbook: sim\n", "playbook: ./pb.yaml\n"),
    )
    .unwrap();
}

fn has_script() -> bool {
    if Command::new("script").arg("--version").output().is_ok() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "`script` (util-linux) is needed in CI"
    );
    false
}

/// 13.14: with `--json`, an error is one JSON object on stdout with the same exit code:
/// a bad manifest, a bad flag, and `upgrade --json` without `--yes` (after the check,
/// nothing touched).
#[test]
fn json_errors_are_objects_on_stdout_with_the_same_exit_code() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());

    let r = ws.run(&["upgrade", "--to", "v2.1.2", "--json"], &[]);
    assert_eq!(r.code, 2, "{}", r.all());
    let lines = r.lines();
    assert_eq!(lines[0]["type"], "check_finished", "{}", r.all());
    let e = lines.last().unwrap();
    assert_eq!(e["type"], "error", "{}", r.all());
    assert_eq!(e["data"]["kind"], "input");
    assert_eq!(e["data"]["exit_code"], 2);
    assert!(
        e["data"]["message"]
            .as_str()
            .unwrap()
            .contains("without confirmation"),
        "{e}"
    );
    assert!(e["data"]["hint"].as_str().unwrap().contains("--yes"), "{e}");
    assert!(stops(&sim).is_empty(), "nothing touched");

    let r = ws.run(&["status", "--json", "--bogus"], &[]);
    assert_eq!(r.code, 2, "{}", r.all());
    let e = last_json(&r.stdout);
    assert_eq!(
        (&e["type"], &e["data"]["kind"]),
        (&"error".into(), &"input".into())
    );
    assert!(
        e["data"]["message"].as_str().unwrap().contains("--bogus"),
        "{e}"
    );

    std::fs::write(&ws.manifest, "name: [unclosed\n").unwrap();
    let r = ws.run(&["check", "--to", "v2.1.2", "--json"], &[]);
    assert_eq!(r.code, 2, "{}", r.all());
    let e = last_json(&r.stdout);
    assert_eq!(e["type"], "error", "{}", r.all());
    assert_eq!(e["data"]["exit_code"], 2);
    assert!(!e["data"]["message"].as_str().unwrap().is_empty());
    assert!(r.stderr.contains("error:"), "stderr keeps the human text");
}

/// 13.16: `--nodes` limits a run to some nodes, in the plan's order (1001 before 1003
/// although given the other way round) with the same gates; the others are skipped with
/// the reason; an unknown id is a clear input error.
#[test]
fn nodes_limits_a_run_in_the_same_order_with_the_same_gates() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    let bad = ws.run(
        &["upgrade", "--to", "v2.1.2", "--yes", "--nodes", "1001,1009"],
        &[],
    );
    assert_eq!(bad.code, 2, "{}", bad.all());
    assert!(
        bad.stderr.contains("node 1009 is not in the manifest")
            && bad.stderr.contains("1001, 1002, 1003"),
        "{}",
        bad.all()
    );
    let mut args = UP.to_vec();
    args.extend(["--nodes", "1003,1001"]);
    let r = ws.run(&args, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(stops(&sim), [1001, 1003]);
    let lines = r.lines();
    let skipped = lines
        .iter()
        .find(|l| l["type"] == "node_skipped" && l["data"]["node"] == 1002)
        .expect("1002 skipped");
    assert_eq!(skipped["data"]["reason"], "not in `--nodes`");
    for id in [1001, 1003] {
        assert!(
            lines.iter().any(|l| l["type"] == "step_started"
                && l["data"]["node"] == id
                && l["data"]["step"] == "check_settled"),
            "node {id} gets the pre-stop check"
        );
    }
    assert_eq!(varz_version(&sim, 1002, None), "v2.0.10-20241221");
    assert_eq!(varz_version(&sim, 1003, None), "v2.1.2-20250120");
    rollout_was_safe(&sim.events()).unwrap();
}

/// 13.18 and 13.10: a failed node is linked to `wkctl doctor` and to rollback; `wkctl
/// rollback --node N` is refused while another node is down (nothing touched), then rolls
/// the node back through the playbook's `rollback` and the gate on the old version; a
/// node that did not fail is refused.
#[test]
fn rollback_after_the_fact_takes_the_failed_node_back_only_when_safe() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::with_node_timeout(&sim, "4s");
    ctl_ok(&sim, &["fault", "1002", "wrong-version"]);
    let r = ws.run(
        &["upgrade", "--to", "v2.1.2", "--yes", "--no-progress"],
        &[],
    );
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stdout.contains("wkctl doctor")
            && r.stdout.contains("wkctl rollback --node 1002")
            && r.stdout.contains("--resume"),
        "{}",
        r.all()
    );
    assert_eq!(node_state_of(&ws, 1002)["status"], "failed");

    let not_failed = ws.run(&["rollback", "--node", "1001", "--yes"], &[]);
    assert_eq!(not_failed.code, 1, "{}", not_failed.all());
    assert!(
        not_failed.stderr.contains("node 1001 is ready"),
        "{}",
        not_failed.all()
    );

    // Another node down: refused, nothing restarted.
    ctl_ok(&sim, &["stop", "1003"]);
    let before = lifecycle(&sim).len();
    let refused = ws.run(&["rollback", "--node", "1002", "--yes", "--json"], &[]);
    assert_eq!(refused.code, 1, "{}", refused.all());
    let rb = refused
        .lines()
        .into_iter()
        .find(|l| l["type"] == "rollback_finished")
        .expect("rollback_finished");
    assert_eq!(rb["data"]["ok"], false);
    assert!(
        rb["data"]["reason"].as_str().unwrap().contains("1003"),
        "{rb}"
    );
    assert_eq!(lifecycle(&sim).len(), before, "nothing touched");
    assert_eq!(node_state_of(&ws, 1002)["status"], "failed");

    ctl_ok(&sim, &["start", "1003"]);
    sim.wait_settled(1003, RUN_T);
    let ok = ws.run(&["rollback", "--node", "1002", "--yes", "--json"], &[]);
    assert_eq!(ok.code, 0, "{}", ok.all());
    let lines = ok.lines();
    assert!(lines.iter().any(|l| l["type"] == "step_started"
        && l["data"]["node"] == 1002
        && l["data"]["step"] == "rollback"));
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "rollback_finished" && l["data"]["ok"] == true)
    );
    assert_eq!(node_state_of(&ws, 1002)["status"], "rolled_back");
    assert_eq!(varz_version(&sim, 1002, None), "v2.0.10-20241221");
    assert_eq!(stops(&sim).iter().filter(|n| **n == 1001).count(), 1);
    crate::harness::down_intervals_never_overlap(&sim.events()).unwrap();
}

/// 13.10: the failed node's log tail is matched against doctor's known signatures.
#[test]
fn a_failed_node_names_the_known_signature_in_its_logs() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::with_node_timeout(&sim, "6s");
    ctl_ok(&sim, &["fault", "1002", "crash-loop"]);
    let r = ws.run(&UP, &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    let failed = r
        .lines()
        .into_iter()
        .find(|l| l["type"] == "node_failed")
        .expect("node_failed");
    let known: Vec<&str> = failed["data"]["known"]
        .as_array()
        .map(|a| a.iter().filter_map(|k| k["id"].as_str()).collect())
        .unwrap_or_default();
    assert!(known.iter().any(|id| id.starts_with("logs.")), "{failed}");
}

/// 13.3: with `api.token_env` naming an unset variable, the first finding says so, and
/// no consequence of the 401s (no controller, start the missing nodes) is reported.
#[test]
fn an_unset_token_variable_is_diagnosed_first() {
    let (_sim, ws) = Ws::with_token("s3cret-token");
    let r = ws.run(&["check", "--to", "v2.1.2", "--json"], &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    let doc = r.json();
    let ids: Vec<&str> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["id"].as_str())
        .collect();
    assert_eq!(ids[0], "api.token_unset", "{ids:?}");
    for consequence in [
        "cluster.no_controller",
        "node.auth_failed",
        "cluster.slots_not_ready",
    ] {
        assert!(!ids.contains(&consequence), "{consequence} in {ids:?}");
    }
    assert!(!r.stdout.contains("start the missing nodes"), "{}", r.all());
}

/// 13.5: playbook steps run in the manifest's directory, wherever wkctl is started.
#[test]
fn playbook_steps_run_in_the_manifest_directory() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    with_playbook(&ws, |t| {
        t.replace(
            "install: echo simulated pull of {{to}}",
            "install: touch ./installed-{{node.id}}",
        )
    });
    let elsewhere = tempfile::tempdir().unwrap();
    let o = ws
        .cmd(&UP, &[])
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for id in [1001, 1002, 1003] {
        assert!(ws.dir.path().join(format!("installed-{id}")).exists());
        assert!(!elsewhere.path().join(format!("installed-{id}")).exists());
    }
}

/// 13.5: doctor says "could not check, because …" (the error whole) when a step could
/// not run, never "no known failure signature" or `network.unreachable` for it.
#[test]
fn doctor_says_what_it_could_not_check() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    with_playbook(&ws, |t| {
        let mut out: Vec<String> = t
            .lines()
            .filter(|l| {
                !l.trim_start().starts_with("logs:") && !l.trim_start().starts_with("netcheck:")
            })
            .map(String::from)
            .collect();
        let at = out.iter().position(|l| l.starts_with("steps:")).unwrap() + 1;
        out.insert(
            at,
            "  logs: \"echo 'journal: permission denied' >&2; exit 3\"".into(),
        );
        out.insert(at, "  netcheck: \"no-such-netcheck-xyz {{peer}}\"".into());
        out.join("\n") + "\n"
    });
    let r = ws.run(&["doctor", "--json"], &[]);
    let doc: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|_| panic!("{}", r.all()));
    let findings = doc["findings"].as_array().unwrap();
    let ids: Vec<&str> = findings.iter().filter_map(|f| f["id"].as_str()).collect();
    assert!(!ids.contains(&"network.unreachable"), "{ids:?}");
    assert!(!ids.contains(&"network.one_way"), "{ids:?}");
    let cnc: Vec<&Value> = findings
        .iter()
        .filter(|f| f["id"] == "doctor.could_not_check")
        .collect();
    assert!(
        cnc.iter().any(|f| f["message"]
            .as_str()
            .unwrap()
            .contains("journal: permission denied")),
        "{cnc:?}"
    );
    assert!(
        cnc.iter().any(|f| f["message"]
            .as_str()
            .unwrap()
            .contains("no-such-netcheck-xyz")),
        "{cnc:?}"
    );
    let text = ws.run(&["doctor"], &[]);
    assert!(
        !text
            .stdout
            .contains("no known failure signature in any node's logs")
            && text
                .stdout
                .contains("could not check the logs of node(s) 1001, 1002, 1003"),
        "{}",
        text.all()
    );
}

/// 13.4: the first Ctrl-C says at once what it does.
#[test]
fn the_first_ctrl_c_says_what_it_does() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    let mut run = ws.spawn(&UP, &[]);
    run.wait_for("1002 stopping", RUN_T, |v| {
        v["type"] == "step_started" && v["data"]["node"] == 1002 && v["data"]["step"] == "stop"
    });
    sigint(run.child.id());
    let said = run.wait_for("stop_requested", Duration::from_secs(5), |v| {
        v["type"] == "stop_requested"
    });
    let msg = said["data"]["message"].as_str().unwrap();
    assert!(
        msg.contains("stopping after the current step") && msg.contains("Ctrl-C again"),
        "{msg}"
    );
    let (code, err) = run.finish(RUN_T);
    assert_eq!(code, 130, "{err}");
}

/// 13.4 and 13.2 on a real terminal (`script(1)`), progress bars on: after a failure the
/// overall bar shows the nodes really done, not a full bar; and the `[y/N]` question is
/// not drawn over by the bars while it waits.
#[test]
fn on_a_terminal_the_bar_tells_the_truth_and_the_prompt_stays_visible() {
    if !has_script() {
        return;
    }
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::with_node_timeout(&sim, "4s");
    let pty = |extra: &str, input: &[u8]| {
        let cmd = format!(
            "{} upgrade --to v2.1.2 {extra} -m {} --state-dir {}",
            env!("CARGO_BIN_EXE_wkctl"),
            ws.manifest.display(),
            ws.state_base().display()
        );
        let mut child = Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .env("WKCTL_LOCK_DIR", ws.dir.path().join("locks"))
            .env_remove("WKCTL_NO_PROGRESS")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        std::io::Write::write_all(&mut stdin, input).unwrap();
        drop(stdin);
        let mut out = String::new();
        let mut so = child.stdout.take().unwrap();
        let _ = so.read_to_string(&mut out);
        (child.wait().unwrap().code(), out)
    };
    // The prompt, answered "n" after the bars had time to tick: nothing after it redraws.
    let (code, out) = pty("", b"n\n");
    assert_eq!(code, Some(1), "{out}");
    let at = out
        .rfind("[y/N]")
        .unwrap_or_else(|| panic!("no prompt:\n{out}"));
    let after = &out[at..];
    let end = after.find("nothing was changed").unwrap_or(after.len());
    assert!(
        !after[..end].contains("nodes"),
        "a bar was drawn over the prompt: {:?}",
        &after[..end]
    );
    // A failed run: the bar ends with 1 of 3 nodes, marked failed.
    ctl_ok(&sim, &["fault", "1002", "never-starts"]);
    let (code, out) = pty("--yes", b"");
    assert_eq!(code, Some(1), "{out}");
    let bar = out
        .rsplit(['\r', '\n'])
        .find(|l| l.contains("nodes") && l.contains('/'))
        .unwrap_or_else(|| panic!("no overall bar:\n{out}"));
    assert!(bar.contains("1/3") && bar.contains("failed"), "{bar:?}");
    assert!(!out.contains("3/3 nodes"), "{out}");
}

/// 13.12: `status --watch` into a pipe: timestamped frames, no screen-clearing escapes,
/// and Ctrl-C exits 130.
#[test]
fn status_watch_into_a_pipe_is_plain_and_ctrl_c_exits_130() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    let child = ws
        .cmd(&["status", "--watch"], &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    sigint(child.id());
    let o = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(130), "{out}");
    assert!(!out.contains('\u{1b}'), "escape codes in a pipe: {out:?}");
    let frames = out.lines().filter(|l| l.starts_with("--- 20")).count();
    assert!(frames >= 2, "timestamped frames: {out}");
}

/// 13.15: a dry run with an unfinished run warns that a real run would be refused;
/// `--resume` after `--discard` says there is no unfinished run.
#[test]
fn dry_run_warns_about_an_unfinished_run_and_resume_after_discard_says_so() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    let mut run = ws.spawn(&UP, &[]);
    run.wait_for("1001 soaking", RUN_T, |v: &Value| {
        v["type"] == "step_started" && v["data"]["node"] == 1001 && v["data"]["step"] == "soak"
    });
    run.kill9();
    let dry = ws.run(&["upgrade", "--to", "v2.1.2", "--dry-run"], &[]);
    assert!(
        dry.stderr.contains("a real run would be refused") && dry.stderr.contains("--resume"),
        "{}",
        dry.all()
    );
    let d = ws.run(&["upgrade", "--discard"], &[]);
    assert_eq!(d.code, 0, "{}", d.all());
    let r = ws.run(&["upgrade", "--resume", "--yes"], &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains("no unfinished run to resume"),
        "{}",
        r.all()
    );
}

/// 13.11: the demo injects `blackhole` at the node's stop (a node failing, not a refused
/// pre-check) and never points at `--resume` in the directory it deletes.
#[test]
fn demo_blackhole_fails_a_node_and_never_points_into_its_deleted_dir() {
    let o = Command::new(env!("CARGO_BIN_EXE_wkctl"))
        .args([
            "demo",
            "--fault",
            "blackhole",
            "--speed",
            "20",
            "--no-progress",
        ])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let all = format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.status.code(), Some(1), "{all}");
    assert!(all.contains("node 1002: FAILED"), "{all}");
    assert!(!all.contains("pre-upgrade check: "), "{all}");
    assert!(!all.contains("--resume"), "{all}");
    assert!(all.contains("run `wkctl demo` again"), "{all}");
}

/// 13.22: the README's finding-id list names every id of the catalog.
#[test]
fn the_readme_lists_every_finding_id() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let missing: Vec<&str> = wkctl::finding::FindingId::ALL
        .iter()
        .map(|i| i.as_str())
        .filter(|id| !readme.contains(&format!("`{id}`")))
        .collect();
    assert!(missing.is_empty(), "not in the README: {missing:?}");
}

/// 13.1, the team lock: the playbook's `lock` runs once on the first node's host and
/// `unlock` at the end; a lock held by someone else stops the run before anything is
/// touched (their lock included); `--break-lock` runs `unlock` first and takes it.
#[test]
fn the_team_lock_excludes_a_second_operator_and_break_lock_takes_it() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    let lock_dir = ws.dir.path().join("team.lock");
    let q = lock_dir.display().to_string();
    with_playbook(&ws, |t| {
        t.replace(
            "steps:\n",
            &format!(
                "steps:\n  lock: 'mkdir {q} 2>/dev/null || {{ echo held by $(cat {q}/owner) >&2; exit 1; }}; echo user=me > {q}/owner'\n  unlock: 'rm -rf {q}'\n"
            ),
        )
    });
    // Someone else holds it.
    std::fs::create_dir(&lock_dir).unwrap();
    std::fs::write(lock_dir.join("owner"), "user=bob host=ops-2\n").unwrap();
    let r = ws.run(&UP, &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stdout.contains("held by user=bob"), "{}", r.all());
    assert!(stops(&sim).is_empty(), "nothing touched");
    assert!(
        lock_dir.join("owner").exists(),
        "the other operator's lock is left alone"
    );
    assert!(
        !r.lines()
            .iter()
            .any(|l| l["type"] == "step_started" && l["data"]["step"] == "unlock")
    );
    // `--discard` the refused run, then take the lock by force: `unlock` runs first.
    assert_eq!(ws.run(&["upgrade", "--discard"], &[]).code, 0);
    let mut args = UP.to_vec();
    args.push("--break-lock");
    let r = ws.run(&args, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let steps: Vec<String> = r
        .lines()
        .iter()
        .filter(|l| l["type"] == "step_started")
        .filter_map(|l| l["data"]["step"].as_str().map(String::from))
        .collect();
    assert_eq!(
        steps.first().map(String::as_str),
        Some("unlock"),
        "{steps:?}"
    );
    assert_eq!(steps.get(1).map(String::as_str), Some("lock"), "{steps:?}");
    assert_eq!(
        steps.last().map(String::as_str),
        Some("unlock"),
        "{steps:?}"
    );
    assert!(!lock_dir.exists(), "released at the end");
    assert_eq!(stops(&sim), [1001, 1002, 1003]);
    rollout_was_safe(&sim.events()).unwrap();
}

/// 13.13 (first half) on a real terminal: each finished node's `✓ upgraded` line is on
/// the screen exactly once. The canary question hides the bars while it waits; when they
/// came back, indicatif drew every finished node line again below the question (so node
/// 1001's line showed twice, three times after a second prompt). The terminal output is
/// replayed through a VT100 emulator, so what is counted is what the operator saw,
/// scrollback included, not the raw redraw frames.
#[test]
fn on_a_terminal_each_finished_node_is_shown_once() {
    if !has_script() {
        return;
    }
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(
        &sim,
        &Opts {
            policy: crate::support::FAST_POLICY.replace("canary: false", "canary: true"),
            ..Opts::default()
        },
    );
    let cmd = format!(
        "stty cols 100 rows 200; {} upgrade --to v2.1.2 -m {} --state-dir {}",
        env!("CARGO_BIN_EXE_wkctl"),
        ws.manifest.display(),
        ws.state_base().display()
    );
    let mut child = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("WKCTL_LOCK_DIR", ws.dir.path().join("locks"))
        .env_remove("WKCTL_NO_PROGRESS")
        .env_remove("NO_COLOR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut so = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = so.read_to_end(&mut out);
        out
    });
    // "y" to the run's question, then to the canary question once node 1001 is done.
    let mut stdin = child.stdin.take().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    std::io::Write::write_all(&mut stdin, b"y\n").unwrap();
    let deadline = std::time::Instant::now() + RUN_T;
    while !lifecycle(&sim)
        .iter()
        .any(|(_, v, n)| v == "start" && *n == 1001)
    {
        assert!(std::time::Instant::now() < deadline, "1001 never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(2500));
    std::io::Write::write_all(&mut stdin, b"y\n").unwrap();
    drop(stdin);
    let code = child.wait().unwrap().code();
    let raw = reader.join().unwrap();
    // The terminal is tall enough that nothing scrolls off: the screen is the whole run.
    let size = |n: u16| std::num::NonZeroU16::new(n).unwrap();
    let mut term = vt100::Parser::new(size(200), size(100), 0);
    term.process(&raw);
    let screen: Vec<String> = term.screen().rows(0, 100).collect();
    let text = screen.join("\n");
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("canary: node 1001"),
        "no canary prompt:\n{text}"
    );
    for node in [1001, 1002, 1003] {
        let shown = screen
            .iter()
            .filter(|l| l.contains(&format!("node {node}")) && l.contains("✓ upgraded"))
            .count();
        assert_eq!(shown, 1, "node {node}'s line shown {shown} times:\n{text}");
    }
    rollout_was_safe(&sim.events()).unwrap();
}
