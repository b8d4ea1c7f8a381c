//! Unit tests of `releases.rs`.
use super::*;

fn v(s: &str) -> WkVersion {
    WkVersion::parse(s).unwrap()
}

#[test]
fn every_catalog_tag_parses_round_trips_and_is_strictly_increasing() {
    let cat = catalog();
    assert_eq!(cat.len(), CATALOG.len(), "a catalog tag failed to parse");
    for (parsed, rel) in &cat {
        assert_eq!(parsed.to_string(), rel.tag);
        let without_v = rel.tag.trim_start_matches('v');
        assert_eq!(WkVersion::parse(without_v).unwrap().to_string(), rel.tag);
    }
    for w in cat.windows(2) {
        assert!(w[0].0 < w[1].0, "{} !< {}", w[0].0, w[1].0);
    }
    assert_eq!(CATALOG.len(), 24);
}

#[test]
fn resolves_short_targets_to_full_tags() {
    assert_eq!(
        resolve_target("v2.1.2", false).unwrap().version.to_string(),
        "v2.1.2-20250120"
    );
    assert_eq!(
        resolve_target("2.2.5", false).unwrap().version.to_string(),
        "v2.2.5-20260422"
    );
    assert_eq!(
        resolve_target("v2.0.4-beta-20240904", false)
            .unwrap()
            .source,
        TargetSource::Catalog
    );
    let dev = resolve_target("v2.1.3-20250210-dev", false).unwrap();
    assert_eq!(dev.source, TargetSource::DevBuild);
    assert_eq!(dev.version.to_string(), "v2.1.3-20250210-dev");
    let e = resolve_target("v2.1.9", false).unwrap_err();
    assert!(
        e.hint.contains("v2.1.5-20250424") && e.hint.contains("v2.2.0-20250426"),
        "{}",
        e.hint
    );
    assert!(e.hint.contains("--allow-unknown-version"));
    assert_eq!(
        resolve_target("v2.1.9", true).unwrap().source,
        TargetSource::Unknown
    );
    assert!(resolve_target("v2.1.2-20990101", false).is_err());
    assert!(resolve_target("latest", true).is_err());
}

#[test]
fn rules_block_major_and_downgrade_and_skip_same() {
    let to = v("v2.1.2-20250120");
    let (_, f) = evaluate(1001, Some(&v("v1.2.6")), &to, RuleOptions::default());
    assert_eq!(f[0].id, FindingId::VersionMajorChange);
    assert_eq!(f[0].severity, Severity::Block);
    assert!(f[0].hint.contains("oldV1Api"));
    let (_, f) = evaluate(
        1001,
        Some(&v("v2.2.5-20260422")),
        &v("v3.0.0"),
        RuleOptions::default(),
    );
    assert!(f[0].hint.contains("wkmigrate"));

    let (a, f) = evaluate(
        1002,
        Some(&v("v2.2.0-20250426")),
        &to,
        RuleOptions::default(),
    );
    assert_eq!(a, NodeAction::Upgrade);
    assert_eq!(
        (f[0].id, f[0].severity),
        (FindingId::VersionDowngrade, Severity::Block)
    );
    let (_, f) = evaluate(
        1002,
        Some(&v("v2.2.0-20250426")),
        &to,
        RuleOptions {
            allow_downgrade: true,
            ..RuleOptions::default()
        },
    );
    assert_eq!(f[0].severity, Severity::Warn);

    let (a, f) = evaluate(
        1003,
        Some(&v("2.1.2-20250120")),
        &to,
        RuleOptions::default(),
    );
    assert_eq!(a, NodeAction::Skip);
    assert_eq!(f[0].id, FindingId::VersionSame);

    let (_, f) = evaluate(
        1001,
        Some(&v("v2.0.10-20241221")),
        &to,
        RuleOptions::default(),
    );
    assert_eq!(
        f.iter().map(|f| f.id).collect::<Vec<_>>(),
        [FindingId::VersionCrossesClusterRewrite]
    );
    let (_, f) = evaluate(
        1001,
        Some(&v("v2.1.1-20241230")),
        &to,
        RuleOptions::default(),
    );
    assert!(f.is_empty());
    let (a, f) = evaluate(1001, None, &to, RuleOptions::default());
    assert_eq!(
        (a, f[0].id),
        (NodeAction::Upgrade, FindingId::VersionFromUnknown)
    );
}

#[test]
fn known_bad_targets_warn_and_name_the_fix() {
    let t = resolve_target("v2.1.1", false).unwrap();
    let f = target_findings(&t);
    let k = f
        .iter()
        .find(|f| f.id == FindingId::VersionKnownIssue)
        .unwrap();
    assert!(k.hint.contains("v2.1.2-20250120"));
    let t = resolve_target("v2.2.4", false).unwrap();
    assert!(
        target_findings(&t)
            .iter()
            .any(|f| f.message.contains("#522"))
    );
    // v2.1.2: health always ok, no app_version → readiness quirks are info
    let t = resolve_target("v2.1.2", false).unwrap();
    let quirks: Vec<_> = target_findings(&t)
        .into_iter()
        .filter(|f| f.id == FindingId::VersionReadinessQuirk)
        .collect();
    assert_eq!(quirks.len(), 2);
    assert!(quirks.iter().all(|f| f.severity == Severity::Info));
}

#[test]
fn capabilities_follow_the_availability_table() {
    let c = |s: &str| Capabilities::of(&v(s));
    assert!(!c("v2.1.3-20250210").health_cluster_aware);
    assert!(c("v2.1.4-20250319").health_cluster_aware);
    assert!(!c("v2.0.5-20240925").has_varz);
    assert!(c("v2.0.6-20241008").has_varz);
    assert!(c("v2.0.0-beta").has_varz);
    assert!(!c("v2.1.1-20241230").has_app_version);
    assert!(!c("v2.2.1-20250624").has_app_version);
    assert!(c("v2.2.2-20251229").has_app_version);
    assert!(!c("v2.1.2-20250120").startup_waits_for_slots);
}

#[test]
fn mixed_versions_are_reported() {
    assert!(mixed_finding(&[(1001, v("v2.1.2")), (1002, v("2.1.2-20250120"))]).is_none());
    let f = mixed_finding(&[(1001, v("v2.1.2-20250120")), (1002, v("v2.0.10-20241221"))]).unwrap();
    assert!(f.message.contains("1001=v2.1.2-20250120"));
}

#[test]
fn a_downgrade_across_the_rewrite_is_blocked_even_with_allow_downgrade() {
    let ids = |opts: RuleOptions| {
        let (_, f) = evaluate(
            1001,
            Some(&v("v2.1.2-20250120")),
            &v("v2.0.10-20241221"),
            opts,
        );
        f.into_iter()
            .map(|f| (f.id.to_string(), f.severity))
            .collect::<Vec<_>>()
    };
    let plain = ids(RuleOptions {
        allow_downgrade: true,
        ..RuleOptions::default()
    });
    assert!(
        plain.contains(&(
            FindingId::VersionDowngradeAcrossRewrite.to_string(),
            Severity::Block
        )),
        "{plain:?}"
    );
    let forced = ids(RuleOptions {
        allow_downgrade: true,
        allow_downgrade_across_rewrite: true,
    });
    assert!(
        !forced.iter().any(|(_, s)| *s == Severity::Block),
        "{forced:?}"
    );
    // Within one side of the rewrite: only the generic downgrade rule.
    let (_, f) = evaluate(
        1001,
        Some(&v("v2.2.5-20260422")),
        &v("v2.1.2-20250120"),
        RuleOptions::default(),
    );
    assert!(
        !f.iter()
            .any(|f| f.id == FindingId::VersionDowngradeAcrossRewrite)
    );
}

/// 13.9: hints that pointed the wrong way.
#[test]
fn hints_point_the_right_way() {
    // a typo of a catalog release is suggested first
    let e = resolve_target("v2.1.12", false).unwrap_err();
    assert!(e.hint.contains("`v2.1.2-20250120`"), "{}", e.hint);
    // back from v2 to v1 is not the v1 → v2 migration
    let (_, f) = evaluate(
        1001,
        Some(&v("v2.1.2-20250120")),
        &v("v1.2.6"),
        RuleOptions::default(),
    );
    assert_eq!(f[0].id, FindingId::VersionMajorChange);
    assert!(
        f[0].hint.contains("going back from v2 to v1") && !f[0].hint.contains("oldV1Api"),
        "{}",
        f[0].hint
    );
    // a live check's unknown version does not say "without `--offline`" alone
    let (_, f) = evaluate(1001, None, &v("v2.1.2-20250120"), RuleOptions::default());
    assert!(f[0].hint.contains("wkctl status"), "{}", f[0].hint);
    assert!(!f[0].hint.starts_with("set `version:`"), "{}", f[0].hint);
}

// ---- edges found by cargo-mutants (MUTANTS.md) ----------------------------------------

#[test]
fn each_capability_band_ends_exactly_at_its_table_edges() {
    let c = |s: &str| Capabilities::of(&v(s));
    // `/varz` is missing in v2.0.1–v2.0.5, both ends included.
    assert!(c("v2.0.0-beta").has_varz);
    assert!(!c("v2.0.1-beta-20240715").has_varz);
    assert!(!c("v2.0.5-20240925").has_varz);
    assert!(c("v2.0.6-20241008").has_varz);
    // `app_version` is empty in v2.1.1–v2.2.1.
    assert!(c("v2.1.0-20241224").has_app_version);
    assert!(!c("v2.1.1-20241230").has_app_version);
    assert!(!c("v2.2.1-20250624").has_app_version);
    // Startup waits for slots except in v2.0.1–v2.0.3, v2.1.1–v2.1.3 and before v2.
    let waits = |s: &str| c(s).startup_waits_for_slots;
    assert!(!waits("v1.2.6"));
    assert!(waits("v2.0.0-beta"));
    assert!(!waits("v2.0.1-beta-20240715"));
    assert!(!waits("v2.0.3-beta-20240828"));
    assert!(waits("v2.0.4-beta-20240904"));
    assert!(waits("v2.1.0-20241224"));
    assert!(!waits("v2.1.1-20241230"));
    assert!(!waits("v2.1.3-20250210"));
    assert!(waits("v2.1.4-20250319"));
    // `/health` knows the cluster from v2.1.4 on.
    assert!(!c("v2.1.3-20250210").health_cluster_aware);
    assert!(c("v2.1.4-20250319").health_cluster_aware);
    assert!(c("v2.2.5-20260422").health_cluster_aware);
}

#[test]
fn readiness_notes_name_each_missing_capability_once() {
    let notes = |s: &str| Capabilities::of(&v(s)).readiness_notes();
    assert!(notes("v2.2.5-20260422").is_empty());
    let old = notes("v2.0.5-20240925");
    assert_eq!(old.len(), 2, "{old:?}");
    assert!(old[0].contains("`/health` is always ok"));
    assert!(old[1].contains("no `/varz`"));
    let mid = notes("v2.1.4-20250319");
    assert_eq!(mid.len(), 1, "{mid:?}");
    assert!(mid[0].contains("app_version"));
    // v1 gets no v2 readiness notes; v2 does.
    assert!(
        notes_for(&v("v1.2.6"))
            .iter()
            .all(|n| n.kind != NoteKind::Readiness)
    );
    assert_eq!(
        notes_for(&v("v2.0.5-20240925"))
            .iter()
            .filter(|n| n.kind == NoteKind::Readiness)
            .count(),
        2
    );
}

#[test]
fn a_short_target_takes_the_date_given_or_the_only_release_of_the_triple() {
    let t = resolve_target("v2.1.2-20250120", false).unwrap();
    assert_eq!(
        (t.version.to_string(), t.source),
        ("v2.1.2-20250120".to_string(), TargetSource::Catalog)
    );
    // A wrong date for a known triple is not that release.
    let e = resolve_target("v2.1.2-20250121", false).unwrap_err();
    assert!(
        e.message.contains("not a known WuKongIM release"),
        "{}",
        e.message
    );
    assert_eq!(
        resolve_target("v2.1.2-20250121", true).unwrap().source,
        TargetSource::Unknown
    );
    // A custom build of a catalog triple is not the catalog release.
    assert_eq!(
        resolve_target("v2.1.2-20250120-3-gabc1234", true)
            .unwrap()
            .source,
        TargetSource::Unknown
    );
    for moving in ["latest", "v1", "v2", "v3"] {
        let e = resolve_target(moving, true).unwrap_err();
        assert!(e.message.contains("moving image tag"), "{}", e.message);
    }
    let e = resolve_target("v2.x", true).unwrap_err();
    assert!(
        e.message.starts_with("invalid WuKongIM version"),
        "{}",
        e.message
    );
}

#[test]
fn nearest_is_the_typos_then_the_release_below_and_above() {
    let names = |s: &str| {
        nearest(&v(s))
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    };
    // v2.1.9: no typo of a catalog triple (2.1.0–2.1.5 differ in one char!) …
    let n = names("v2.1.9");
    assert_eq!(
        n[n.len() - 2..],
        ["v2.1.5-20250424", "v2.2.0-20250426"],
        "{n:?}"
    );
    // An exact catalog version is its own nearest below, and the next one is above.
    let n = names("v2.2.5-20260422");
    assert!(n.contains(&"v2.2.5-20260422".to_string()), "{n:?}");
    // … and one that has a successor lists that successor (2.2.0 is no typo of 2.1.5):
    // `above` is strictly above (a `>=` would pick the version itself, deduplicated away).
    let n = names("v2.1.5-20250424");
    assert_eq!(
        n[n.len() - 2..],
        ["v2.1.5-20250424", "v2.2.0-20250426"],
        "{n:?}"
    );
    // Above the newest there is nothing above; each entry is listed once.
    let n = names("v2.2.9");
    let mut dedup = n.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), n.len(), "{n:?}");
    assert_eq!(
        n.last().map(String::as_str),
        Some("v2.2.5-20260422"),
        "{n:?}"
    );
    // Below the oldest: the oldest is above.
    assert_eq!(names("v0.9.0"), ["v1.2.6"]);
}

#[test]
fn one_edit_apart_is_exactly_one_insert_delete_or_change() {
    assert!(one_edit_apart("2.1.2", "2.1.3"));
    assert!(one_edit_apart("2.1.12", "2.1.2"));
    assert!(one_edit_apart("2.1.2", "2.1.12"));
    assert!(!one_edit_apart("2.1.2", "2.1.2"));
    assert!(!one_edit_apart("2.1.2", "2.3.4"));
    assert!(!one_edit_apart("2.1.2", "2.1.123"));
    assert!(!one_edit_apart("2.1.21", "2.1.3"));
}

#[test]
fn the_rewrite_rules_hold_at_their_exact_edges() {
    let ids = |from: &str, to: &str| {
        let (_, f) = evaluate(1001, Some(&v(from)), &v(to), RuleOptions::default());
        f.into_iter().map(|f| f.id).collect::<Vec<_>>()
    };
    // v2.1.1 → v2.1.0 is exactly across the rewrite, backwards.
    assert_eq!(
        ids("v2.1.1-20241230", "v2.1.0-20241224"),
        [
            FindingId::VersionDowngrade,
            FindingId::VersionDowngradeAcrossRewrite
        ]
    );
    // v2.1.0 → v2.1.1 is exactly across, forwards.
    assert_eq!(
        ids("v2.1.0-20241224", "v2.1.1-20241230"),
        [FindingId::VersionCrossesClusterRewrite]
    );
    // Both before the rewrite: nothing.
    assert!(ids("v2.0.10-20241221", "v2.1.0-20241224").is_empty());
    assert_eq!(
        ids("v2.1.0-20241224", "v2.0.10-20241221"),
        [FindingId::VersionDowngrade]
    );
    // Only an older target is a downgrade; accepted ones are warnings, not blocks.
    let (_, f) = evaluate(
        1001,
        Some(&v("v2.1.1-20241230")),
        &v("v2.1.0-20241224"),
        RuleOptions {
            allow_downgrade: true,
            allow_downgrade_across_rewrite: true,
        },
    );
    assert!(f.iter().all(|f| f.severity == Severity::Warn), "{f:?}");
    // A major change is one block, and the node is still planned as an upgrade.
    let (a, f) = evaluate(
        1001,
        Some(&v("v1.2.6")),
        &v("v2.0.0-beta"),
        RuleOptions::default(),
    );
    assert_eq!(a, NodeAction::Upgrade);
    assert_eq!(f.len(), 1);
    assert!(f[0].message.contains("changes the major version"));
}

#[test]
fn target_findings_say_what_the_target_is() {
    let dev = resolve_target("v2.1.3-20250210-dev", false).unwrap();
    let f = target_findings(&dev);
    assert_eq!(f[0].id, FindingId::VersionDevBuild);
    assert!(
        f[0].message.contains("pre-release of v2.1.3"),
        "{}",
        f[0].message
    );
    let unknown = resolve_target("v2.2.9", true).unwrap();
    let f = target_findings(&unknown);
    assert_eq!(
        f.iter().map(|f| f.id).collect::<Vec<_>>(),
        [FindingId::VersionUnknown]
    );
    // A catalog release with every capability: only its known issues.
    let f = target_findings(&resolve_target("v2.2.5", false).unwrap());
    assert!(!f.is_empty());
    assert!(
        f.iter().all(|f| f.id == FindingId::VersionKnownIssue),
        "{f:?}"
    );
}

#[test]
fn mixed_needs_two_builds_and_lists_every_node() {
    assert!(mixed_finding(&[]).is_none());
    assert!(mixed_finding(&[(1001, v("v2.1.2-20250120"))]).is_none());
    let f = mixed_finding(&[
        (1001, v("v2.1.2-20250120")),
        (1002, v("v2.1.2")),
        (1003, v("v2.2.5-20260422")),
    ])
    .unwrap();
    assert_eq!(f.id, FindingId::VersionMixed);
    assert!(
        f.message
            .contains("1001=v2.1.2-20250120, 1002=v2.1.2, 1003=v2.2.5-20260422"),
        "{}",
        f.message
    );
}

#[test]
fn find_is_the_same_build_only() {
    assert_eq!(find(&v("v2.1.2")).map(|r| r.tag), Some("v2.1.2-20250120"));
    assert!(find(&v("v2.1.2-20250120-dev")).is_none());
    assert!(find(&v("v2.1.9")).is_none());
}
