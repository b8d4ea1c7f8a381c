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
