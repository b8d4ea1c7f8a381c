//! Table-driven tests of the tracker: one row per situation, each row a sequence of
//! views with their times and the verdict expected after each.

use std::time::{Duration, Instant};

use super::problems::{peer_down_cause, reason_of};
use super::*;
use crate::gate::{GateTarget, NodeBaseline};
use crate::probe::fixtures::{at, settled, v};
use crate::probe::{InfoAnswer, ProbeError};

const OLD: &str = "v2.0.10-20241221";
const NEW: &str = "v2.1.2-20250120";

fn rules() -> Rules {
    Rules {
        stable_for: Duration::from_secs(10),
        node_timeout: Duration::from_mins(1),
        poll: Duration::from_secs(1),
        soak: Duration::from_secs(5),
        accept_stuck_joining: false,
    }
}

/// What a feed must answer.
#[derive(Debug, Clone, Copy)]
enum Expect {
    Ready,
    Wait,
    /// Waiting, on this signal.
    WaitOn(Signal),
    Timeout,
    PeerDown(u64),
    CrashLoop,
    Auth,
    Unhealthy,
}

type Edit = fn(&mut ClusterView);

/// One feed: seconds since the phase began, the cluster on which version (uptimes
/// `100 + secs`, as if nothing restarted), an edit, and the expected verdict.
struct Feed {
    secs: u64,
    version: &'static str,
    edit: Edit,
    expect: Expect,
}

fn f(secs: u64, version: &'static str, edit: Edit, expect: Expect) -> Feed {
    Feed {
        secs,
        version,
        edit,
        expect,
    }
}

fn none(_: &mut ClusterView) {}

/// Node 1002 stopped at t=0 after 100 s on the old version.
fn baseline() -> NodeBaseline {
    NodeBaseline {
        id: 1002,
        version: Some(v(OLD)),
        commit: Some(format!("commit-{OLD}")),
        uptime: Some(Duration::from_secs(100)),
        observed_at: at(0),
    }
}

fn gate() -> Phase {
    Phase::Gate {
        baseline: baseline(),
        target: GateTarget::new(v(NEW)),
    }
}

/// Runs a row: primes the memory with a settled view at t=0 (Idle), begins `phase` at
/// t=0, then checks every feed.
fn run(name: &str, phase: &Phase, start_returned: Option<u64>, feeds: &[Feed]) {
    let t0 = Instant::now();
    let mut tr = Tracker::new(rules());
    assert_eq!(
        tr.feed(&settled(OLD, 0), t0),
        Verdict::Ready,
        "{name}: idle"
    );
    tr.begin(phase.clone(), t0);
    if let Some(s) = start_returned {
        tr.start_returned(t0 + Duration::from_secs(s));
    }
    for (i, feed) in feeds.iter().enumerate() {
        let mut view = settled(feed.version, feed.secs);
        (feed.edit)(&mut view);
        let got = tr.feed(&view, t0 + Duration::from_secs(feed.secs));
        let ok = match (feed.expect, &got) {
            (Expect::WaitOn(s), Verdict::Wait(w)) => w.signal == Some(s),
            (Expect::PeerDown(id), Verdict::Fail(Failure::PeerDown { node, .. })) => *node == id,
            (e, g) => matches!(
                (e, g),
                (Expect::Ready, Verdict::Ready)
                    | (Expect::Wait, Verdict::Wait(_))
                    | (Expect::Timeout, Verdict::Fail(Failure::Timeout { .. }))
                    | (Expect::CrashLoop, Verdict::Fail(Failure::CrashLoop { .. }))
                    | (Expect::Unhealthy, Verdict::Fail(Failure::Unhealthy { .. }))
                    | (Expect::Auth, Verdict::Fail(Failure::Auth { .. }))
            ),
        };
        assert!(
            ok,
            "{name}: feed {i} at {}s: expected {:?}, got {got:?}",
            feed.secs, feed.expect
        );
    }
}

// ---- edits ------------------------------------------------------------------------------

/// Node 1002 is down (connection refused).
fn down_1002(view: &mut ClusterView) {
    down(view, 1002);
}
fn down(view: &mut ClusterView, id: u64) {
    let n = view.node_mut(id).unwrap();
    n.reachable = false;
    n.error = Some(ProbeError::Refused);
    n.health = crate::probe::HealthState::Unknown;
    n.info_answer = InfoAnswer::Failed("refused".into());
    n.uptime = None;
}
/// Node 1002 runs the new version, up since t=2 (uptime = secs - 2).
fn back_1002(view: &mut ClusterView) {
    let secs = secs_of(view);
    let n = view.node_mut(1002).unwrap();
    n.uptime = Some(Duration::from_secs(secs.saturating_sub(2)));
}
/// Node 1002 back but stale: knows no controller, config behind.
fn stale_1002(view: &mut ClusterView) {
    back_1002(view);
    let n = view.node_mut(1002).unwrap();
    n.info_answer = InfoAnswer::LeaderNotFound;
    n.config_version = Some(400);
}
fn secs_of(view: &ClusterView) -> u64 {
    view.observed_at.duration_since(at(0)).unwrap().as_secs()
}
/// Node 1003 restarted at t=1 (uptime = secs - 1), within the controller's offline
/// window: still online in the controller's view, `/health` ok, but not rejoined.
fn peer_restarted_stale(view: &mut ClusterView) {
    let secs = secs_of(view);
    let n = view.node_mut(1003).unwrap();
    n.uptime = Some(Duration::from_secs(secs.saturating_sub(1)));
    n.info_answer = InfoAnswer::LeaderNotFound;
    n.config_version = Some(400);
}
/// Node 1003 restarted at t=1 and has rejoined (knows the controller, caught up).
fn peer_restarted_rejoined(view: &mut ClusterView) {
    let secs = secs_of(view);
    view.node_mut(1003).unwrap().uptime = Some(Duration::from_secs(secs.saturating_sub(1)));
}
fn peer_offline(view: &mut ClusterView) {
    view.node_mut(1003).unwrap().info_online = Some(false);
}
fn peer_offline_simple(view: &mut ClusterView) {
    view.node_mut(1003).unwrap().simple_online = Some(false);
}
fn peer_cut_off(view: &mut ClusterView) {
    view.node_mut(1003).unwrap().info_answer = InfoAnswer::LeaderNotFound;
}
fn peer_lagging(view: &mut ClusterView) {
    view.node_mut(1003).unwrap().config_version = Some(410);
}
fn peer_not_joined(view: &mut ClusterView) {
    view.node_mut(1003).unwrap().info_status = Some(crate::probe::NodeStatus::Joining);
}
fn migrating(view: &mut ClusterView) {
    view.slots.as_mut().unwrap().migrating = vec![7];
}
fn unauthorized(view: &mut ClusterView) {
    let n = view.node_mut(1001).unwrap();
    n.error = Some(ProbeError::Unauthorized);
}
fn stopped_1002_peer_down(view: &mut ClusterView) {
    down_1002(view);
    down(view, 1003);
}
fn back_1002_peer_down(view: &mut ClusterView) {
    back_1002(view);
    down(view, 1003);
}
fn back_1002_peer_offline(view: &mut ClusterView) {
    back_1002(view);
    peer_offline(view);
}
fn stale_1002_peer_cut_off(view: &mut ClusterView) {
    stale_1002(view);
    peer_cut_off(view);
}
/// A controller election: nobody knows the controller, so a peer's `leader not found`
/// is not its own failure.
fn election(view: &mut ClusterView) {
    down_1002(view);
    view.info_from = None;
    view.slots = None;
    view.config_version = None;
    for id in [1001, 1003] {
        view.node_mut(id).unwrap().info_answer = InfoAnswer::LeaderNotFound;
    }
}
fn back_1002_peer_restarted(view: &mut ClusterView) {
    back_1002(view);
    peer_restarted_rejoined(view);
}
/// Node 1002's new process restarted at t=20 (uptime = secs - 20).
fn crashed_1002(view: &mut ClusterView) {
    let secs = secs_of(view);
    view.node_mut(1002).unwrap().uptime = Some(Duration::from_secs(secs - 20));
}
fn old_process_1002(view: &mut ClusterView) {
    // Still the old version, uptime growing: the stop never happened.
    view.node_mut(1002).unwrap().uptime = Some(Duration::from_secs(100 + secs_of(view)));
}

// ---- pre-stop ---------------------------------------------------------------------------

#[test]
fn pre_stop_table() {
    use Expect::{Auth, Ready, Timeout, Wait, WaitOn};
    let pre = Phase::PreStop { node: 1002 };
    let rows: Vec<(&str, Vec<Feed>)> = vec![
        (
            "settled cluster: stop at once",
            vec![f(1, OLD, none, Ready)],
        ),
        (
            // The hole: a peer restarted inside the offline window. Its /health is ok and
            // the controller still shows it online; only C, E and its uptime tell.
            "stale peer after a quick restart is not trusted",
            vec![
                f(2, OLD, peer_restarted_stale, WaitOn(Signal::ClusterSettled)),
                f(3, OLD, peer_restarted_rejoined, Wait),
                f(8, OLD, peer_restarted_rejoined, Wait),
                f(13, OLD, peer_restarted_rejoined, Ready),
            ],
        ),
        (
            "restarted peer that already looks fine still waits stable_for",
            vec![
                f(2, OLD, peer_restarted_rejoined, Wait),
                f(12, OLD, peer_restarted_rejoined, Ready),
            ],
        ),
        (
            "peer offline in the controller's view: wait, then refuse",
            vec![
                f(1, OLD, peer_offline, Wait),
                f(30, OLD, peer_offline, Wait),
                f(60, OLD, peer_offline, Timeout),
            ],
        ),
        (
            "peer not Joined (D)",
            vec![f(1, OLD, peer_not_joined, Wait)],
        ),
        (
            "peer config behind (E)",
            vec![f(1, OLD, peer_lagging, Wait)],
        ),
        (
            "peer does not know the controller (C)",
            vec![f(1, OLD, peer_cut_off, Wait)],
        ),
        (
            "slot migration (F), then settled",
            vec![f(1, OLD, migrating, Wait), f(2, OLD, none, Ready)],
        ),
        ("a 401 stops the run", vec![f(1, OLD, unauthorized, Auth)]),
        ("a peer down", vec![f(1, OLD, |v| down(v, 1003), Wait)]),
    ];
    for (name, feeds) in rows {
        run(name, &pre, None, &feeds);
    }
}

// ---- gate ------------------------------------------------------------------------------

#[test]
fn gate_table() {
    use Expect::{Auth, CrashLoop, PeerDown, Ready, Timeout, Wait, WaitOn};
    let rows: Vec<(&str, Vec<Feed>)> = vec![
        (
            "down, stale, rejoined, held for stable_for",
            vec![
                f(1, OLD, down_1002, WaitOn(Signal::ApiHealthy)),
                f(3, NEW, stale_1002, WaitOn(Signal::KnowsController)),
                f(4, NEW, back_1002, Wait),
                f(10, NEW, back_1002, Wait),
                f(14, NEW, back_1002, Ready),
            ],
        ),
        (
            "the old process never passes B",
            vec![
                f(1, OLD, old_process_1002, WaitOn(Signal::NewProcessOnTarget)),
                f(59, OLD, old_process_1002, Wait),
                f(60, OLD, old_process_1002, Timeout),
            ],
        ),
        (
            "peer stops answering: stops within 3 polls",
            vec![
                f(1, OLD, stopped_1002_peer_down, Wait),
                f(2, OLD, stopped_1002_peer_down, Wait),
                f(3, OLD, stopped_1002_peer_down, PeerDown(1003)),
            ],
        ),
        (
            "peer marked offline by the controller (health still ok)",
            vec![
                f(4, NEW, back_1002_peer_offline, Wait),
                f(5, NEW, back_1002_peer_offline, Wait),
                f(6, NEW, back_1002_peer_offline, PeerDown(1003)),
            ],
        ),
        (
            "peer offline in simpleNodes",
            vec![
                f(
                    4,
                    NEW,
                    |v| {
                        back_1002(v);
                        peer_offline_simple(v);
                    },
                    Wait,
                ),
                f(
                    5,
                    NEW,
                    |v| {
                        back_1002(v);
                        peer_offline_simple(v);
                    },
                    Wait,
                ),
                f(
                    6,
                    NEW,
                    |v| {
                        back_1002(v);
                        peer_offline_simple(v);
                    },
                    PeerDown(1003),
                ),
            ],
        ),
        (
            "peer cut off from the controller while others know it",
            vec![
                f(3, NEW, stale_1002_peer_cut_off, Wait),
                f(4, NEW, stale_1002_peer_cut_off, Wait),
                f(5, NEW, stale_1002_peer_cut_off, PeerDown(1003)),
            ],
        ),
        (
            "a controller election is not a peer failure",
            vec![
                f(1, OLD, election, Wait),
                f(2, OLD, election, Wait),
                f(3, OLD, election, Wait),
                f(4, OLD, election, Wait),
            ],
        ),
        (
            "peer restarted during the gate: at once",
            vec![
                f(4, NEW, back_1002, Wait),
                f(5, NEW, back_1002_peer_restarted, PeerDown(1003)),
            ],
        ),
        (
            "a peer that recovers resets its count",
            vec![
                f(4, NEW, back_1002_peer_down, Wait),
                f(5, NEW, back_1002_peer_down, Wait),
                f(6, NEW, back_1002, Wait),
                f(7, NEW, back_1002_peer_down, Wait),
                f(8, NEW, back_1002_peer_down, Wait),
            ],
        ),
        (
            "crash loop: the proven new process restarts",
            vec![
                f(4, NEW, back_1002, Wait),
                f(19, NEW, back_1002, Wait),
                f(22, NEW, crashed_1002, CrashLoop),
            ],
        ),
        (
            "crash loop hidden between polls: it went down, then came back",
            vec![
                f(4, NEW, back_1002, Wait),
                f(5, NEW, down_1002, Wait),
                f(30, NEW, crashed_1002, CrashLoop),
            ],
        ),
        ("a 401 mid-gate", vec![f(1, OLD, unauthorized, Auth)]),
    ];
    for (name, feeds) in rows {
        run(name, &gate(), None, &feeds);
    }
}

#[test]
fn the_gate_always_gets_stable_for_plus_two_polls_after_start() {
    // The steps after the stop took 59 of the 60 s: the node comes up at t=60.
    run(
        "long steps",
        &gate(),
        Some(59),
        &[
            // G needs a second observation: the hold starts at t=61.
            f(60, NEW, back_1002, Expect::Wait),
            f(61, NEW, back_1002, Expect::Wait),
            f(70, NEW, back_1002, Expect::Wait),
            f(71, NEW, back_1002, Expect::Ready),
        ],
    );
    run(
        "long steps, never ready",
        &gate(),
        Some(59),
        &[
            f(60, OLD, down_1002, Expect::Wait),
            f(70, OLD, down_1002, Expect::Wait),
            f(71, OLD, down_1002, Expect::Timeout),
        ],
    );
}

#[test]
fn a_dev_target_passes_only_on_a_new_commit() {
    let dev = Phase::Gate {
        baseline: NodeBaseline {
            version: Some(v(NEW)),
            commit: Some(format!("commit-{NEW}")),
            ..baseline()
        },
        target: GateTarget::new(v("v2.1.3-20250210-dev")),
    };
    let new_build = |view: &mut ClusterView| {
        back_1002(view);
        view.node_mut(1002).unwrap().commit = Some("0a1b2c3".into());
    };
    run(
        "dev build",
        &dev,
        None,
        &[
            f(4, NEW, new_build, Expect::Wait),
            f(5, NEW, new_build, Expect::Wait),
            f(15, NEW, new_build, Expect::Ready),
        ],
    );
    // The old image came back: same commit; never passes.
    run(
        "old image",
        &dev,
        None,
        &[
            f(
                4,
                NEW,
                back_1002,
                Expect::WaitOn(Signal::NewProcessOnTarget),
            ),
            f(60, NEW, back_1002, Expect::Timeout),
        ],
    );
}

// ---- soak -------------------------------------------------------------------------------

#[test]
fn soak_table() {
    use Expect::{CrashLoop, PeerDown, Ready, Unhealthy, Wait};
    let soak = Phase::Soak { node: 1002 };
    let rows: Vec<(&str, Vec<Feed>)> = vec![
        (
            "healthy for the soak",
            vec![f(1, OLD, none, Wait), f(5, OLD, none, Ready)],
        ),
        (
            "a node unreachable",
            vec![f(1, OLD, |v| down(v, 1003), Unhealthy)],
        ),
        ("a node offline", vec![f(1, OLD, peer_offline, Unhealthy)]),
        (
            "the soaked node restarted",
            vec![f(
                2,
                OLD,
                |v| {
                    let secs = secs_of(v);
                    v.node_mut(1002).unwrap().uptime = Some(Duration::from_secs(secs - 1));
                },
                CrashLoop,
            )],
        ),
        (
            "another node restarted",
            vec![f(2, OLD, peer_restarted_rejoined, PeerDown(1003))],
        ),
    ];
    for (name, feeds) in rows {
        run(name, &soak, None, &feeds);
    }
}

#[test]
fn signal_changes_are_reported_once() {
    let t0 = Instant::now();
    let mut tr = Tracker::new(rules());
    tr.begin(gate(), t0);
    let mut view = settled(OLD, 1);
    down_1002(&mut view);
    let _ = tr.feed(&view, t0 + Duration::from_secs(1));
    assert_eq!(tr.changes().len(), 7, "every signal at first");
    let mut view = settled(OLD, 2);
    down_1002(&mut view);
    let _ = tr.feed(&view, t0 + Duration::from_secs(2));
    assert!(
        tr.changes()
            .iter()
            .all(|(s, _)| *s == Signal::UptimeGrowing),
        "{:?}",
        tr.changes()
    );
}

#[test]
fn the_last_poll_lands_when_stable_for_ends() {
    let t0 = Instant::now();
    let mut tr = Tracker::new(rules());
    tr.begin(gate(), t0);
    for s in [4, 5] {
        let mut view = settled(NEW, s);
        back_1002(&mut view);
        let _ = tr.feed(&view, t0 + Duration::from_secs(s));
    }
    // Held since t=5: at t=14.5 the next poll is in 0.5 s, not a full poll.
    assert_eq!(
        tr.next_poll(t0 + Duration::from_millis(14_500)),
        Duration::from_millis(500)
    );
    assert_eq!(
        tr.next_poll(t0 + Duration::from_secs(6)),
        Duration::from_secs(1)
    );
}

// ---- edges found by cargo-mutants (MUTANTS.md) -----------------------------------------

#[test]
fn failures_say_what_happened_and_name_the_signal() {
    let obs = || "node 1002 down".to_string();
    let pre = Failure::Timeout {
        phase: PhaseKind::PreStop,
        signal: None,
        observed: obs(),
    };
    assert_eq!(
        pre.reason(),
        "the cluster never became safe to stop the next node: node 1002 down"
    );
    assert_eq!(pre.signal(), Some(Signal::ClusterSettled));
    assert_eq!(pre.observed(), Some(obs()));
    let b = Failure::Timeout {
        phase: PhaseKind::Gate,
        signal: Some(Signal::NewProcessOnTarget),
        observed: obs(),
    };
    assert_eq!(
        b.reason(),
        "gate signal B (new process on target version) never held: node 1002 down"
    );
    assert_eq!(b.reason_in(crate::plan::PlanKind::Upgrade), b.reason());
    // A restart's B: a new process on the same version (issue 19).
    assert_eq!(
        b.reason_in(crate::plan::PlanKind::Restart),
        "gate signal B (new process on the same version) never held: node 1002 down"
    );
    assert_eq!(b.signal(), Some(Signal::NewProcessOnTarget));
    let plain = Failure::Timeout {
        phase: PhaseKind::Gate,
        signal: None,
        observed: obs(),
    };
    assert_eq!(plain.reason(), "timed out: node 1002 down");
    assert_eq!(plain.signal(), None);
    let crash = Failure::CrashLoop {
        node: 1002,
        observed: obs(),
    };
    assert_eq!(crash.reason(), "crash loop: node 1002 down");
    assert_eq!(crash.signal(), Some(Signal::UptimeGrowing));
    assert_eq!(crash.observed(), Some(obs()));
    let peer = Failure::PeerDown {
        node: 1003,
        observed: obs(),
    };
    assert!(
        peer.reason().starts_with("node 1003 went down"),
        "{}",
        peer.reason()
    );
    assert_eq!(peer.signal(), None);
    assert_eq!(peer.observed(), Some(obs()));
    let auth = Failure::Auth { node: 1001 };
    assert!(auth.reason().contains("401"), "{}", auth.reason());
    assert_eq!((auth.signal(), auth.observed()), (None, None));
}

/// The one restart rule: a process started after the last sighting has an uptime below
/// the old one plus the time since (with [`UPTIME_SLACK`] for clock and poll skew).
#[test]
fn a_restart_is_an_uptime_below_the_old_one_plus_the_time_since() {
    let seen = Seen {
        uptime: Duration::from_secs(100),
        at: at(0),
    };
    // Grew less than the time passed (100 s → 120 s in 60 s): a new process.
    assert!(seen.restarted(Duration::from_mins(2), at(60)));
    // Fell: a new process.
    assert!(seen.restarted(Duration::from_secs(5), at(1)));
    // Exactly at the slack's edge: still the same process; one millisecond below: not.
    let edge = Duration::from_secs(110).saturating_sub(UPTIME_SLACK);
    assert!(!seen.restarted(edge, at(10)));
    assert!(seen.restarted(edge.saturating_sub(Duration::from_millis(1)), at(10)));
    // Grew with the clock: the same process.
    assert!(!seen.restarted(Duration::from_secs(160), at(60)));
}

#[test]
fn the_soak_sleeps_only_until_it_ends() {
    let t0 = Instant::now();
    let mut tr = Tracker::new(rules());
    tr.begin(Phase::Soak { node: 1002 }, t0);
    // Soak 5 s, poll 1 s: at 4.5 s the last sleep is the 0.5 s that is left.
    assert_eq!(
        tr.next_poll(t0 + Duration::from_millis(4500)),
        Duration::from_secs(1) / 2
    );
    assert_eq!(tr.next_poll(t0 + Duration::from_secs(1)), rules().poll);
    // The last moments of the soak: never a busy loop.
    assert_eq!(tr.next_poll(t0 + Duration::from_millis(4995)), MIN_PAUSE);
    // Past its end (waiting for the clients to come back, #18): at the poll interval.
    assert_eq!(tr.next_poll(t0 + Duration::from_secs(9)), rules().poll);
}

/// The gate on 1002, with its new process's uptime set by hand (started at t=0).
fn gate_feeds(tr: &mut Tracker, t0: Instant, feeds: &[(u64, Option<Duration>)]) -> Verdict {
    let mut last = Verdict::Ready;
    for (secs, up) in feeds {
        let mut view = settled(NEW, *secs);
        let n = view.node_mut(1002).unwrap();
        if let Some(u) = up {
            n.uptime = Some(*u);
        } else {
            n.reachable = false;
            n.error = Some(ProbeError::Refused);
            n.uptime = None;
        }
        last = tr.feed(&view, t0 + Duration::from_secs(*secs));
        if matches!(last, Verdict::Fail(_)) {
            return last;
        }
    }
    last
}

#[test]
fn a_node_refused_while_it_boots_is_no_crash_loop() {
    let t0 = Instant::now();
    let mut tr = Tracker::new(rules());
    tr.feed(&settled(OLD, 0), t0);
    tr.begin(gate(), t0);
    let secs = Duration::from_secs;
    // Refused for 3 polls (booting, never seen up), then up and growing.
    let got = gate_feeds(
        &mut tr,
        t0,
        &[
            (1, None),
            (2, None),
            (3, None),
            (4, Some(secs(1))),
            (5, Some(secs(2))),
        ],
    );
    assert!(matches!(got, Verdict::Wait(_)), "{got:?}");
}

#[test]
fn a_stuck_joining_node_is_counted_joined_only_with_the_evidence() {
    let view = crate::checks::joining::tests::issue_529();
    let mut tr = Tracker::new(rules());
    let accepted = tr.accept_stuck_joining(&view);
    assert_eq!(accepted.nodes.len(), 3);
    for id in [1002, 1003] {
        let n = accepted.node(id).unwrap();
        assert_eq!(n.info_status, Some(crate::probe::NodeStatus::Joined));
        assert_eq!(n.simple_status, Some(crate::probe::NodeStatus::Joined));
    }
    // Without the evidence (slots still migrating to it), nothing changes.
    let mut migrating = view.clone();
    migrating.cluster_migrating = true;
    let same = Tracker::new(rules()).accept_stuck_joining(&migrating);
    assert_eq!(
        same.node(1002).unwrap().info_status,
        Some(crate::probe::NodeStatus::Joining)
    );
}

/// A gate's focused poll does not ask a peer for its own `/cluster/info` and config
/// version: a node accepted as #529-stuck on the whole evidence stays accepted through
/// such polls (holds/upstream #529), but a node never seen with the whole evidence is
/// not, and one whose observed evidence fails is forgotten until it shows all of it again.
#[test]
fn a_stuck_joining_node_stays_accepted_through_polls_that_did_not_ask_it() {
    use crate::probe::NodeStatus;
    let full = crate::checks::joining::tests::issue_529();
    let mut focused = full.clone();
    for id in [1002, 1003] {
        let n = focused.node_mut(id).unwrap();
        n.info_answer = InfoAnswer::NotAsked;
        n.node_asked = false;
        n.config_version = None;
    }
    let status = |v: &ClusterView, id| v.node(id).unwrap().info_status;
    // Never seen whole: a focused poll alone accepts nothing.
    let mut fresh = Tracker::new(rules());
    assert_eq!(
        status(&fresh.accept_stuck_joining(&focused), 1002),
        Some(NodeStatus::Joining)
    );
    // Seen whole once, then carried.
    let mut tr = Tracker::new(rules());
    tr.accept_stuck_joining(&full);
    let carried = tr.accept_stuck_joining(&focused);
    assert_eq!(status(&carried, 1002), Some(NodeStatus::Joined));
    assert_eq!(status(&carried, 1003), Some(NodeStatus::Joined));
    // An own answer that came and fails is not carried.
    let mut lagging = focused.clone();
    lagging.node_mut(1002).unwrap().config_version = Some(1);
    let v = tr.accept_stuck_joining(&lagging);
    assert_eq!(status(&v, 1002), Some(NodeStatus::Joining));
    assert_eq!(status(&v, 1003), Some(NodeStatus::Joined));
    // ... and the node is forgotten: the next focused poll does not accept it.
    let v = tr.accept_stuck_joining(&focused);
    assert_eq!(status(&v, 1002), Some(NodeStatus::Joining));
    // A poll without the controller's view (it was the node that restarted) accepts
    // nothing and forgets nothing.
    let mut no_controller = focused.clone();
    no_controller.members.clear();
    no_controller.slots = None;
    let v = tr.accept_stuck_joining(&no_controller);
    assert_eq!(status(&v, 1003), Some(NodeStatus::Joining));
    let v = tr.accept_stuck_joining(&focused);
    assert_eq!(
        status(&v, 1003),
        Some(NodeStatus::Joined),
        "still remembered"
    );
    // Either half of the controller's view missing is enough (found by cargo-mutants).
    let mut no_slots = focused.clone();
    no_slots.slots = None;
    tr.accept_stuck_joining(&no_slots);
    let v = tr.accept_stuck_joining(&focused);
    assert_eq!(status(&v, 1003), Some(NodeStatus::Joined), "slots unknown");
    let mut no_members = focused.clone();
    no_members.members.clear();
    tr.accept_stuck_joining(&no_members);
    let v = tr.accept_stuck_joining(&focused);
    assert_eq!(
        status(&v, 1003),
        Some(NodeStatus::Joined),
        "members unknown"
    );
    // Evidence observed in the focused poll itself (the slots) still counts.
    let mut tr = Tracker::new(rules());
    tr.accept_stuck_joining(&full);
    let mut migrating = focused.clone();
    migrating.cluster_migrating = true;
    let v = tr.accept_stuck_joining(&migrating);
    assert_eq!(status(&v, 1003), Some(NodeStatus::Joining));
}

#[test]
fn a_wait_carries_the_reason_of_the_missing_signal() {
    let t0 = Instant::now();
    let mut tr = Tracker::new(rules());
    tr.feed(&settled(OLD, 0), t0);
    tr.begin(gate(), t0);
    let mut view = settled(NEW, 1);
    view.node_mut(1002).unwrap().uptime = Some(Duration::from_secs(1));
    view.node_mut(1002).unwrap().config_version = Some(400);
    let Verdict::Wait(w) = tr.feed(&view, t0 + Duration::from_secs(1)) else {
        panic!("waits on E");
    };
    assert_eq!(w.signal, Some(Signal::ConfigCaughtUp));
    assert!(w.reason.contains("400"), "{}", w.reason);
    assert_eq!(reason_of(&SignalState::Met), "");
    assert_eq!(reason_of(&SignalState::Unknown("why".into())), "why");
}

/// An HTTP error is an answer: only a node that does not answer at all is down by this
/// rule (the controller's view decides for the rest).
#[test]
fn only_no_answer_counts_as_a_peer_not_answering() {
    let mut view = settled(OLD, 0);
    let n = view.node_mut(1003).unwrap();
    n.reachable = false;
    n.error = Some(ProbeError::ServerError(500));
    let n = view.node(1003).unwrap().clone();
    assert_eq!(peer_down_cause(&n, &view), None);
    let mut n = n;
    n.error = Some(ProbeError::Refused);
    assert!(peer_down_cause(&n, &view).is_some_and(|c| c.contains("connection refused")));
}

#[test]
fn rollback_is_blocked_by_any_other_node_not_fully_back_but_not_by_itself() {
    let mut tr = Tracker::new(rules());
    let t0 = Instant::now();
    tr.feed(&settled(OLD, 0), t0);
    // The node rolled back is down: that is what a rollback is for.
    let mut view = settled(OLD, 1);
    let n = view.node_mut(1002).unwrap();
    n.reachable = false;
    n.error = Some(ProbeError::Refused);
    assert_eq!(rollback_blockers(&tr, &view, 1002), Vec::<String>::new());
    // Another node down blocks it, by name.
    let blockers = rollback_blockers(&tr, &view, 1001);
    assert!(!blockers.is_empty());
    assert!(blockers.iter().all(|b| b.contains("1002")), "{blockers:?}");
    // Another node that restarted since it was last seen blocks it too.
    let mut view = settled(OLD, 1);
    view.node_mut(1003).unwrap().uptime = Some(Duration::from_secs(1));
    assert_eq!(
        rollback_blockers(&tr, &view, 1002),
        ["node 1003 restarted since it was last seen"]
    );
    // …but its own restart does not.
    assert_eq!(rollback_blockers(&tr, &view, 1003), Vec::<String>::new());
}

#[test]
fn a_soak_needs_a_controller_only_when_the_slots_are_unknown_too() {
    let mut view = settled(NEW, 0);
    view.controller = None;
    assert_eq!(soak_problem(&view), None, "slots known and led: fine");
    view.slots = None;
    assert_eq!(soak_problem(&view).as_deref(), Some("no controller known"));
}

/// `on_shortfall: warn` reports a client shortfall found at `within` but keeps the soak
/// going to its end (the attack test
/// `attack_service::a_warned_shortfall_does_not_cut_the_soak_short`).
#[test]
fn a_warned_client_shortfall_keeps_soaking_until_the_soak_ends() {
    use crate::manifest::{ClientsPolicy, OnShortfall};
    let policy = ClientsPolicy {
        within: Some(Duration::from_secs(1)),
        on_shortfall: OnShortfall::Warn,
        ..ClientsPolicy::default()
    };
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let with = |secs: u64, conns: u64| {
        let mut v = settled(NEW, secs);
        for n in &mut v.nodes {
            n.service.connections = Some(conns);
        }
        v
    };
    let mut tr = Tracker::new(rules()).with_clients(policy);
    tr.begin(Phase::PreStop { node: 1002 }, t0);
    assert_eq!(tr.feed(&with(0, 1000), t0), Verdict::Ready);
    tr.begin(Phase::Soak { node: 1002 }, t0);
    // Past `within` (1 s), at half the baseline: warned, still soaking (soak 5 s).
    let v = tr.feed(&with(2, 500), t0 + s(2));
    assert!(matches!(v, Verdict::Wait(_)), "{v:?}");
    assert!(
        tr.service_warning()
            .is_some_and(|w| w.contains("clients did not come back")),
        "{:?}",
        tr.service_warning()
    );
    // A peer that goes down in the rest of the soak still stops the run.
    let mut peer_down = tr.clone();
    let mut last = Verdict::Ready;
    for secs in 3..=5 {
        let mut view = with(secs, 500);
        down(&mut view, 1003);
        last = peer_down.feed(&view, t0 + s(secs));
        if matches!(last, Verdict::Fail(_)) {
            break;
        }
    }
    assert!(
        matches!(&last, Verdict::Fail(f) if f.reason().contains("node 1003")),
        "{last:?}"
    );
    // At the soak's end: ready, the warning kept.
    assert_eq!(tr.feed(&with(5, 500), t0 + s(5)), Verdict::Ready);
    assert!(tr.service_warning().is_some());
}

#[test]
fn a_carried_observation_is_judged_by_the_soak_but_not_remembered_twice() {
    let t0 = Instant::now();
    let mut tr = Tracker::new(rules());
    let mut seen = settled(OLD, 100);
    seen.observed_at = at(10);
    assert_eq!(tr.feed(&seen, t0), Verdict::Ready);
    // The soak opens on an observation: an unhealthy one fails it, carried or not.
    tr.begin(Phase::Soak { node: 1002 }, t0);
    let mut sick = seen.clone();
    down(&mut sick, 1003);
    assert!(matches!(tr.carry(&sick, t0), Verdict::Fail(_)));
    // Carried, the uptimes are not fed again (`feed` would remember these, and the next
    // fresh poll, compared with them, would look like every node restarted).
    tr.begin(Phase::Soak { node: 1002 }, t0);
    let mut carried = seen.clone();
    for n in &mut carried.nodes {
        n.uptime = Some(Duration::from_secs(1000));
    }
    assert!(matches!(tr.carry(&carried, t0), Verdict::Wait(_)));
    let mut next = seen.clone();
    next.observed_at = at(11);
    for n in &mut next.nodes {
        n.uptime = n.uptime.map(|u| u + Duration::from_secs(1));
    }
    assert!(
        matches!(
            tr.feed(&next, t0 + Duration::from_secs(1)),
            Verdict::Wait(_)
        ),
        "compared with the last fed observation, nothing restarted"
    );
}
