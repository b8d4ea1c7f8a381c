//! wksim's own view of WuKongIM builds: which release tags exist (facts §7.1), how each
//! build behaves (facts §3.11) and what it reports about itself (facts §7.4).
//!
//! This is written from the facts file on purpose, apart from wkctl's `releases` and
//! `version` modules: the simulator must be able to disagree with the gate (issue 14 §5),
//! so a wrong capability rule in wkctl shows up as a failing test instead of agreeing with
//! itself by construction.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

/// Every v2 release tag (facts §7.1, upstream `git tag`), oldest first. A `-dev` image
/// reports the newest of these that is older than itself (facts §7.4).
const RELEASES: &[&str] = &[
    "v2.0.0-beta",
    "v2.0.1-beta-20240715",
    "v2.0.2-beta-20240805",
    "v2.0.3-beta-20240828",
    "v2.0.4-beta-20240904",
    "v2.0.5-20240925",
    "v2.0.6-20241008",
    "v2.0.7-20241104",
    "v2.0.8-20241129",
    "v2.0.9-20241220",
    "v2.0.10-20241221",
    "v2.1.0-20241224",
    "v2.1.1-20241230",
    "v2.1.2-20250120",
    "v2.1.3-20250210",
    "v2.1.4-20250319",
    "v2.1.5-20250424",
    "v2.2.0-20250426",
    "v2.2.1-20250624",
    "v2.2.2-20251229",
    "v2.2.3-20260128",
    "v2.2.4-20260313",
    "v2.2.5-20260422",
];

/// Per-version behaviour that an orchestrator can observe (facts §3.11).
#[allow(clippy::struct_excessive_bools)] // four independent facts of one build
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Behaviour {
    /// `/health` runs `CheckClusterStatus` (from v2.1.4, commit `62bca4277`); before: always ok.
    pub health_checks_cluster: bool,
    /// `/varz` is registered (commented out in v2.0.1–v2.0.5).
    pub varz: bool,
    /// `/cluster/node.app_version` is filled (`cluster.WithAppVersion` missing v2.1.1–v2.2.1).
    pub app_version: bool,
    /// `MustWaitAllSlotsReady(1 minute)` panics at startup (no: v2.0.0-beta–v2.0.3,
    /// no-op: v2.1.1–v2.1.3).
    pub waits_for_slots: bool,
}

/// One row per band of facts §3.11: (first triple of the band, behaviour). The last row
/// whose triple is not above the build's applies.
const BANDS: &[((u64, u64, u64), Behaviour)] = &[
    (
        (0, 0, 0),
        Behaviour {
            health_checks_cluster: false,
            varz: true,
            app_version: true,
            waits_for_slots: false,
        },
    ),
    (
        (2, 0, 1),
        Behaviour {
            health_checks_cluster: false,
            varz: false,
            app_version: true,
            waits_for_slots: false,
        },
    ),
    (
        (2, 0, 4),
        Behaviour {
            health_checks_cluster: false,
            varz: false,
            app_version: true,
            waits_for_slots: true,
        },
    ),
    (
        (2, 0, 6),
        Behaviour {
            health_checks_cluster: false,
            varz: true,
            app_version: true,
            waits_for_slots: true,
        },
    ),
    (
        (2, 1, 1),
        Behaviour {
            health_checks_cluster: false,
            varz: true,
            app_version: false,
            waits_for_slots: false,
        },
    ),
    (
        (2, 1, 4),
        Behaviour {
            health_checks_cluster: true,
            varz: true,
            app_version: false,
            waits_for_slots: true,
        },
    ),
    (
        (2, 2, 2),
        Behaviour {
            health_checks_cluster: true,
            varz: true,
            app_version: true,
            waits_for_slots: true,
        },
    ),
];

/// A build of WuKongIM as an image tag names it: `v2.1.2-20250120`, `v2.1.3-20250210-dev`,
/// `v2.2.4-fix529` (facts §7.1, §7.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Build {
    /// The tag with a leading `v` (how images are tagged).
    tag: String,
    triple: (u64, u64, u64),
    date: Option<u32>,
    /// What follows the date (`dev`, `dev-jsonrpc`, `fix529`); `None` for a release.
    extra: Option<String>,
}

impl Build {
    /// Parses an image tag or a version, with or without `v`. A bare `v2.1.2` means the
    /// release tag of that triple when one exists.
    pub fn parse(input: &str) -> Result<Build, String> {
        let bad =
            |why: &str| format!("invalid version `{input}`: {why} (expected e.g. v2.1.2-20250120)");
        let s = input.trim();
        let s = s.strip_prefix(['v', 'V']).unwrap_or(s);
        if s.is_empty() || s.len() > 128 {
            return Err(bad("empty or too long"));
        }
        let (nums, rest) = s.split_once('-').map_or((s, None), |(a, b)| (a, Some(b)));
        let parts: Vec<&str> = nums.split('.').collect();
        let [a, b, c] = parts[..] else {
            return Err(bad("not MAJOR.MINOR.PATCH"));
        };
        let num = |p: &str| -> Result<u64, String> {
            if p.is_empty() || p.len() > 9 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(&format!("`{p}` is not a number")));
            }
            p.parse()
                .map_err(|_| bad(&format!("`{p}` is not a number")))
        };
        let triple = (num(a)?, num(b)?, num(c)?);
        let mut date = None;
        let mut extra = None;
        let mut beta = false;
        if let Some(rest) = rest {
            let mut tokens: Vec<&str> = rest.split('-').collect();
            if tokens.iter().any(|t| {
                t.is_empty()
                    || !t
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_')
            }) {
                return Err(bad("empty or invalid field after the version"));
            }
            if tokens.first() == Some(&"beta") {
                beta = true;
                tokens.remove(0);
            }
            if let Some(d) = tokens
                .first()
                .filter(|t| t.len() == 8 && t.bytes().all(|b| b.is_ascii_digit()))
            {
                date = d.parse().ok();
                tokens.remove(0);
            }
            if !tokens.is_empty() {
                extra = Some(tokens.join("-"));
            }
        }
        let mut tag = format!("v{}.{}.{}", triple.0, triple.1, triple.2);
        if beta {
            tag.push_str("-beta");
        }
        if let Some(d) = date {
            let _ = write!(tag, "-{d}");
        }
        if let Some(e) = &extra {
            let _ = write!(tag, "-{e}");
        }
        if rest.is_none()
            && let Some(release) = RELEASES.iter().find(|r| triple_of(r) == triple)
        {
            return Build::parse(release);
        }
        Ok(Build {
            tag,
            triple,
            date,
            extra,
        })
    }

    /// The image tag, with `v`.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    pub fn triple(&self) -> (u64, u64, u64) {
        self.triple
    }

    /// A `-dev…` image (Makefile `deploy-v2-dev`, facts §6.1): a pre-release of its triple.
    pub fn is_dev(&self) -> bool {
        self.extra
            .as_deref()
            .is_some_and(|e| e == "dev" || e.starts_with("dev-"))
    }

    /// How this build behaves (facts §3.11). A `-dev` or patched build behaves like the code
    /// of its own triple.
    pub fn behaviour(&self) -> Behaviour {
        BANDS
            .iter()
            .rev()
            .find(|(from, _)| *from <= self.triple)
            .map_or(BANDS[0].1, |(_, b)| *b)
    }

    /// The release tag compiled into the binary: the image build uses
    /// `git describe --tags --abbrev=0` (facts §7.4), so a `-dev` image of X reports the newest
    /// release before X, and a patched image (`v2.2.4-fix529`, issue #545) the release it was
    /// built on. A plain release reports itself.
    pub fn reported_release(&self) -> String {
        let Some(_) = &self.extra else {
            return self.tag.clone();
        };
        let dev = self.is_dev();
        RELEASES
            .iter()
            .rev()
            .find(|r| {
                let t = triple_of(r);
                if dev {
                    t < self.triple
                } else {
                    t <= self.triple
                }
            })
            .map_or_else(|| self.tag.clone(), |r| (*r).to_string())
    }

    /// Commits after the reported release tag (0 for a release). Only for the release-binary
    /// style, where `git describe --tags --always --dirty` shows them (facts §7.4).
    fn commits_after(&self) -> u32 {
        if self.extra.is_some() { 3 } else { 0 }
    }

    /// Version as the binary reports it: Docker style with `v` (`git describe --abbrev=0`),
    /// release-binary style without it and with the `-N-gHASH` of an off-tag build.
    pub fn reported(&self, release_style: bool) -> String {
        let base = self.reported_release();
        if !release_style {
            return base;
        }
        let plain = base.trim_start_matches('v').to_string();
        match self.commits_after() {
            0 => plain,
            n => format!("{plain}-{n}-g{}", &self.commit()[..7]),
        }
    }

    /// The git commit of this build: distinct for every image tag, so a `-dev` image differs
    /// from the release it reports (facts §7.4).
    pub fn commit(&self) -> String {
        Sha256::digest(self.tag.as_bytes())
            .iter()
            .take(20)
            .fold(String::new(), |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            })
    }

    /// Date stamp of the build: its own, else the one of the release it reports.
    /// `commit_date`: Unix seconds as a string, taken from the build's date stamp (facts §3.2).
    pub fn commit_date(&self) -> String {
        self.date().map_or_else(String::new, |d| {
            let days = super::logs::days_from_civil(i64::from(d / 10_000), d / 100 % 100, d % 100);
            (days * 86_400 + 8 * 3600).to_string()
        })
    }

    pub fn date(&self) -> Option<u32> {
        self.date.or_else(|| {
            Build::parse(&self.reported_release())
                .ok()
                .and_then(|b| b.date)
        })
    }
}

impl std::fmt::Display for Build {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.tag)
    }
}

fn triple_of(tag: &str) -> (u64, u64, u64) {
    let s = tag.trim_start_matches('v');
    let nums = s.split('-').next().unwrap_or("");
    let mut it = nums.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    (
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Build {
        Build::parse(s).unwrap()
    }

    #[test]
    fn bands_follow_facts_3_11() {
        let row = |s: &str| {
            let x = b(s).behaviour();
            (
                x.health_checks_cluster,
                x.varz,
                x.app_version,
                x.waits_for_slots,
            )
        };
        assert_eq!(row("v2.0.0-beta"), (false, true, true, false));
        assert_eq!(row("v2.0.3-beta-20240828"), (false, false, true, false));
        assert_eq!(row("v2.0.5-20240925"), (false, false, true, true));
        assert_eq!(row("v2.0.6-20241008"), (false, true, true, true));
        assert_eq!(row("v2.1.0-20241224"), (false, true, true, true));
        assert_eq!(row("v2.1.1-20241230"), (false, true, false, false));
        assert_eq!(row("v2.1.3-20250210"), (false, true, false, false));
        assert_eq!(row("v2.1.4-20250319"), (true, true, false, true));
        assert_eq!(row("v2.2.1-20250624"), (true, true, false, true));
        assert_eq!(row("v2.2.2-20251229"), (true, true, true, true));
        assert_eq!(row("v2.2.5-20260422"), (true, true, true, true));
    }

    #[test]
    fn dev_and_patched_images_report_the_release_they_build_on() {
        let dev = b("v2.1.3-20250210-dev");
        assert!(dev.is_dev());
        assert_eq!(dev.reported(false), "v2.1.2-20250120");
        assert_ne!(dev.commit(), b("v2.1.2-20250120").commit());
        assert_ne!(dev.commit(), b("v2.1.3-20250210").commit());
        assert!(dev.reported(true).starts_with("2.1.2-20250120-3-g"));
        assert_eq!(b("v2.2.4-fix529").reported(false), "v2.2.4-20260313");
        assert_eq!(b("v2.2.6-dev").reported(false), "v2.2.5-20260422");
        assert_eq!(b("2.1.2-20250120").reported(false), "v2.1.2-20250120");
        assert_eq!(b("v2.1.2-20250120").reported(true), "2.1.2-20250120");
        assert_eq!(b("v2.1.2"), b("v2.1.2-20250120"));
        assert_eq!(dev.date(), Some(20_250_210));
        assert_eq!(b("v2.2.4-dev").date(), Some(20_260_128));
    }

    #[test]
    fn rejects_garbage() {
        for s in ["", "v", "2.1", "a.b.c", "2.1.2-", "2.1.2--x", "2.1.2-a b"] {
            assert!(Build::parse(s).is_err(), "{s}");
        }
    }
}
