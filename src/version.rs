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
mod tests;
