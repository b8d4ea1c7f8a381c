//! Unit tests for the transport: argv rendering, and real local processes (exit codes,
//! signals, timeouts that must kill grandchildren, cancellation, output caps).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::*;

/// Every async test is bounded by this, so a hang fails instead of blocking CI.
const TEST_DEADLINE: Duration = Duration::from_secs(30);

async fn local(command: &str, timeout: Duration) -> StepOutput {
    tokio::time::timeout(TEST_DEADLINE, run(&Transport::Local, command, timeout))
        .await
        .expect("test deadline")
        .expect("spawn sh")
}

fn ssh_target() -> SshTarget {
    SshTarget {
        host: "10.0.0.11".into(),
        user: Some("deploy".into()),
        port: Some(2222),
        identity_file: Some("~/.ssh/wk_ed25519".into()),
        options: vec![
            "StrictHostKeyChecking=yes".into(),
            "ProxyJump=bastion".into(),
        ],
    }
}

/// Reads the pid a command wrote to `file`, polling until it is there.
async fn read_pid(file: &Path) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = std::fs::read_to_string(file)
            && let Ok(pid) = text.trim().parse()
        {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "no pid written to {}",
            file.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A process is gone when it no longer exists or is a zombie (it has exited; only
/// its parent, possibly a container's init that never reaps, still holds the entry).
fn is_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the parenthesised command name: "pid (comm) S ...".
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

async fn assert_gone_soon(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !is_gone(pid) {
        assert!(Instant::now() < deadline, "process {pid} is still running");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn pid_file(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("pid")
}

#[test]
fn local_argv_is_sh_c() {
    assert_eq!(Transport::Local.argv("echo hi"), ["sh", "-c", "echo hi"]);
    assert_eq!(Transport::Local.describe(), "local");
}

#[test]
fn ssh_argv_renders_user_port_identity_and_options() {
    let t = Transport::Ssh(ssh_target());
    assert_eq!(
        t.argv("cd /opt/wk && docker compose stop -t 30 wukongim1"),
        [
            "ssh",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=10",
            "-p",
            "2222",
            "-i",
            "~/.ssh/wk_ed25519",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "ProxyJump=bastion",
            "deploy@10.0.0.11",
            "--",
            "cd /opt/wk && docker compose stop -t 30 wukongim1",
        ]
    );
    assert_eq!(t.describe(), "ssh deploy@10.0.0.11:2222");
}

#[test]
fn ssh_argv_leaves_unset_fields_to_ssh_config() {
    let t = Transport::Ssh(SshTarget {
        host: "wk1".into(),
        user: None,
        port: None,
        identity_file: None,
        options: vec![],
    });
    assert_eq!(
        t.argv("true"),
        [
            "ssh",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=10",
            "wk1",
            "--",
            "true"
        ]
    );
    assert_eq!(t.describe(), "ssh wk1");
    let v6 = Transport::Ssh(SshTarget {
        host: "::1".into(),
        port: Some(22),
        ..ssh_target()
    });
    assert_eq!(v6.describe(), "ssh deploy@[::1]:22");
}

#[test]
fn command_with_quotes_and_dollar_is_one_untouched_argument() {
    let command = r#"printf '%s\n' "it's $HOME" 'a"b' '$x' \$y"#;
    for t in [Transport::Local, Transport::Ssh(ssh_target())] {
        let argv = t.argv(command);
        assert_eq!(argv.last().map(String::as_str), Some(command));
    }
}

#[test]
fn for_node_follows_the_manifest_ssh_section() {
    let with_ssh = "name: a\nssh:\n  user: deploy\n  port: 22\n  identity_file: /k\n  options: [\"StrictHostKeyChecking=yes\"]\nnodes:\n  - id: 1001\n    host: 10.0.0.11\n";
    let m = crate::manifest::parse(with_ssh, Path::new("cluster.yaml")).expect("manifest");
    let t = Transport::for_node(&m, &m.nodes[0]);
    assert_eq!(
        t,
        Transport::Ssh(SshTarget {
            host: "10.0.0.11".into(),
            user: Some("deploy".into()),
            port: Some(22),
            identity_file: Some("/k".into()),
            options: vec!["StrictHostKeyChecking=yes".into()],
        })
    );
    assert_eq!(t.describe(), "ssh deploy@10.0.0.11:22");

    let without = "name: a\nnodes:\n  - id: 1001\n    host: 10.0.0.11\n";
    let m = crate::manifest::parse(without, Path::new("/srv/wk/cluster.yaml")).expect("manifest");
    assert_eq!(
        Transport::for_node(&m, &m.nodes[0]),
        Transport::LocalIn("/srv/wk".into())
    );
}

/// Local steps run in the manifest's directory, wherever wkctl was started (13.5).
#[tokio::test]
async fn local_steps_run_in_the_manifest_directory() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("marker"), "here").unwrap();
    let t = Transport::LocalIn(d.path().to_path_buf());
    let out = run(&t, "cat ./marker", Duration::from_secs(5))
        .await
        .unwrap();
    assert!(out.success(), "{out:?}");
    assert_eq!(out.stdout.trim(), "here");
}

#[tokio::test]
async fn exit_codes_and_streams_are_reported() {
    let ok = local("echo out; echo err >&2", Duration::from_secs(10)).await;
    assert!(ok.success());
    assert_eq!(
        (ok.exit_code, ok.signal, ok.timed_out),
        (Some(0), None, false)
    );
    assert_eq!(ok.stdout, "out\n");
    assert_eq!(ok.stderr, "err\n");

    let failed = local("exit 3", Duration::from_secs(10)).await;
    assert!(!failed.success());
    assert_eq!(
        (failed.exit_code, failed.signal, failed.timed_out),
        (Some(3), None, false)
    );

    let killed = local("kill -KILL $$", Duration::from_secs(10)).await;
    assert!(!killed.success());
    assert_eq!((killed.exit_code, killed.signal), (None, Some(9)));
}

#[tokio::test]
async fn stdin_is_dev_null() {
    let out = local("cat; echo end", Duration::from_secs(10)).await;
    assert_eq!(out.stdout, "end\n");
}

#[tokio::test]
async fn quotes_and_dollar_reach_the_shell_intact() {
    let out = local(
        r#"x=1; printf '%s|' "it's" 'a"b' '$x' "$x" \$y"#,
        Duration::from_secs(10),
    )
    .await;
    assert!(out.success(), "{}", out.tail(10));
    assert_eq!(out.stdout, r#"it's|a"b|$x|1|$y|"#);
}

#[tokio::test]
async fn timeout_kills_the_whole_group_including_grandchildren() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = pid_file(&dir);
    let command = format!(
        "sleep 30 & echo $! > '{}'; wait; echo never",
        pid_file.display()
    );
    let started = Instant::now();
    let out = local(&command, Duration::from_millis(300)).await;
    assert!(out.timed_out);
    assert!(!out.success());
    assert!(!out.stdout.contains("never"));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert_gone_soon(read_pid(&pid_file).await).await;
}

#[tokio::test]
async fn timeout_of_a_plain_sleep_then_echo() {
    let out = local("sleep 30; echo never", Duration::from_millis(200)).await;
    assert!(out.timed_out);
    assert_eq!(out.stdout, "");
    assert!(out.duration < Duration::from_secs(5));
}

#[tokio::test]
async fn timeout_escalates_to_sigkill_when_sigterm_is_ignored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = pid_file(&dir);
    // Ignored signals stay ignored across exec, so `sleep` ignores SIGTERM too.
    let command = format!(
        "trap '' TERM; sleep 30 & echo $! > '{}'; wait",
        pid_file.display()
    );
    let out = local(&command, Duration::from_millis(200)).await;
    assert!(out.timed_out);
    assert_eq!(out.signal, Some(9));
    assert!(
        out.duration >= TERM_GRACE,
        "SIGKILL came before the grace period: {:?}",
        out.duration
    );
    assert_gone_soon(read_pid(&pid_file).await).await;
}

#[tokio::test]
async fn dropping_the_future_kills_the_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = pid_file(&dir);
    let command = format!("sleep 30 & echo $! > '{}'; wait", pid_file.display());
    let step = run(&Transport::Local, &command, Duration::from_mins(1));
    // Poll the step until the grandchild exists, then drop it, as Ctrl-C would.
    let cancelled = tokio::time::timeout(Duration::from_secs(10), async {
        tokio::select! {
            _ = step => panic!("the step finished on its own"),
            pid = read_pid(&pid_file) => pid,
        }
    })
    .await
    .expect("grandchild started");
    assert_gone_soon(cancelled).await;
}

#[tokio::test]
async fn output_is_capped_to_its_tail_and_both_streams_drain_concurrently() {
    // 1 MB on each stream: read one after the other, the pipes would fill and deadlock.
    let command = "head -c 1000000 /dev/zero | tr '\\0' a; printf END; \
                   head -c 1000000 /dev/zero | tr '\\0' b >&2; printf END >&2";
    let out = local(command, Duration::from_secs(20)).await;
    assert!(out.success());
    assert_eq!(out.stdout.len(), OUTPUT_CAP);
    assert!(out.stdout.ends_with("aaaEND"));
    assert_eq!(out.stderr.len(), OUTPUT_CAP);
    assert!(out.stderr.ends_with("bbbEND"));
}

#[tokio::test]
async fn a_daemon_holding_the_pipes_does_not_block_the_step() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = pid_file(&dir);
    // Like `wukongim -d`: the step exits, what it started keeps stdout open and runs on.
    let command = format!(
        "sleep 30 & echo $! > '{}'; echo started",
        pid_file.display()
    );
    let started = Instant::now();
    let out = local(&command, Duration::from_secs(20)).await;
    let daemon = read_pid(&pid_file).await;
    assert!(out.success());
    assert_eq!(out.stdout, "started\n");
    assert!(started.elapsed() < DRAIN_GRACE + Duration::from_secs(3));
    assert!(
        !is_gone(daemon),
        "a step that exited normally must not kill what it started"
    );
    let _ = nix::sys::signal::kill(Pid::from_raw(daemon), Signal::SIGKILL);
}

#[tokio::test]
async fn a_missing_program_is_a_spawn_error_naming_it() {
    let argv = ["wkctl-test-no-such-program".to_string(), "x".to_string()];
    let err = run_argv(&argv, None, Duration::from_secs(1))
        .await
        .expect_err("must not spawn");
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    assert!(
        err.to_string().contains("`wkctl-test-no-such-program`"),
        "{err}"
    );
    let ssh = spawn_error("ssh", &io::Error::from(io::ErrorKind::NotFound));
    assert!(
        ssh.to_string()
            .starts_with("cannot run `ssh`: program not found"),
        "{ssh}"
    );
}

#[test]
fn tail_shows_the_last_lines_of_each_stream_labelled() {
    let out = StepOutput {
        exit_code: Some(1),
        signal: None,
        timed_out: false,
        stdout: "1\n2\n3\n4\n".into(),
        stderr: "boom\n".into(),
        duration: Duration::ZERO,
    };
    assert_eq!(
        out.tail(2),
        "stdout (last 2 of 4 lines):\n  3\n  4\nstderr:\n  boom\n"
    );
    let quiet = StepOutput {
        stdout: String::new(),
        stderr: String::new(),
        ..out
    };
    assert_eq!(quiet.tail(5), "(no output)\n");
}

#[test]
fn tail_buffer_keeps_the_last_bytes_and_whole_characters() {
    let mut t = Tail::default();
    for _ in 0..(3 * OUTPUT_CAP / 4) {
        t.push("é".as_bytes()); // 2 bytes each: 1.5 × the cap in total
    }
    t.push(b"!");
    let text = t.text();
    assert!(text.len() <= OUTPUT_CAP);
    assert!(text.len() >= OUTPUT_CAP - 1);
    assert!(text.ends_with("é!"));
    assert!(!text.contains('\u{FFFD}'), "cut inside a character");
}
