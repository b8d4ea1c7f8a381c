//! An outsider's attack on the seven holes issue #18's follow-up closed in the
//! service-level gate: the persisted client baseline, the re-checked recovery, absurd or
//! missing counts, duplicate APIs and the scrub of the managerToken from node text. Each
//! test runs the real `wkctl` against the real `wksim` and judges on the simulator's
//! event log, the `--json` stream and the state file. "Held" marks an attack that held.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::attack_service::{VarzProxy, sim_connections, upgrade_1001, ws_through};
use crate::harness::{Sim, SimOpts};
use crate::service::{UP, of_type, sim_with_clients, ws};
use crate::support::{FAST_POLICY, Opts, TOKEN_ENV, Ws, ctl_ok, lifecycle};

const RESUME: [&str; 4] = ["upgrade", "--resume", "--yes", "--json"];

fn stops(sim: &Sim) -> usize {
    lifecycle(sim)
        .into_iter()
        .filter(|(_, v, _)| v == "stop")
        .count()
}

fn failed_reason(lines: &[Value]) -> String {
    of_type(lines, "node_failed")
        .first()
        .and_then(|f| f["data"]["reason"].as_str())
        .unwrap_or("")
        .to_string()
}

/// A token simulator whose manifest uses `pb.yaml`: the bundled `sim` playbook with
/// `edit` applied to its text (and extra lines appended).
fn token_ws_with_playbook(token: &str, edit: impl Fn(String) -> String) -> (Sim, Ws) {
    let (sim, ws) = Ws::with_token(token);
    let pb = edit(include_str!("../../playbooks/sim.yaml").replace("name: sim", "name: sim-leaky"));
    std::fs::write(ws.dir.path().join("pb.yaml"), pb).unwrap();
    let m = std::fs::read_to_string(&ws.manifest)
        .unwrap()
        .replace("playbook: sim", "playbook: ./pb.yaml");
    std::fs::write(&ws.manifest, m).unwrap();
    // What the host holds: its config, its logs, a load balancer's answer (the commands
    // `cat` them, so the token never appears in a rendered command).
    for (file, text) in [
        ("wk.env", format!("managerToken: {token}\n")),
        ("wk.err", format!("WK_MANAGERTOKEN={token}\n")),
        (
            "wk.log",
            format!("level=error msg='auth failed' token={token}\n"),
        ),
        ("lb.txt", format!("lb rejected: token={token}\n")),
        (
            "wk-panic.log",
            format!(
                "{{\"level\":\"panic\",\"msg\":\"applied index > last log index\",\"token\":\"{token}\"}}\n"
            ),
        ),
    ] {
        std::fs::write(sim.state_dir().join(file), text).unwrap();
    }
    (sim, ws)
}

fn state_text(ws: &Ws) -> String {
    std::fs::read_to_string(ws.state_file()).unwrap_or_default()
}

const STOP_LINE: &str = "  stop: \"{{wksim}} ctl --state-dir {{state_dir}} stop {{node.id}}\"";
const LOGS_LINE: &str = "  logs: \"{{wksim}} ctl --state-dir {{state_dir}} logs {{node.id}}\"";

// ---- the token reaches output by another path than `Client::send` --------------------

/// A `stop` step that fails on a host whose script prints its config (managerToken
/// included, as `cat wk.yaml` or `env` does), and a `logs` command whose lines hold it:
/// the step's output tail goes into `node_failed`, the state file's `error` and the logs
/// excerpt. Only node answers were scrubbed (`Client::send`); the host's output was not.
#[test]
fn a_failing_step_and_its_logs_never_print_the_token() {
    const TOKEN: &str = "s3cr3t-token-of-the-host";
    let (sim, ws) = token_ws_with_playbook(TOKEN, |pb| {
        pb.replace(
            STOP_LINE,
            "  stop: \"cat {{state_dir}}/wk.env; cat {{state_dir}}/wk.err >&2; exit 3\"",
        )
        .replace(LOGS_LINE, "  logs: \"cat {{state_dir}}/wk.log\"")
    });
    let r = ws.run(&UP, &[(TOKEN_ENV, TOKEN)]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.all().contains("managerToken: <redacted>"),
        "the step's output is still shown (scrubbed): {}",
        r.all()
    );
    assert!(
        !r.all().contains(TOKEN),
        "the managerToken was printed:\n{}",
        r.all()
    );
    let state = state_text(&ws);
    assert!(!state.is_empty(), "a state file was written");
    assert!(
        !state.contains(TOKEN),
        "the managerToken was saved in state.json:\n{state}"
    );
    assert_eq!(stops(&sim), 0, "nothing was stopped");
    // The human output of the same failure (and its resume refusal) too.
    let r = ws.run(&["upgrade", "--resume", "--yes"], &[(TOKEN_ENV, TOKEN)]);
    assert!(!r.all().contains(TOKEN), "{}", r.all());
}

/// A `drain` hook that echoes the token (a load balancer's API answering with the
/// request it got) and fails: its output tail is shown, never the token.
#[test]
fn a_failing_drain_hook_never_prints_the_token() {
    const TOKEN: &str = "s3cr3t-token-of-the-lb";
    let (sim, ws) = token_ws_with_playbook(TOKEN, |pb| {
        format!("{pb}  drain: \"cat {{{{state_dir}}}}/lb.txt >&2; exit 4\"\n  undrain: \"true\"\n")
    });
    let r = ws.run(&UP, &[(TOKEN_ENV, TOKEN)]);
    assert_ne!(r.code, 0, "{}", r.all());
    assert!(r.all().contains("lb rejected"), "{}", r.all());
    assert!(
        !r.all().contains(TOKEN),
        "the managerToken was printed:\n{}",
        r.all()
    );
    assert!(!state_text(&ws).contains(TOKEN), "{}", state_text(&ws));
    assert_eq!(stops(&sim), 0, "nothing was stopped");
}

/// `wkctl doctor` gathers every node's `logs` and `config`: a host whose logs hold the
/// token never gets it printed (text or `--json`).
#[test]
fn doctor_never_prints_a_token_found_in_the_logs() {
    const TOKEN: &str = "s3cr3t-token-in-the-logs";
    let (_sim, ws) = token_ws_with_playbook(TOKEN, |pb| {
        pb.replace(
            LOGS_LINE,
            "  logs: \"cat {{state_dir}}/wk-panic.log; {{wksim}} ctl --state-dir {{state_dir}} logs {{node.id}}\"",
        )
    });
    let report = ws.dir.path().join("report.md");
    let report_arg = report.display().to_string();
    for args in [
        &["doctor", "--output", report_arg.as_str()][..],
        &["doctor", "--json"][..],
    ] {
        let r = ws.run(args, &[(TOKEN_ENV, TOKEN)]);
        assert!(
            !r.all().contains(TOKEN),
            "{args:?} printed the managerToken:\n{}",
            r.all()
        );
    }
    let text = std::fs::read_to_string(&report).unwrap_or_default();
    assert!(!text.contains(TOKEN), "the report holds the token:\n{text}");
    // The log line was read and quoted (as a known signature), only without the token.
    assert!(
        text.contains("applied index > last log index"),
        "the signature line is in the report:\n{text}"
    );
}

// ---- duplicate APIs spelled differently -------------------------------------------------

/// Held: spellings of 1001's API that the URL parser makes one (trailing slash, upper-case
/// scheme, the short and the hex IPv4 forms) are refused at manifest load.
#[test]
fn duplicate_apis_spelled_differently_are_refused_at_load() {
    let sim = Sim::start(SimOpts::default());
    let a1001 = sim.api(1001).to_string();
    let port = a1001.rsplit(':').next().unwrap().to_string();
    for alias in [
        format!("{a1001}/"),
        a1001.replace("http://", "HTTP://"),
        format!("http://127.1:{port}"),
        format!("http://0x7f.0.0.1:{port}"),
    ] {
        let ws = Ws::new(&sim, &Opts::default());
        let text = std::fs::read_to_string(&ws.manifest).unwrap().replace(
            &format!("api: {}\n", sim.api(1002)),
            &format!("api: {alias}\n"),
        );
        std::fs::write(&ws.manifest, text).unwrap();
        let r = ws.run(&UP, &[]);
        assert_eq!(r.code, 2, "{alias}: {}", r.all());
        assert!(
            r.stderr.contains("have the same API"),
            "{alias}: {}",
            r.all()
        );
    }
    assert!(lifecycle(&sim).is_empty());
}

/// `localhost` for 1001's port cannot be told apart at load (it is another host name):
/// the pre-check must see that "1002" answers as 1001 and refuse before any stop.
#[test]
fn a_localhost_alias_of_another_nodes_api_is_refused_before_any_stop() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    let alias = sim.api(1001).replace("127.0.0.1", "localhost");
    let text = std::fs::read_to_string(&ws.manifest).unwrap().replace(
        &format!("api: {}\n", sim.api(1002)),
        &format!("api: {alias}\n"),
    );
    std::fs::write(&ws.manifest, text).unwrap();
    let r = ws.run(&UP, &[]);
    assert_ne!(r.code, 0, "{}", r.all());
    assert!(
        lifecycle(&sim).is_empty(),
        "a node was restarted through an aliased API:\n{}",
        r.all()
    );
}

// ---- the persisted baseline on --resume ---------------------------------------------

/// A client shortfall on 1001, then the state file's baseline is damaged: a baseline that
/// is not one (a corrupt `clients` object) makes the resume refuse to read the state; it
/// never resumes with the client check silently off.
#[test]
fn a_resume_with_a_corrupt_baseline_never_skips_the_client_check() {
    let sim = sim_with_clients(1600);
    let ws = ws(&sim, "");
    ctl_ok(&sim, &["fault", "1003", "clients-stuck"]);
    let r = ws.run(&UP, &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(failed_reason(&r.lines()).contains("clients did not come back"));
    let stops_before = stops(&sim);
    let mut state = ws.state();
    let nodes = state["nodes"].as_array_mut().expect("nodes");
    let n = nodes.iter_mut().find(|n| n["id"] == 1001).expect("1001");
    assert!(n["clients"]["connections"].is_object(), "persisted: {n}");
    n["clients"]["connections"] = Value::from("garbage");
    std::fs::write(ws.state_file(), state.to_string()).unwrap();
    let r = ws.run(&RESUME, &[]);
    assert_ne!(r.code, 0, "resumed on a corrupt baseline:\n{}", r.all());
    assert_eq!(stops(&sim), stops_before, "nothing more was stopped");
}

/// The same shortfall; the state's baseline of 1001 is gone (`clients: null`, as a state
/// written before the baseline was kept, or edited): the resumed run does not pass 1001
/// quietly. It either still fails on the clients, or says loudly that it skipped them.
#[test]
fn a_resume_whose_state_lost_the_baseline_never_passes_quietly() {
    let sim = sim_with_clients(1600);
    let ws = ws(&sim, "");
    ctl_ok(&sim, &["fault", "1003", "clients-stuck"]);
    let r = ws.run(&UP, &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    let mut state = ws.state();
    for n in state["nodes"].as_array_mut().expect("nodes") {
        n["clients"] = Value::Null;
    }
    std::fs::write(ws.state_file(), state.to_string()).unwrap();
    let r = ws.run(&RESUME, &[]);
    let lines = r.lines();
    let warned = of_type(&lines, "warning").iter().any(|w| {
        w["data"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("client check skipped"))
    });
    assert!(
        r.code != 0 || warned,
        "1001 passed with {} of 4,800 clients and no word:\n{}",
        sim_connections(&sim),
        r.all()
    );
}

// ---- counts that flap --------------------------------------------------------------

/// 1003 reports its count at the baseline, then flaps between a count and none every
/// 120 ms (a proxy in front of it), while #397/#683 keeps 1002's clients away: the flaps
/// never turn the shortfall into a pass.
#[test]
fn a_node_whose_count_flaps_never_passes_a_real_shortfall() {
    let sim = sim_with_clients(1600);
    let proxy = Arc::new(VarzProxy::start(sim.api(1003)));
    let ws = ws_through(&sim, 1003, &proxy, FAST_POLICY);
    ctl_ok(&sim, &["fault", "1002", "clients-stuck"]);
    let done = Arc::new(AtomicBool::new(false));
    let flapper = {
        let (proxy, done) = (proxy.clone(), done.clone());
        std::thread::spawn(move || {
            // Honest during the pre-check and the baseline.
            std::thread::sleep(Duration::from_millis(1500));
            let mut on = false;
            while !done.load(Ordering::Relaxed) {
                if on {
                    proxy.unset("connections");
                } else {
                    proxy.set("connections", Value::Null);
                }
                on = !on;
                std::thread::sleep(Duration::from_millis(120));
            }
        })
    };
    let (code, lines, err) = upgrade_1001(&ws);
    done.store(true, Ordering::Relaxed);
    flapper.join().unwrap();
    assert_eq!(
        code,
        1,
        "passed with {} of 4,800 clients: {:?}\n{err}",
        sim_connections(&sim),
        of_type(&lines, "soak_finished")
    );
    assert!(
        failed_reason(&lines).contains("clients did not come back"),
        "{lines:#?}"
    );
}

/// Held: clients that "come back" only on a node that had no count at the baseline are
/// not counted: 1003 without a count at the baseline, then claiming all the clients that
/// 1002 lost (#397/#683), never makes the ratio pass.
#[test]
fn clients_claimed_by_a_node_absent_from_the_baseline_do_not_count() {
    let sim = sim_with_clients(1600);
    let proxy = Arc::new(VarzProxy::start(sim.api(1003)));
    proxy.set("connections", Value::Null);
    let ws = ws_through(&sim, 1003, &proxy, FAST_POLICY);
    ctl_ok(&sim, &["fault", "1002", "clients-stuck"]);
    let done = Arc::new(AtomicBool::new(false));
    let claimer = {
        let (proxy, done) = (proxy.clone(), done.clone());
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(1500));
            proxy.set("connections", Value::from(100_000u64));
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let (code, lines, err) = upgrade_1001(&ws);
    done.store(true, Ordering::Relaxed);
    claimer.join().unwrap();
    assert_eq!(
        code,
        1,
        "passed with {} of 4,800 real clients: {:?}\n{err}",
        sim_connections(&sim),
        of_type(&lines, "soak_finished")
    );
}

/// A token written literally into a playbook command (`stop`) and into a manifest `vars`
/// entry the `start` command uses (an operator's `curl -H "token: …"` drain, a wrapper
/// that needs it): the command runs as written, so the upgrade succeeds, but
/// `step_started.command` (JSON and human output) shows it redacted.
#[test]
fn a_token_written_into_a_playbook_command_or_vars_is_never_printed() {
    const TOKEN: &str = "s3cr3t-token-in-the-playbook";
    let (sim, ws) = token_ws_with_playbook(TOKEN, |pb| {
        pb.replace(
            STOP_LINE,
            &format!(
                "  stop: \"test x{TOKEN} = x{TOKEN} && {{{{wksim}}}} ctl --state-dir {{{{state_dir}}}} stop {{{{node.id}}}}\""
            ),
        )
        .replace(
            "  start: \"{{wksim}}",
            "  start: \"test x{{wk_token}} = x{{wk_token}} && {{wksim}}",
        )
    });
    let m = std::fs::read_to_string(&ws.manifest)
        .unwrap()
        .replace("vars:\n", &format!("vars:\n  wk_token: {TOKEN}\n"));
    std::fs::write(&ws.manifest, m).unwrap();
    let pb = std::fs::read_to_string(ws.dir.path().join("pb.yaml")).unwrap();
    assert!(pb.contains("{{wk_token}}") && pb.contains(TOKEN), "{pb}");

    let r = ws.run(&UP, &[(TOKEN_ENV, TOKEN)]);
    assert_eq!(r.code, 0, "the commands ran as written: {}", r.all());
    assert_eq!(
        stops(&sim),
        3,
        "every node was stopped by the token-bearing stop"
    );
    let lines: Vec<Value> = r.lines();
    let commands: Vec<&str> = of_type(&lines, "step_started")
        .iter()
        .filter(|l| l["data"]["step"] == "stop" || l["data"]["step"] == "start")
        .filter_map(|l| l["data"]["command"].as_str())
        .collect();
    assert_eq!(commands.len(), 6, "{}", r.all());
    assert!(
        commands
            .iter()
            .all(|c| c.contains("x<redacted> = x<redacted>")),
        "{commands:?}"
    );
    assert!(
        !r.all().contains(TOKEN),
        "the token was printed:\n{}",
        r.all()
    );
    assert!(!state_text(&ws).contains(TOKEN), "{}", state_text(&ws));

    // A restart, in human mode with -v, neither.
    let r = ws.run(&["restart", "--yes", "-v"], &[(TOKEN_ENV, TOKEN)]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        !r.all().contains(TOKEN),
        "the token was printed:\n{}",
        r.all()
    );
}
