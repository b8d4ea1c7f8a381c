//! Real ssh: `wkctl::transport::run` through the system `ssh` client to the throwaway `sshd`
//! that `.ci/run` starts on a loopback port (STYLE "Tests").
//!
//! `.ci/run` exports `WKCTL_TEST_SSH=user@127.0.0.1:PORT:/path/to/private_key`. Without it
//! these tests skip with a message, except under CI (`CI` set), where they fail: a missing
//! sshd must never pass unnoticed.

use std::time::Duration;

use wkctl::transport::{self, SshTarget, StepOutput, Transport};

/// The variable `.ci/run` sets.
pub const SSH_ENV: &str = "WKCTL_TEST_SSH";
/// Bounds every test here, so a hung connection fails instead of blocking CI.
const TEST_DEADLINE: Duration = Duration::from_mins(1);
/// Per step: generous, a loaded CI machine can be slow to fork `sshd` sessions.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// The test sshd from `WKCTL_TEST_SSH`, with host-key checking off (its host key is
/// generated per run). `None` when the variable is unset or empty; panics when it is
/// malformed.
pub fn ssh_target_from_env() -> Option<SshTarget> {
    let spec = std::env::var(SSH_ENV)
        .ok()
        .filter(|s| !s.trim().is_empty())?;
    match parse_spec(spec.trim()) {
        Ok(target) => Some(target),
        Err(e) => panic!("{SSH_ENV}=`{spec}`: {e} (expected user@127.0.0.1:PORT:/path/to/key)"),
    }
}

fn parse_spec(spec: &str) -> Result<SshTarget, String> {
    let (user, rest) = spec.split_once('@').ok_or("no `user@`")?;
    // The key path comes last and may itself contain `:`.
    let mut parts = rest.splitn(3, ':');
    let host = parts.next().filter(|h| !h.is_empty()).ok_or("no host")?;
    let port = parts.next().ok_or("no port")?;
    let port: u16 = port.parse().map_err(|_| format!("bad port `{port}`"))?;
    let key = parts
        .next()
        .filter(|k| !k.is_empty())
        .ok_or("no key path")?;
    if user.is_empty() {
        return Err("empty user".into());
    }
    Ok(SshTarget {
        host: host.to_string(),
        user: Some(user.to_string()),
        port: Some(port),
        identity_file: Some(key.to_string()),
        options: vec![
            "StrictHostKeyChecking=no".into(),
            "UserKnownHostsFile=/dev/null".into(),
            // Keeps "Permanently added ... to the list of known hosts" out of stderr.
            "LogLevel=ERROR".into(),
        ],
    })
}

/// The target, or `None` after saying why the test is skipped; under CI, a failure.
fn target_or_skip() -> Option<Transport> {
    if let Some(target) = ssh_target_from_env() {
        return Some(Transport::Ssh(target));
    }
    crate::support::skip(
        "ssh",
        &format!("{SSH_ENV} is not set (`.ci/run` starts sshd and exports it)"),
    );
    None
}

async fn run(transport: &Transport, command: &str, timeout: Duration) -> StepOutput {
    tokio::time::timeout(TEST_DEADLINE, transport::run(transport, command, timeout))
        .await
        .expect("test deadline")
        .expect("spawn ssh")
}

#[test]
fn env_spec_parses() {
    let t = parse_spec("root@127.0.0.1:2222:/tmp/x:y/id_ed25519").expect("valid");
    assert_eq!(t.user.as_deref(), Some("root"));
    assert_eq!(t.host, "127.0.0.1");
    assert_eq!(t.port, Some(2222));
    assert_eq!(t.identity_file.as_deref(), Some("/tmp/x:y/id_ed25519"));
    assert!(parse_spec("127.0.0.1:22:/k").is_err());
    assert!(parse_spec("u@127.0.0.1:port:/k").is_err());
    assert!(parse_spec("u@127.0.0.1:22").is_err());
}

#[tokio::test]
async fn exit_code_stdout_and_stderr_come_back_over_ssh() {
    let Some(t) = target_or_skip() else { return };
    let out = run(&t, "echo hello; echo err >&2; exit 3", STEP_TIMEOUT).await;
    assert_eq!(out.exit_code, Some(3), "{}", out.tail(20));
    assert!(!out.timed_out);
    assert!(!out.success());
    assert_eq!(out.stdout.trim(), "hello");
    assert!(out.stderr.contains("err"), "stderr: {:?}", out.stderr);

    let ok = run(&t, "true", STEP_TIMEOUT).await;
    assert!(ok.success(), "{}", ok.tail(20));
}

#[tokio::test]
async fn a_timeout_over_ssh_is_reported_as_timed_out() {
    let Some(t) = target_or_skip() else { return };
    // `started` proves the remote command ran before the deadline hit.
    let out = run(
        &t,
        "echo started; sleep 30; echo never",
        Duration::from_secs(4),
    )
    .await;
    assert!(out.timed_out, "{}", out.tail(20));
    assert!(!out.success());
    assert_eq!(out.stdout.trim(), "started", "{}", out.tail(20));
    assert!(
        out.duration < Duration::from_secs(15),
        "took {:?}",
        out.duration
    );
}

#[tokio::test]
async fn single_quotes_and_dollars_survive_the_remote_shell() {
    let Some(t) = target_or_skip() else { return };
    let command = r#"x=1; printf '%s|' 'it'"'"'s' "a  b" '$HOME' "$x" \$y"#;
    let out = run(&t, command, STEP_TIMEOUT).await;
    assert!(out.success(), "{}", out.tail(20));
    assert_eq!(out.stdout, "it's|a  b|$HOME|1|$y|");
}

#[tokio::test]
async fn an_unreachable_port_is_a_failed_step_not_a_spawn_error() {
    let Some(Transport::Ssh(mut target)) = target_or_skip() else {
        return;
    };
    // Port 1 on loopback: nothing listens there, so ssh itself fails with 255.
    target.port = Some(1);
    let out = run(&Transport::Ssh(target), "true", STEP_TIMEOUT).await;
    assert_eq!(out.exit_code, Some(255), "{}", out.tail(20));
    assert!(!out.stderr.is_empty());
}

/// A whole `wkctl upgrade` whose playbook steps (which drive `wksim ctl`) run through the
/// system `ssh` client to the loopback sshd: the `Ssh` transport end to end.
#[test]
fn an_upgrade_runs_its_playbook_over_ssh() {
    use crate::harness::{Sim, SimOpts};
    use crate::support::{Opts, Ws, lifecycle};
    let Some(Transport::Ssh(t)) = target_or_skip() else {
        return;
    };
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    // A playbook whose backup step proves it ran inside an ssh session.
    let pb = include_str!("../../playbooks/sim.yaml")
        .replace("name: sim", "name: sim-over-ssh")
        .replace(
            "  backup: >-\n",
            "  backup: >-\n    printf %s \"$SSH_CONNECTION\" > {{state_dir}}/ssh-{{node.id}} &&\n",
        );
    std::fs::write(ws.dir.path().join("pb.yaml"), pb).unwrap();
    let options: Vec<String> = t.options.iter().map(|o| format!("{o:?}")).collect();
    let ssh = format!(
        "ssh:\n  user: {}\n  port: {}\n  identity_file: {:?}\n  options: [{}]\n",
        t.user.clone().unwrap_or_default(),
        t.port.unwrap_or(22),
        t.identity_file.clone().unwrap_or_default(),
        options.join(", ")
    );
    let m = std::fs::read_to_string(&ws.manifest)
        .unwrap()
        .replace("playbook: sim\n", &format!("playbook: ./pb.yaml\n{ssh}"));
    std::fs::write(&ws.manifest, m).unwrap();
    let r = ws.run(&["upgrade", "--to", "v2.1.2", "--yes", "--json"], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    for id in [1001, 1002, 1003] {
        let conn =
            std::fs::read_to_string(sim.state_dir().join(format!("ssh-{id}"))).unwrap_or_default();
        assert!(
            conn.starts_with("127.0.0.1 "),
            "node {id}: backup did not run over ssh (SSH_CONNECTION=`{conn}`)"
        );
    }
    let stops: Vec<u64> = lifecycle(&sim)
        .into_iter()
        .filter(|(_, v, _)| v == "stop")
        .map(|(_, _, n)| n)
        .collect();
    assert_eq!(stops, [1001, 1002, 1003]);
    crate::harness::rollout_was_safe(&sim.events()).unwrap();
}
