//! How a playbook step reaches a node's host (DESIGN §4): local `sh -c`, or the system
//! OpenSSH client, so the operator's keys, agent, `~/.ssh/config` and `known_hosts` apply.
//!
//! [`run`] spawns the step in its own process group with stdin at `/dev/null`, captures
//! stdout and stderr concurrently (each capped to its last [`OUTPUT_CAP`] bytes), and on
//! timeout stops the whole group: SIGTERM, a grace period, then SIGKILL. If the future is
//! dropped (Ctrl-C, DESIGN §6) the group is killed as well, so no step outlives wkctl.

use std::fmt::Write as _;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::task::JoinHandle;

use crate::manifest::{Manifest, Node};

/// Each captured stream keeps at most its last this many bytes.
pub const OUTPUT_CAP: usize = 256 * 1024;
/// After SIGTERM, how long the group gets to exit before SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(2);
/// After the step's process exits, how long to wait for the pipes to reach end of file.
/// A daemon it started (`wukongim -d`) may keep them open forever.
const DRAIN_GRACE: Duration = Duration::from_secs(2);
/// `ssh -o ConnectTimeout=...`, in seconds.
const SSH_CONNECT_TIMEOUT_SECS: u32 = 10;

/// Where a step's command runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// On this machine, with `sh -c`, in the current directory.
    Local,
    /// On this machine, with `sh -c`, in this directory: the manifest's, so relative
    /// paths in a playbook mean the same wherever wkctl is started (13.5).
    LocalIn(std::path::PathBuf),
    /// On the node's host, through the system `ssh` client.
    Ssh(SshTarget),
}

/// One host reached with the system `ssh` client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    pub host: String,
    /// `None`: ssh decides (`~/.ssh/config`, then the local user name).
    pub user: Option<String>,
    /// `None`: ssh decides (`~/.ssh/config`, then 22).
    pub port: Option<u16>,
    pub identity_file: Option<String>,
    /// Each one is passed as `-o <option>`.
    pub options: Vec<String>,
}

impl SshTarget {
    /// `user@host`, or `host` when no user is set: the destination argument of `ssh`.
    fn destination(&self) -> String {
        match &self.user {
            Some(user) => format!("{user}@{}", self.host),
            None => self.host.clone(),
        }
    }
}

impl Transport {
    /// The transport for `node`: ssh when the manifest has an `ssh` section, else local.
    pub fn for_node(manifest: &Manifest, node: &Node) -> Transport {
        match &manifest.ssh {
            None => Transport::LocalIn(crate::inputs::manifest_dir(&manifest.path)),
            Some(ssh) => Transport::Ssh(SshTarget {
                host: node.host.clone(),
                user: ssh.user.clone(),
                port: ssh.port,
                identity_file: ssh.identity_file.clone(),
                options: ssh.options.clone(),
            }),
        }
    }

    /// For messages: `local`, or `ssh deploy@10.0.0.11:22`.
    pub fn describe(&self) -> String {
        match self {
            Transport::Local | Transport::LocalIn(_) => "local".to_string(),
            Transport::Ssh(t) => {
                let user = t.user.as_ref().map(|u| format!("{u}@")).unwrap_or_default();
                match t.port {
                    Some(port) if t.host.contains(':') => format!("ssh {user}[{}]:{port}", t.host),
                    Some(port) => format!("ssh {user}{}:{port}", t.host),
                    None => format!("ssh {user}{}", t.host),
                }
            }
        }
    }

    /// Exactly what [`run`] spawns for `command`.
    ///
    /// Over ssh the command is one argument after `--`: ssh hands it unchanged to the remote
    /// user's shell, which parses it just as `sh -c` does locally (the playbook renderer has
    /// already shell-quoted every substituted value, DESIGN §4).
    pub fn argv(&self, command: &str) -> Vec<String> {
        match self {
            Transport::Local | Transport::LocalIn(_) => {
                vec!["sh".into(), "-c".into(), command.into()]
            }
            Transport::Ssh(t) => {
                let mut argv: Vec<String> = vec![
                    "ssh".into(),
                    "-o".into(),
                    "BatchMode=yes".into(),
                    "-o".into(),
                    format!("ConnectTimeout={SSH_CONNECT_TIMEOUT_SECS}"),
                ];
                if let Some(port) = t.port {
                    argv.extend(["-p".into(), port.to_string()]);
                }
                if let Some(identity) = &t.identity_file {
                    argv.extend(["-i".into(), identity.clone()]);
                }
                for option in &t.options {
                    argv.extend(["-o".into(), option.clone()]);
                }
                argv.extend([t.destination(), "--".into(), command.into()]);
                argv
            }
        }
    }
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepOutput {
    /// The exit code, when the process exited (rather than being killed by a signal).
    pub exit_code: Option<i32>,
    /// The signal that killed the process, if one did.
    pub signal: Option<i32>,
    /// The step ran past its timeout and its process group was stopped.
    pub timed_out: bool,
    /// The last [`OUTPUT_CAP`] bytes of stdout, lossy UTF-8.
    pub stdout: String,
    /// The last [`OUTPUT_CAP`] bytes of stderr, lossy UTF-8.
    pub stderr: String,
    pub duration: Duration,
}

impl StepOutput {
    /// Exited 0 within its timeout.
    pub fn success(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out
    }

    /// How a step that did not succeed ended: `timed out after 20s`, `exited with 3`,
    /// `exited with a signal`.
    pub fn how_it_ended(&self, timeout_s: f64) -> String {
        if self.timed_out {
            format!("timed out after {timeout_s}s")
        } else {
            format!(
                "exited with {}",
                self.exit_code
                    .map_or_else(|| "a signal".into(), |c| c.to_string())
            )
        }
    }

    /// The last `lines` lines of stdout, then of stderr, each under a label; empty streams
    /// are left out. The two streams were captured separately, so their interleaving is lost.
    pub fn tail(&self, lines: usize) -> String {
        let mut out = String::new();
        for (label, text) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            let all: Vec<&str> = text.lines().collect();
            if all.is_empty() {
                continue;
            }
            let shown = &all[all.len().saturating_sub(lines)..];
            // Writing to a String cannot fail.
            if shown.len() < all.len() {
                let _ = writeln!(
                    out,
                    "{label} (last {} of {} lines):",
                    shown.len(),
                    all.len()
                );
            } else {
                let _ = writeln!(out, "{label}:");
            }
            for line in shown {
                let _ = writeln!(out, "  {line}");
            }
        }
        if out.is_empty() {
            out.push_str("(no output)\n");
        }
        out
    }
}

/// Runs `command` through `transport`, stopping it after `timeout`.
///
/// Returns `Err` only when the process cannot be spawned (the message names the program,
/// e.g. `ssh` not installed); a failing, killed or timed-out step is an `Ok` [`StepOutput`].
pub async fn run(
    transport: &Transport,
    command: &str,
    timeout: Duration,
) -> io::Result<StepOutput> {
    let cwd = match transport {
        Transport::LocalIn(dir) => Some(dir.as_path()),
        _ => None,
    };
    run_argv(&transport.argv(command), cwd, timeout).await
}

async fn run_argv(
    argv: &[String],
    cwd: Option<&std::path::Path>,
    timeout: Duration,
) -> io::Result<StepOutput> {
    let Some((program, rest)) = argv.split_first() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "empty command line",
        ));
    };
    let mut cmd = tokio::process::Command::new(program);
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    cmd.args(rest)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|e| spawn_error(program, &e))?;
    // The child leads its own group, so the group id is its pid.
    let mut group = GroupGuard {
        pgid: child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw),
        exited: false,
        readers: Vec::new(),
    };
    let stdout = Arc::new(Mutex::new(Tail::default()));
    let stderr = Arc::new(Mutex::new(Tail::default()));
    if let Some(pipe) = child.stdout.take() {
        group
            .readers
            .push(tokio::spawn(capture(pipe, Arc::clone(&stdout))));
    }
    if let Some(pipe) = child.stderr.take() {
        group
            .readers
            .push(tokio::spawn(capture(pipe, Arc::clone(&stderr))));
    }

    let (status, timed_out) = if let Ok(status) = tokio::time::timeout(timeout, child.wait()).await
    {
        (status?, false)
    } else {
        group.signal(Signal::SIGTERM);
        let status = if let Ok(status) = tokio::time::timeout(TERM_GRACE, child.wait()).await {
            status?
        } else {
            group.signal(Signal::SIGKILL);
            child.wait().await?
        };
        // The leader may have gone on SIGTERM while something it started ignores it.
        group.signal(Signal::SIGKILL);
        (status, true)
    };
    group.exited = true;
    let duration = started.elapsed();

    // Let the readers reach end of file, but not forever: a daemon started by the step may
    // hold the pipes open (it is deliberately left running).
    // Readers still running after that are aborted when `group` drops.
    let _ = tokio::time::timeout(DRAIN_GRACE, async {
        for reader in &mut group.readers {
            let _ = reader.await;
        }
    })
    .await;

    let (exit_code, signal) = decode(status);
    Ok(StepOutput {
        exit_code,
        signal,
        timed_out,
        // A host's output may hold the managerToken (a printed config, an echoing
        // proxy): scrubbed like every node answer (issue #18).
        stdout: crate::scrub::scrub_known(&take_text(&stdout)),
        stderr: crate::scrub::scrub_known(&take_text(&stderr)),
        duration,
    })
}

fn spawn_error(program: &str, e: &io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::NotFound {
        io::Error::new(
            e.kind(),
            format!("cannot run `{program}`: program not found (is it installed and on PATH?)"),
        )
    } else {
        io::Error::new(e.kind(), format!("cannot run `{program}`: {e}"))
    }
}

fn decode(status: ExitStatus) -> (Option<i32>, Option<i32>) {
    (status.code(), status.signal())
}

/// Kills the step's process group when dropped before the step's process exited: the
/// future of [`run`] was cancelled (Ctrl-C) and nothing it started may keep running.
/// Also stops the output readers, which a daemon holding the pipes would keep alive.
struct GroupGuard {
    pgid: Option<Pid>,
    exited: bool,
    readers: Vec<JoinHandle<()>>,
}

impl GroupGuard {
    fn signal(&self, signal: Signal) {
        if let Some(pgid) = self.pgid {
            // ESRCH (the group is already gone) is the outcome we want.
            let _ = killpg(pgid, signal);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if !self.exited {
            self.signal(Signal::SIGKILL);
        }
        for reader in &self.readers {
            reader.abort();
        }
    }
}

/// The last [`OUTPUT_CAP`] bytes of a stream.
#[derive(Default)]
struct Tail {
    bytes: Vec<u8>,
}

impl Tail {
    fn push(&mut self, chunk: &[u8]) {
        self.bytes.extend_from_slice(chunk);
        // Trim in batches so a chatty stream costs amortised O(1) per byte.
        if self.bytes.len() > 2 * OUTPUT_CAP {
            let excess = self.bytes.len() - OUTPUT_CAP;
            self.bytes.drain(..excess);
        }
    }

    fn text(&self) -> String {
        let start = self.bytes.len().saturating_sub(OUTPUT_CAP);
        let mut kept = &self.bytes[start..];
        if start > 0 {
            // Do not start in the middle of a UTF-8 sequence.
            while let [first, rest @ ..] = kept {
                if first & 0xC0 != 0x80 {
                    break;
                }
                kept = rest;
            }
        }
        String::from_utf8_lossy(kept).into_owned()
    }
}

async fn capture(mut pipe: impl AsyncRead + Unpin, into: Arc<Mutex<Tail>>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => lock(&into).push(&buf[..n]),
        }
    }
}

fn lock(tail: &Mutex<Tail>) -> std::sync::MutexGuard<'_, Tail> {
    // A reader never panics while holding the lock; recover the data if one somehow did.
    tail.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn take_text(tail: &Mutex<Tail>) -> String {
    lock(tail).text()
}

#[cfg(test)]
mod tests;
