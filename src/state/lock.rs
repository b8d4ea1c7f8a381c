//! The cluster lock (DESIGN §6): `.wkctl/<name>/lock` and the per-user lock of each
//! cluster, created atomically (`O_EXCL`) with the owner's pid, host and start time; a
//! lock whose process is gone is stale.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{StateDir, now_ms};
use crate::error::WkError;

/// The lock keys of a cluster's nodes: one run per cluster, independent of where its
/// manifest lives, what it is called there and how it spells its nodes' addresses. Each
/// node's API URL gives its literal `name:host:port/path` and, for every address the host
/// resolves to, `addr:ip:port/path`, where any address of this machine (loopback,
/// unspecified, or one of its interfaces) reads `local:port/path`: `http://localhost:5001`,
/// `http://127.0.0.1:5001/` and `http://<this host's LAN IP>:5001` are one node. (Each kind
/// has its own prefix: a host named `local` is not this machine.) Two runs
/// whose manifests share any node share a key, and only one of them gets it (DESIGN §6).
/// Sorted, without repeats.
pub fn cluster_lock_keys(apis: &[&str]) -> Vec<String> {
    let mut keys: Vec<String> = apis.iter().flat_map(|a| endpoint_keys(a)).collect();
    keys.sort();
    keys.dedup();
    keys
}

/// The keys of one API URL (see [`cluster_lock_keys`]). A URL that does not parse is
/// keyed by its trimmed, lower-cased text (`text:`); a host that does not resolve by its
/// name alone.
fn endpoint_keys(api: &str) -> Vec<String> {
    use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
    let text = api.trim().trim_end_matches('/').to_ascii_lowercase();
    let Ok(url) = url::Url::parse(&text) else {
        return vec![format!("text:{text}")];
    };
    let (Some(host), Some(port)) = (url.host(), url.port_or_known_default()) else {
        return vec![format!("text:{text}")];
    };
    let path = url.path().trim_end_matches('/');
    let key = |ip: IpAddr| {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 @ IpAddr::V4(_) => v4,
        };
        if is_this_machine(ip) {
            format!("local:{port}{path}")
        } else {
            format!("addr:{}{path}", SocketAddr::new(ip, port))
        }
    };
    let mut keys = vec![format!("name:{host}:{port}{path}")];
    match host {
        url::Host::Ipv4(ip) => keys.push(key(ip.into())),
        url::Host::Ipv6(ip) => keys.push(key(ip.into())),
        url::Host::Domain(name) => {
            if let Ok(addrs) = (name, port).to_socket_addrs() {
                keys.extend(addrs.map(|a| key(a.ip())));
            }
        }
    }
    keys
}

/// Loopback, unspecified, or assigned to one of this machine's interfaces (a socket can
/// be bound to it; binding to another machine's address fails with `EADDRNOTAVAIL`).
fn is_this_machine(ip: std::net::IpAddr) -> bool {
    ip.is_loopback()
        || ip.is_unspecified()
        || std::net::UdpSocket::bind(std::net::SocketAddr::new(ip, 0)).is_ok()
}

/// The directory name of one lock key under [`user_lock_base`].
pub fn lock_dir_name(key: &str) -> String {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(key.as_bytes());
    format!("node-{}", &crate::manifest::hex(&h)[..16])
}

/// Where the per-user cluster locks live: `$WKCTL_LOCK_DIR`, else
/// `$XDG_STATE_HOME/wkctl/locks`, else `~/.local/state/wkctl/locks`, else the temp dir.
pub fn user_lock_base() -> PathBuf {
    if let Some(d) = std::env::var_os("WKCTL_LOCK_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("wkctl").join("locks");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(h).join(".local/state/wkctl/locks");
    }
    std::env::temp_dir().join(format!(
        "wkctl-locks-{}",
        std::env::var("USER").unwrap_or_else(|_| "user".into())
    ))
}

/// The lock keys of a cluster's members as the cluster itself names them (`/cluster/nodes`:
/// each member's id and cluster address, `member:<id>@<addr>`): the same whatever address
/// this machine reaches the APIs by (a tunnel, a proxy, a NAT'd port), so a run through
/// `ssh -L` and one on the nodes' own addresses meet here. Sorted, without repeats.
pub fn member_lock_keys(members: &[(u64, &str)]) -> Vec<String> {
    let mut keys: Vec<String> = members
        .iter()
        .filter(|(_, addr)| !addr.trim().is_empty())
        .map(|(id, addr)| format!("member:{id}@{}", addr.trim().to_ascii_lowercase()))
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Where the per-user locks of one cluster live, one per [`cluster_lock_keys`] key
/// (nothing is created).
pub fn cluster_lock_locations(apis: &[&str]) -> Vec<StateDir> {
    lock_locations(&cluster_lock_keys(apis))
}

/// Where the per-user locks of `keys` live (nothing is created).
pub fn lock_locations(keys: &[String]) -> Vec<StateDir> {
    let base = user_lock_base();
    keys.iter()
        .map(|k| StateDir {
            root: base.join(lock_dir_name(k)),
        })
        .collect()
}

/// The per-user locks of one cluster (one run per cluster, wherever it is started), their
/// directories created.
pub fn cluster_lock_dirs(apis: &[&str]) -> Result<Vec<StateDir>, WkError> {
    lock_dirs(&cluster_lock_keys(apis))
}

/// The per-user locks of `keys`, their directories created.
pub fn lock_dirs(keys: &[String]) -> Result<Vec<StateDir>, WkError> {
    let dirs = lock_locations(keys);
    for dir in &dirs {
        fs::create_dir_all(&dir.root).map_err(|e| {
            WkError::no(
                format!(
                    "cannot create the cluster lock directory `{}`: {e}",
                    dir.root.display()
                ),
                "set `WKCTL_LOCK_DIR` to a writable directory",
            )
        })?;
    }
    Ok(dirs)
}

/// The live owner of any of `dirs`' locks (the first found), if one is held.
pub fn live_owner(dirs: &[StateDir]) -> Option<LockOwner> {
    dirs.iter().filter_map(lock_owner).find(|o| !o.is_stale())
}

/// Holds every lock of a cluster ([`acquire_cluster`]); each is removed when dropped.
#[derive(Debug)]
pub struct ClusterLock {
    _guards: Vec<LockGuard>,
    /// The owners of the stale or foreign locks taken over, each once (reported to the
    /// operator).
    pub took_over: Vec<LockOwner>,
}

/// Takes every lock of `dirs` (in their sorted order, so two runs sharing keys meet at the
/// first they share and only one goes on), as [`acquire_as`] each, all or nothing: every
/// existing lock is judged first, so a refusal changes no lock file; and when one is lost
/// to a race on the way, those already taken are released and any stale lock taken over
/// is put back (its gone run stays named, its `--resume` pointed to).
pub fn acquire_cluster(
    dirs: &[StateDir],
    takeover: Takeover,
    me: &LockOwner,
) -> Result<ClusterLock, WkError> {
    for dir in dirs {
        let path = dir.lock_path();
        if path.exists() {
            judge(read_owner(&path).as_ref(), &path, takeover)?;
        }
    }
    let mut guards: Vec<LockGuard> = Vec::with_capacity(dirs.len());
    for dir in dirs {
        match acquire_as(dir, takeover, me.clone()) {
            Ok(g) => guards.push(g),
            Err(e) => {
                for g in guards {
                    let (path, old) = (g.path.clone(), g.took_over.clone());
                    drop(g);
                    if let Some(old) = old
                        && let Ok(body) = serde_json::to_vec(&old)
                        && let Ok(mut f) =
                            OpenOptions::new().write(true).create_new(true).open(&path)
                    {
                        let _ = f.write_all(&body).and_then(|()| f.sync_all());
                    }
                }
                return Err(e);
            }
        }
    }
    let mut took_over: Vec<LockOwner> = Vec::new();
    for o in guards.iter().filter_map(|g| g.took_over.clone()) {
        if !took_over.contains(&o) {
            took_over.push(o);
        }
    }
    Ok(ClusterLock {
        _guards: guards,
        took_over,
    })
}

/// Reads a lock's owner, if the lock exists and is readable.
pub fn lock_owner(dir: &StateDir) -> Option<LockOwner> {
    read_owner(&dir.lock_path())
}

/// Refuses while a live process holds `dir`'s lock (unless `break_lock`), naming it and
/// where it keeps its state. A stale lock (its process gone) or none does not refuse.
pub(super) fn refuse_if_live(dir: &StateDir, break_lock: bool) -> Result<(), WkError> {
    if break_lock {
        return Ok(());
    }
    match lock_owner(dir) {
        Some(owner) if !owner.is_stale() => Err(held_by(&owner, &dir.lock_path())),
        _ => Ok(()),
    }
}

/// The refusal of a lock a live run holds.
fn held_by(owner: &LockOwner, path: &Path) -> WkError {
    WkError::no(
        format!(
            "another wkctl run holds the cluster lock ({})",
            owner.describe()
        ),
        format!(
            "wait for it to finish; if you are sure it is gone, pass `--break-lock` (lock file `{}`)",
            path.display()
        ),
    )
}

/// The owner recorded in the lock file at `path`, if it exists and is readable.
fn read_owner(path: &Path) -> Option<LockOwner> {
    fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str::<LockOwner>(&t).ok())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockOwner {
    pub pid: u32,
    pub host: String,
    pub started_at_ms: u64,
    /// The run's state directory (where its `--resume` works from).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_dir: Option<String>,
    /// The kernel's boot id when the lock was written (Linux `/proc`): after a reboot
    /// every pid of the old boot is gone, whatever runs under that number now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
    /// The owner process's start time (`/proc/<pid>/stat` field 22, clock ticks since
    /// boot): a pid reused by another process has another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proc_start: Option<u64>,
}

impl LockOwner {
    pub fn me() -> Self {
        let pid = std::process::id();
        LockOwner {
            pid,
            host: hostname(),
            started_at_ms: now_ms(),
            state_dir: None,
            boot_id: boot_id(),
            proc_start: proc_start(pid),
        }
    }
    pub fn describe(&self) -> String {
        let age = now_ms().saturating_sub(self.started_at_ms) / 1000;
        let from = self
            .state_dir
            .as_deref()
            .map(|d| format!(", state in `{d}`"))
            .unwrap_or_default();
        format!(
            "pid {} on host `{}`, started {age}s ago{from}",
            self.pid, self.host
        )
    }
    /// Same host and the owner process is gone: its pid no longer exists, or it is not
    /// the process that wrote the lock (another boot, or another start time under the
    /// same pid). A lock written without those marks (an older wkctl) is judged by its
    /// pid alone; another host's lock is never stale.
    pub fn is_stale(&self) -> bool {
        if self.host != hostname() {
            return false;
        }
        if !pid_alive(self.pid) {
            return true;
        }
        let other_boot = matches!((&self.boot_id, boot_id()), (Some(a), Some(b)) if *a != b);
        let other_process =
            matches!((self.proc_start, proc_start(self.pid)), (Some(a), Some(b)) if a != b);
        other_boot || other_process
    }
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`), where the kernel has one.
fn boot_id() -> Option<String> {
    fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The start time of process `pid` (`/proc/<pid>/stat` field 22, after the `comm` field,
/// which may hold spaces and parentheses), where `/proc` has it.
fn proc_start(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 1..];
    // Fields 3.. follow `comm`: field 22 is the 20th of them.
    after_comm.split_whitespace().nth(19)?.parse().ok()
}

/// How far `acquire` may go when the lock exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Takeover {
    /// Never take an existing lock.
    Never,
    /// Take a stale lock (same host, dead pid): `upgrade --resume`.
    Stale,
    /// Take any lock: `--break-lock`.
    Force,
}

/// Holds the lock; removes it when dropped.
#[derive(Debug)]
pub struct LockGuard {
    path: PathBuf,
    owner: LockOwner,
    /// Set when a stale or foreign lock was taken over (reported to the operator).
    pub took_over: Option<LockOwner>,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        // Remove only if it is still ours.
        if read_owner(&self.path).is_some_and(|o| o == self.owner) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

pub fn acquire(dir: &StateDir, takeover: Takeover) -> Result<LockGuard, WkError> {
    acquire_as(dir, takeover, LockOwner::me())
}

/// [`acquire`] recording `me` (with the run's state directory) as the owner.
pub fn acquire_as(dir: &StateDir, takeover: Takeover, me: LockOwner) -> Result<LockGuard, WkError> {
    let path = dir.lock_path();
    let body = serde_json::to_vec(&me).map_err(|e| WkError::no(e.to_string(), "internal error"))?;
    let mut took_over = None;
    for _ in 0..2 {
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut f) => {
                f.write_all(&body)
                    .and_then(|()| f.sync_all())
                    .map_err(|e| {
                        WkError::no(
                            format!("cannot write lock `{}`: {e}", path.display()),
                            "check free disk space and permissions",
                        )
                    })?;
                return Ok(LockGuard {
                    path,
                    owner: me,
                    took_over,
                });
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let owner = read_owner(&path);
                judge(owner.as_ref(), &path, takeover)?;
                let Some(owner) = owner else {
                    // Unreadable, and `--break-lock`.
                    let _ = fs::remove_file(&path);
                    continue;
                };
                // Take it over by renaming it away first: of several runs that judged the
                // same lock stale, only one rename succeeds, and the renamed file must
                // still be the owner judged (not a lock another run just created).
                let aside =
                    dir.root
                        .join(format!(".lock.taken-{}-{}", std::process::id(), now_ms()));
                if fs::rename(&path, &aside).is_err() {
                    continue;
                }
                let still = read_owner(&aside);
                let _ = fs::remove_file(&aside);
                if still.as_ref() != Some(&owner) {
                    return Err(WkError::no(
                        "another wkctl run took the cluster lock at the same moment",
                        "check which run holds it (`.wkctl/<name>/lock`) before trying again",
                    ));
                }
                took_over = Some(owner);
            }
            Err(e) => {
                return Err(WkError::no(
                    format!("cannot create lock `{}`: {e}", path.display()),
                    "check free disk space and permissions of the state directory",
                ));
            }
        }
    }
    Err(WkError::no(
        format!("lost a race for lock `{}`", path.display()),
        "another wkctl started at the same moment; try again",
    ))
}

/// Whether an existing lock at `path` (its owner, `None` when unreadable) may be taken
/// under `takeover`; the refusal when not.
fn judge(owner: Option<&LockOwner>, path: &Path, takeover: Takeover) -> Result<(), WkError> {
    let Some(owner) = owner else {
        if takeover == Takeover::Force {
            return Ok(());
        }
        return Err(WkError::no(
            format!("lock `{}` exists but cannot be read", path.display()),
            "if no other wkctl runs for this cluster, pass `--break-lock`",
        ));
    };
    let stale = owner.is_stale();
    let allowed = match takeover {
        Takeover::Force => true,
        Takeover::Stale => stale,
        Takeover::Never => false,
    };
    if allowed {
        return Ok(());
    }
    Err(if stale {
        WkError::no(
            format!(
                "cluster is locked by a run that is gone ({})",
                owner.describe()
            ),
            "its state is saved: continue it with `wkctl upgrade --resume` (which takes the stale lock), or `--break-lock`",
        )
    } else {
        held_by(owner, path)
    })
}

pub fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

fn pid_alive(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None) {
        Ok(()) | Err(nix::errno::Errno::EPERM) => true,
        Err(_) => false,
    }
}
