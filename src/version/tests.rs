//! Unit tests of `version.rs`.
use super::*;

fn v(s: &str) -> WkVersion {
    WkVersion::parse(s).unwrap()
}

#[test]
fn a_bare_dirty_suffix_round_trips() {
    // Regression (tests/fuzz.rs): `0.0.0-dirty` was shown as `v0.0.0-0-g-dirty`,
    // which parsed back as a pre-release, lower than the version it came from.
    let dirty = v("0.0.0-dirty ");
    assert_eq!(dirty.to_string(), "v0.0.0-dirty");
    assert_eq!(v(&dirty.to_string()), dirty);
    assert!(dirty > v("v0.0.0"));
    // And a 128-character tag without `v` stays parsable once shown with its `v`.
    let long = v(&format!("1.2.3-{}", "a".repeat(122)));
    assert_eq!(v(&long.to_string()), long);
}

#[test]
#[allow(clippy::type_complexity)]
fn parses_every_shape_from_the_facts_file() {
    let cases: &[(&str, (u64, u64, u64), bool, Option<u32>, &str)] = &[
        (
            "v2.1.2-20250120",
            (2, 1, 2),
            false,
            Some(20_250_120),
            "v2.1.2-20250120",
        ),
        (
            "2.1.2-20250120",
            (2, 1, 2),
            false,
            Some(20_250_120),
            "v2.1.2-20250120",
        ),
        (
            "v2.1.3-20250210-dev",
            (2, 1, 3),
            false,
            Some(20_250_210),
            "v2.1.3-20250210-dev",
        ),
        (
            "v2.0.4-beta-20240904",
            (2, 0, 4),
            true,
            Some(20_240_904),
            "v2.0.4-beta-20240904",
        ),
        ("v2.2.4-fix529", (2, 2, 4), false, None, "v2.2.4-fix529"),
        ("v1.2.6", (1, 2, 6), false, None, "v1.2.6"),
        (
            "2.2.5-20260422-3-gabc1234-dirty",
            (2, 2, 5),
            false,
            Some(20_260_422),
            "v2.2.5-20260422-3-gabc1234-dirty",
        ),
        ("v2.0.0-beta", (2, 0, 0), true, None, "v2.0.0-beta"),
        (
            "v2.2.3-dev-pebblev2",
            (2, 2, 3),
            false,
            None,
            "v2.2.3-dev-pebblev2",
        ),
        (
            "v2.1.4-20250319-dev-20250417",
            (2, 1, 4),
            false,
            Some(20_250_319),
            "v2.1.4-20250319-dev-20250417",
        ),
    ];
    for (input, triple, beta, date, display) in cases {
        let p = v(input);
        assert_eq!(p.triple(), *triple, "{input}");
        assert_eq!(p.is_beta(), *beta, "{input}");
        assert_eq!(p.date(), *date, "{input}");
        assert_eq!(p.to_string(), *display, "{input}");
    }
    assert!(v("v2.1.3-20250210-dev").is_dev());
    assert_eq!(v("v2.2.4-fix529").suffix(), &Suffix::Other("fix529".into()));
    assert_eq!(
        v("2.2.5-20260422-3-gabc1234-dirty").suffix(),
        &Suffix::Describe {
            commits: 3,
            hash: "abc1234".into(),
            dirty: true
        }
    );
}

#[test]
fn rejects_garbage_with_a_reason() {
    for bad in [
        "",
        "latest",
        "v2",
        "v2.1",
        "2.x.1",
        "v2.1.2.3",
        "v2.1.2-",
        "v2.1.2--dev",
        "v2.1.2-20251340",
        "v-1.2.3",
        "v2.1.2 -x",
        "💥",
    ] {
        let e = WkVersion::parse(bad).unwrap_err();
        assert!(
            e.to_string().starts_with("invalid WuKongIM version"),
            "{bad}: {e}"
        );
    }
    assert!(WkVersion::parse(&"9".repeat(200)).is_err());
}

#[test]
fn orders_by_wukongim_meaning_not_semver() {
    // facts §7.3: semver says 2.1.3-20250210 < 2.1.3-20250210-dev; WuKongIM means the opposite.
    assert!(v("v2.1.3-20250210-dev") < v("v2.1.3-20250210"));
    assert!(v("v2.2.4-fix529") < v("v2.2.4-20260313"));
    assert!(v("v2.0.10-20241221") > v("v2.0.9-20241220"));
    assert!(v("v2.2.5-20260422-3-gabc1234") > v("v2.2.5-20260422"));
    assert!(v("v2.2.5-20260422-3-gabc1234") < v("v2.2.5-20260422-4-gdef5678"));
    assert!(v("v1.2.6") < v("v2.0.0-beta"));
    // the date is informational
    assert_eq!(v("v2.1.2"), v("v2.1.2-20250120"));
    assert!(v("2.1.2-20250120").same_build(&v("v2.1.2-20250120")));
    // semver itself really does get these wrong (the pitfalls we avoid)
    assert!(semver::Version::parse("v2.2.5-20260422").is_err());
    let a = semver::Version::parse("2.1.3-20250210").unwrap();
    let b = semver::Version::parse("2.1.3-20250210-dev").unwrap();
    assert!(a < b);
    assert!(
        !semver::VersionReq::parse(">=2.1.0")
            .unwrap()
            .matches(&semver::Version::parse("2.2.5-20260422").unwrap())
    );
}

#[test]
fn semver_view_keeps_date_as_build_metadata() {
    let p = v("v2.1.3-20250210-dev");
    assert_eq!(p.semver().pre.as_str(), "dev");
    assert_eq!(p.semver().build.as_str(), "20250210");
    assert!(v("v2.1.2-20250120").semver().pre.is_empty());
}

// ---- edges found by cargo-mutants (MUTANTS.md) ----------------------------------------

#[test]
fn each_number_is_one_to_nine_ascii_digits() {
    // Nine digits parse; ten do not (u64 would take them: the length rule decides).
    assert_eq!(v("v2.1.123456789").patch(), 123_456_789);
    assert_eq!(v("v123456789.0.0").major(), 123_456_789);
    for bad in ["v2.1.1234567890", "v2.+1.2", "v+2.1.2", "v2..2", "v2.1."] {
        let e = WkVersion::parse(bad).unwrap_err();
        assert!(e.reason.contains("number"), "{bad}: {e}");
    }
}

#[test]
fn suffix_fields_are_alphanumeric_dots_and_underscores_only() {
    assert_eq!(
        v("v2.2.3-dev-pebble.v2").suffix(),
        &Suffix::Dev("dev-pebble.v2".into())
    );
    assert_eq!(
        v("v2.2.4-fix_529").suffix(),
        &Suffix::Other("fix_529".into())
    );
    // semver's pre-release has no `_`: it is written as `-` there.
    assert_eq!(v("v2.2.4-fix_529").semver().pre.as_str(), "fix-529");
    for bad in ["v2.1.2-a+b", "v2.1.2-a/b", "v2.1.2-ä", "v2.1.2-a b"] {
        let e = WkVersion::parse(bad).unwrap_err();
        assert!(e.reason.contains("invalid field"), "{bad}: {e}");
    }
}

#[test]
fn an_eight_digit_field_is_a_date_with_a_real_month_and_day() {
    for bad in [
        "v2.1.2-20250132",
        "v2.1.2-20250100",
        "v2.1.2-20251301",
        "v2.1.2-20250015",
    ] {
        let e = WkVersion::parse(bad).unwrap_err();
        assert!(e.reason.contains("is not a YYYYMMDD date"), "{bad}: {e}");
    }
    assert_eq!(v("v2.1.2-20251231").date(), Some(20_251_231));
    assert_eq!(v("v2.1.2-20250101").date(), Some(20_250_101));
    // Seven or nine digits are no date: a pre-release suffix.
    assert_eq!(v("v2.1.2-2025012").date(), None);
    assert_eq!(
        v("v2.1.2-202501201").suffix(),
        &Suffix::Other("202501201".into())
    );
}

#[test]
fn a_describe_suffix_needs_a_hex_hash_of_four_and_at_most_dirty_after_it() {
    let describe = |commits, hash: &str, dirty| Suffix::Describe {
        commits,
        hash: hash.into(),
        dirty,
    };
    assert_eq!(v("v2.2.5-3-gabc1").suffix(), &describe(3, "abc1", false));
    // Too short, or not hex: a third-party suffix, a pre-release.
    assert_eq!(v("v2.2.5-3-gab1").suffix(), &Suffix::Other("3-gab1".into()));
    assert_eq!(
        v("v2.2.5-3-gxyz12").suffix(),
        &Suffix::Other("3-gxyz12".into())
    );
    // `-dirty` only as the last field.
    assert_eq!(
        v("v2.2.5-3-gabc1234-dirty-x").suffix(),
        &Suffix::Other("3-gabc1234-dirty-x".into())
    );
    assert_eq!(
        v("v2.2.5-3-gabc1234-clean").suffix(),
        &Suffix::Other("3-gabc1234-clean".into())
    );
}

#[test]
fn describe_builds_order_by_commit_count_as_a_number() {
    // As text `10-g…` sorts before `9-g…`; as commits after the tag it is later.
    assert!(v("v2.2.5-20260422-9-gabc1234") < v("v2.2.5-20260422-10-gabc1234"));
    assert!(v("v2.2.5-20260422-10-gabc1234") > v("v2.2.5-20260422-9-gfff1234"));
}
