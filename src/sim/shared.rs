//! State shared by every task of `wksim serve`: the model behind one mutex, the clock that
//! maps simulated to real time, per-node request counters, the event log and the listeners.
//! Time is driven by one task that sleeps until the next scheduled transition (no polling).

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use tokio::sync::{Notify, watch};

use super::http::server::{self, Incarnation};
use super::model::{Cluster, Event};

/// Simulated time = real time since start × speed (in ms).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub start: Instant,
    pub speed: f64,
}

impl Clock {
    pub fn now(&self) -> u64 {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let ms = (self.start.elapsed().as_secs_f64() * 1000.0 * self.speed) as u64;
        ms
    }
    /// Real duration of `sim_ms` simulated milliseconds.
    #[allow(clippy::cast_precision_loss)]
    pub fn real(&self, sim_ms: u64) -> Duration {
        Duration::from_secs_f64(sim_ms as f64 / 1000.0 / self.speed)
    }
}

#[derive(Default)]
pub struct Listeners {
    pub api: Option<Incarnation>,
    pub cluster: Option<Incarnation>,
}

pub struct Shared {
    pub model: Mutex<Cluster>,
    pub clock: Clock,
    pub requests: Mutex<HashMap<u64, BTreeMap<String, u64>>>,
    pub listeners: Mutex<HashMap<u64, Listeners>>,
    pub events_path: PathBuf,
    events_file: Mutex<File>,
    /// Bumped after every applied change; waiters re-check their condition.
    pub changed: watch::Sender<u64>,
    /// Wakes the driver so it recomputes its deadline.
    pub wake: Notify,
}

impl Shared {
    pub fn new(model: Cluster, clock: Clock, events_path: PathBuf) -> std::io::Result<Arc<Shared>> {
        let file = File::create(&events_path)?;
        Ok(Arc::new(Shared {
            model: Mutex::new(model),
            clock,
            requests: Mutex::new(HashMap::new()),
            listeners: Mutex::new(HashMap::new()),
            events_path,
            events_file: Mutex::new(file),
            changed: watch::channel(0).0,
            wake: Notify::new(),
        }))
    }

    /// The model, locked.
    pub fn model(&self) -> MutexGuard<'_, Cluster> {
        locked(&self.model)
    }

    pub fn count(&self, id: u64, path: &str) {
        let mut r = locked(&self.requests);
        *r.entry(id)
            .or_default()
            .entry(path.to_string())
            .or_default() += 1;
    }

    /// Runs `f` on the model at the current time, then applies due transitions, writes events,
    /// reconciles listeners (all under the model lock, so the order is the model's) and wakes
    /// waiters and the driver.
    pub fn apply<T>(self: &Arc<Self>, f: impl FnOnce(&mut Cluster, u64) -> T) -> T {
        let out = self.step(f);
        self.wake.notify_one();
        out
    }

    fn step<T>(self: &Arc<Self>, f: impl FnOnce(&mut Cluster, u64) -> T) -> T {
        let now = self.clock.now();
        let out = {
            let mut c = self.model();
            c.advance(now);
            let out = f(&mut c, now);
            c.advance(now);
            let events = std::mem::take(&mut c.events);
            self.write_events(&events, c.opts.epoch_ms, c.opts.speed);
            let mut dirty: Vec<u64> = std::mem::take(&mut c.dirty).into_iter().collect();
            if c.opts.external {
                // Agents own the listeners (one container per node).
                dirty.clear();
            }
            for id in dirty {
                if let Some(n) = c.node(id) {
                    self.reconcile(
                        id,
                        n.phase.api_open(),
                        n.phase.running(),
                        n.api_port,
                        n.cluster_port,
                    );
                }
            }
            out
        };
        self.changed.send_modify(|v| *v += 1);
        out
    }

    fn write_events(&self, events: &[Event], epoch_ms: i64, speed: f64) {
        if events.is_empty() {
            return;
        }
        let mut f = locked(&self.events_file);
        for e in events {
            let line = event_json(e, epoch_ms, speed).to_string();
            let _ = writeln!(f, "{line}");
            let _ = f.flush();
        }
    }

    fn reconcile(
        self: &Arc<Self>,
        id: u64,
        api_open: bool,
        running: bool,
        api_port: u16,
        cluster_port: u16,
    ) {
        let mut all = locked(&self.listeners);
        let l = all.entry(id).or_default();
        match (api_open, l.api.is_some()) {
            (true, false) => match server::bind(api_port) {
                Ok(sock) => l.api = Some(server::open_api(self, id, sock)),
                Err(e) => report(&format!("node {id}: cannot bind API port {api_port}: {e}")),
            },
            (false, true) => l.api.take().expect("checked").close(), // ok: internal invariant
            _ => {}
        }
        match (running, l.cluster.is_some()) {
            (true, false) => match server::bind(cluster_port) {
                Ok(sock) => l.cluster = Some(server::open_cluster(sock)),
                Err(e) => report(&format!(
                    "node {id}: cannot bind cluster port {cluster_port}: {e}"
                )),
            },
            (false, true) => l.cluster.take().expect("checked").close(), // ok: internal invariant
            _ => {}
        }
    }

    /// Waits until `cond` holds on the model (re-checked after every change).
    pub async fn wait_until(&self, cond: impl Fn(&Cluster) -> bool) {
        let mut rx = self.changed.subscribe();
        loop {
            if cond(&self.model()) {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// The time driver: sleeps until the next deadline or until woken by a command.
    pub async fn drive(self: Arc<Self>) {
        loop {
            let next = self.model().next_deadline();
            let sleep = match next {
                Some(at) => tokio::time::Instant::from_std(self.clock.start + self.clock.real(at)),
                None => tokio::time::Instant::now() + Duration::from_hours(1),
            };
            tokio::select! {
                () = tokio::time::sleep_until(sleep) => {}
                () = self.wake.notified() => {}
            }
            self.step(|_, _| ());
        }
    }
}

/// `m`, locked. A poisoned lock means a task panicked while holding it: the simulator's
/// state is no longer trustworthy, so every later use panics too (and the test fails).
pub fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock()
        .expect("a wksim task panicked while holding a lock") // ok: poisoned only after a panic elsewhere
}

#[allow(clippy::print_stderr)]
fn report(msg: &str) {
    eprintln!("wksim: {msg}");
}

/// One `events.jsonl` line: `ts_ms` and `kind` always, `node` null when cluster-wide.
pub fn event_json(e: &Event, epoch_ms: i64, speed: f64) -> Value {
    let mut m = Map::new();
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    let ts = epoch_ms + (e.at as f64 / speed) as i64;
    m.insert("ts_ms".into(), ts.into());
    m.insert("node".into(), e.node.map_or(Value::Null, Value::from));
    m.insert("kind".into(), e.kind.into());
    for (k, v) in [
        ("from", &e.from),
        ("to", &e.to),
        ("version", &e.version),
        ("detail", &e.detail),
    ] {
        if let Some(v) = v {
            m.insert(k.into(), v.clone().into());
        }
    }
    if let Some(settled) = e.settled {
        m.insert("cluster_settled".into(), settled.into());
    }
    Value::Object(m)
}
