//! The pure part of `recover`: what counts as broken, the order of the plan, the waits.

use std::collections::BTreeMap;

use super::*;
use crate::checks;
use crate::probe::fixtures::{manifest, settled};

const V: &str = "v2.1.2-20250120";

fn versions() -> BTreeMap<u64, String> {
    [1001, 1002, 1003].map(|id| (id, V.to_string())).into()
}

fn sim_playbook() -> Playbook {
    playbook::load("sim", std::path::Path::new(".")).unwrap()
}

#[test]
fn a_settled_cluster_is_not_broken_and_the_310_view_is() {
    let m = manifest(&[1001, 1002, 1003]);
    let healthy = settled(V, 10);
    let f = checks::findings_with_token(&m, &healthy, true);
    assert_eq!(broken_reasons(&healthy, &f), Vec::<String>::new());

    // #310: every node lists only itself and claims the controller.
    let mut split = settled(V, 10);
    split.membership = Some(vec![1001]);
    split.controller_claims = vec![1001, 1002, 1003];
    let f = checks::findings_with_token(&m, &split, true);
    let why = broken_reasons(&split, &f);
    assert!(
        why.iter()
            .any(|r| r.starts_with("cluster.membership_mismatch")),
        "{why:?}"
    );
    assert!(why.iter().any(|r| r.contains("each claim")), "{why:?}");

    let mut leaderless = settled(V, 10);
    leaderless.controller = None;
    leaderless.controller_claims = Vec::new();
    let f = checks::findings_with_token(&m, &leaderless, true);
    let why = broken_reasons(&leaderless, &f);
    assert!(
        why.iter().any(|r| r.starts_with("cluster.no_controller")),
        "{why:?}"
    );
}

#[test]
fn the_plan_stops_in_reverse_and_starts_1001_first_one_at_a_time() {
    use RecoverStepKind::{Doctor, Settle, Start, Stop};
    let m = manifest(&[1002, 1003, 1001]);
    let plan = build(&m, &sim_playbook(), &versions()).unwrap();
    let order: Vec<(RecoverStepKind, Option<u64>)> =
        plan.steps.iter().map(|s| (s.kind, s.node)).collect();
    assert_eq!(
        order,
        vec![
            (Doctor, None),
            (Stop, Some(1003)),
            (Stop, Some(1002)),
            (Stop, Some(1001)),
            (Start, Some(1001)),
            (Start, Some(1002)),
            (Start, Some(1003)),
            (Settle, None),
        ]
    );
    assert_eq!(plan.steps[4].wait, WaitFor::ApiAnswers(1001));
    assert_eq!(plan.steps[5].wait, WaitFor::ControllerAndJoined(1001, 1002));
    assert_eq!(plan.steps[6].wait, WaitFor::JoinedAndCaughtUp(1003));
    let start = plan.steps[4].command.as_deref().unwrap();
    assert!(
        start.ends_with(&format!("start 1001 --version {V}")),
        "{start}"
    );
    assert!(plan.logs[&1002].ends_with("logs 1002"));
}

#[test]
fn an_unknown_version_is_an_input_error_naming_the_node() {
    let m = manifest(&[1001, 1002]);
    let mut v = versions();
    v.remove(&1002);
    let e = build(&m, &sim_playbook(), &v).unwrap_err();
    assert_eq!(e.kind, crate::error::Kind::Input);
    assert!(e.message.contains("node 1002"), "{}", e.message);
    assert!(e.hint.unwrap().contains("version:"));
}

#[test]
fn versions_fall_back_to_the_manifest_then_the_common_one() {
    let mut m = manifest(&[1001, 1002, 1003]);
    m.nodes[2].version = Some(WkVersion::parse("v2.1.1-20241230").unwrap());
    let live: BTreeMap<u64, Option<WkVersion>> = [
        (1001, Some(WkVersion::parse(V).unwrap())),
        (1002, None),
        (1003, None),
    ]
    .into();
    let got = super::versions(&m, &live);
    assert_eq!(got[&1001], V);
    assert_eq!(got[&1002], V, "the common version");
    assert_eq!(got[&1003], "v2.1.1-20241230", "the manifest's");
}

#[test]
fn waits_hold_only_on_what_they_need() {
    let m = manifest(&[1001, 1002, 1003]);
    let v = versions();
    let ok = settled(V, 10);
    for w in [
        WaitFor::ApiAnswers(1001),
        WaitFor::ControllerAndJoined(1001, 1002),
        WaitFor::JoinedAndCaughtUp(1003),
        WaitFor::Settled,
    ] {
        assert_eq!(wait_state(w, &ok, &m, &v), Ok(()), "{w:?}");
    }
    assert!(wait_state(WaitFor::Down(1001), &ok, &m, &v).is_err());

    let mut no_ctrl = settled(V, 10);
    no_ctrl.controller = None;
    let e = wait_state(WaitFor::ControllerAndJoined(1001, 1002), &no_ctrl, &m, &v);
    assert_eq!(e.unwrap_err().0, Some(Signal::KnowsController));

    // Step 4 also waits for the second node's config to catch up (it fully started).
    let mut second_lags = settled(V, 10);
    second_lags.nodes[1].config_version = Some(400);
    let e = wait_state(
        WaitFor::ControllerAndJoined(1001, 1002),
        &second_lags,
        &m,
        &v,
    );
    assert_eq!(e.unwrap_err().0, Some(Signal::ConfigCaughtUp));

    let mut lagging = settled(V, 10);
    lagging.nodes[2].config_version = Some(400);
    let e = wait_state(WaitFor::JoinedAndCaughtUp(1003), &lagging, &m, &v).unwrap_err();
    assert_eq!(e.0, Some(Signal::ConfigCaughtUp));

    let mut two = settled(V, 10);
    two.membership = Some(vec![1001, 1002]);
    let e = wait_state(WaitFor::Settled, &two, &m, &v).unwrap_err();
    assert!(e.1.contains("2 of 3"), "{}", e.1);
}
