//! WuKongIM version strings: parsing and ordering (facts §7.2–§7.4).
//!
//! Tags look like `v<MAJ>.<MIN>.<PAT>[-beta]-<YYYYMMDD>[-dev…]`. They are not strict
//! semver (facts §7.3: the `semver` crate rejects the `v`, sorts `-dev` after the
//! release and `>=2.1.0` does not match `2.2.5-20260422`), so we split them ourselves:
//! the triple is compared numerically, the date is informational, and a `-dev…` or any
//! other unknown suffix is a pre-release of the triple (`X-dev < X`). A `git describe`
//! suffix (`-3-gabc1234[-dirty]`, release binaries built off a tag, facts §7.4) is a
//! build *after* the tag, so it sorts after the plain release.
//!
//! The release catalog and the upgrade rules live in [`crate::releases`].

use std::cmp::Ordering;
use std::fmt;

/// What follows the date in a tag, by meaning.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Suffix {
    /// A plain release (`v2.1.2-20250120`, `v1.2.6`).
    None,
    /// A development image tag (`-dev`, `-dev-20250417`, `-dev-jsonrpc`): a pre-release of the triple.
    Dev(String),
    /// A `git describe` build: `N` commits after the tag, optionally with uncommitted changes.
    Describe {
        commits: u32,
        hash: String,
        dirty: bool,
    },
    /// Anything else (third-party tags like `-fix529`): treated as a pre-release.
    Other(String),
}

impl Suffix {
    /// Rank within one triple: pre-releases < release < builds after the release.
    fn rank(&self) -> u8 {
        match self {
            Suffix::Dev(_) | Suffix::Other(_) => 0,
            Suffix::None => 1,
            Suffix::Describe { .. } => 2,
        }
    }

    fn text(&self) -> String {
        match self {
            Suffix::None => String::new(),
            Suffix::Dev(s) | Suffix::Other(s) => s.clone(),
            // A bare `-dirty` (no describe part) is written back as it was read; `0-g-dirty`
            // would re-parse as an unknown suffix, a pre-release (found by tests/fuzz.rs).
            Suffix::Describe { hash, dirty, .. } if hash.is_empty() && *dirty => "dirty".into(),
            Suffix::Describe {
                commits,
                hash,
                dirty,
            } => {
                format!("{commits}-g{hash}{}", if *dirty { "-dirty" } else { "" })
            }
        }
    }
}

/// A parsed WuKongIM version.
#[derive(Debug, Clone)]
pub struct WkVersion {
    /// The numeric triple as a `semver::Version`; the suffix is kept as its pre-release
    /// (for dev/unknown builds) and the date as build metadata, for tools that want semver.
    semver: semver::Version,
    beta: bool,
    date: Option<u32>,
    suffix: Suffix,
}

/// Why a version string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid WuKongIM version `{input}`: {reason}")]
pub struct VersionError {
    pub input: String,
    pub reason: String,
}

impl WkVersion {
    /// Parses a tag as WuKongIM writes it, with or without the leading `v`.
    pub fn parse(input: &str) -> Result<Self, VersionError> {
        let err = |reason: &str| VersionError {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let s = input.trim();
        if s.is_empty() {
            return Err(err("it is empty (expected e.g. `v2.1.2-20250120`)"));
        }
        let s = s
            .strip_prefix('v')
            .or_else(|| s.strip_prefix('V'))
            .unwrap_or(s);
        // Counted without the `v`, so the canonical form (always with `v`) parses again.
        if s.len() > 128 {
            return Err(err("it is longer than 128 characters"));
        }
        let (triple, rest) = match s.split_once('-') {
            Some((t, r)) => (t, Some(r)),
            None => (s, None),
        };
        let mut parts = triple.split('.');
        let mut num = |what: &str| -> Result<u64, VersionError> {
            let p = parts.next().ok_or_else(|| {
                err(&format!(
                    "the {what} number is missing (expected MAJOR.MINOR.PATCH)"
                ))
            })?;
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.len() > 9 {
                return Err(err(&format!("the {what} number `{p}` is not a number")));
            }
            p.parse::<u64>()
                .map_err(|_| err(&format!("the {what} number `{p}` is not a number")))
        };
        let major = num("major")?;
        let minor = num("minor")?;
        let patch = num("patch")?;
        if parts.next().is_some() {
            return Err(err("it has more than three numbers before the first `-`"));
        }

        let mut beta = false;
        let mut date = None;
        let mut suffix = Suffix::None;
        if let Some(rest) = rest {
            if rest.is_empty() {
                return Err(err("it ends with `-`"));
            }
            let mut tokens: Vec<&str> = rest.split('-').collect();
            if tokens.iter().any(|t| {
                t.is_empty()
                    || !t
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_')
            }) {
                return Err(err(
                    "the part after the version holds an empty or invalid field",
                ));
            }
            if tokens.first() == Some(&"beta") {
                beta = true;
                tokens.remove(0);
            }
            if let Some(first) = tokens.first()
                && first.len() == 8
                && first.bytes().all(|b| b.is_ascii_digit())
            {
                let d: u32 = first.parse().map_err(|_| err("bad date"))?;
                let (month, day) = ((d / 100) % 100, d % 100);
                if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
                    return Err(err(&format!("`{first}` is not a YYYYMMDD date")));
                }
                date = Some(d);
                tokens.remove(0);
            }
            if !tokens.is_empty() {
                suffix = classify_suffix(&tokens);
            }
        }

        let mut sv = semver::Version::new(major, minor, patch);
        if matches!(suffix, Suffix::Dev(_) | Suffix::Other(_)) {
            sv.pre = semver::Prerelease::new(&suffix.text().replace('_', "-"))
                .unwrap_or(semver::Prerelease::EMPTY);
        }
        if let Some(d) = date {
            sv.build =
                semver::BuildMetadata::new(&d.to_string()).unwrap_or(semver::BuildMetadata::EMPTY);
        }
        Ok(WkVersion {
            semver: sv,
            beta,
            date,
            suffix,
        })
    }

    pub fn major(&self) -> u64 {
        self.semver.major
    }
    pub fn minor(&self) -> u64 {
        self.semver.minor
    }
    pub fn patch(&self) -> u64 {
        self.semver.patch
    }
    /// `(major, minor, patch)`.
    pub fn triple(&self) -> (u64, u64, u64) {
        (self.semver.major, self.semver.minor, self.semver.patch)
    }
    /// The date stamp of the tag (informational: it is the date the version was named).
    pub fn date(&self) -> Option<u32> {
        self.date
    }
    pub fn is_beta(&self) -> bool {
        self.beta
    }
    pub fn suffix(&self) -> &Suffix {
        &self.suffix
    }
    /// A `-dev…` image tag (facts §7.1: pushed by `deploy-v2-dev`, a pre-release of the triple).
    pub fn is_dev(&self) -> bool {
        matches!(self.suffix, Suffix::Dev(_))
    }
    /// A plain release tag: no suffix after the date.
    pub fn is_release(&self) -> bool {
        self.suffix == Suffix::None
    }
    /// The triple as `semver::Version`, suffix as pre-release, date as build metadata.
    pub fn semver(&self) -> &semver::Version {
        &self.semver
    }
    /// True when `self` and `other` are the same build for upgrade purposes: same triple
    /// and same suffix (the date is informational, so `v2.1.2` equals `v2.1.2-20250120`).
    pub fn same_build(&self, other: &WkVersion) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

fn classify_suffix(tokens: &[&str]) -> Suffix {
    let joined = tokens.join("-");
    if tokens[0] == "dev" {
        return Suffix::Dev(joined);
    }
    // git describe: N-gHASH[-dirty]
    if tokens.len() >= 2 {
        let commits = tokens[0].parse::<u32>().ok();
        let hash = tokens[1]
            .strip_prefix('g')
            .filter(|h| h.len() >= 4 && h.bytes().all(|b| b.is_ascii_hexdigit()));
        let dirty_ok = match tokens.get(2) {
            None => Some(false),
            Some(&"dirty") if tokens.len() == 3 => Some(true),
            _ => None,
        };
        if let (Some(commits), Some(hash), Some(dirty)) = (commits, hash, dirty_ok) {
            return Suffix::Describe {
                commits,
                hash: hash.to_string(),
                dirty,
            };
        }
    }
    if tokens == ["dirty"] {
        return Suffix::Describe {
            commits: 0,
            hash: String::new(),
            dirty: true,
        };
    }
    Suffix::Other(joined)
}

impl PartialEq for WkVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for WkVersion {}

impl PartialOrd for WkVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for WkVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.triple()
            .cmp(&other.triple())
            .then(self.suffix.rank().cmp(&other.suffix.rank()))
            .then_with(|| match (&self.suffix, &other.suffix) {
                (Suffix::Describe { commits: a, .. }, Suffix::Describe { commits: b, .. }) => {
                    a.cmp(b)
                }
                _ => Ordering::Equal,
            })
            .then_with(|| self.suffix.text().cmp(&other.suffix.text()))
    }
}

impl fmt::Display for WkVersion {
    /// The canonical tag, always with `v` (Docker image tags carry it, facts §7.4).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major(), self.minor(), self.patch())?;
        if self.beta {
            f.write_str("-beta")?;
        }
        if let Some(d) = self.date {
            write!(f, "-{d:08}")?;
        }
        if self.suffix != Suffix::None {
            write!(f, "-{}", self.suffix.text())?;
        }
        Ok(())
    }
}

impl std::str::FromStr for WkVersion {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        WkVersion::parse(s)
    }
}

impl serde::Serialize for WkVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for WkVersion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        WkVersion::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
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
}
