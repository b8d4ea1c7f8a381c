//! Findings: the one shape every check (offline and live) reports in.
//!
//! A finding has a stable id (`version.downgrade`, `cluster.node_offline`, ...), a
//! severity, the node it is about (or none for cluster-wide findings), a one-line
//! message and a hint that says what to do. `block` findings stop `upgrade` unless the
//! operator passes the flag the finding names in `allowed_by`.

use serde::Serialize;

/// How bad a finding is. Ordered: `Info < Warn < Block`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warn,
    Block,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warn => "warn",
            Severity::Block => "block",
        }
    }
}

/// One result of a check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub id: &'static str,
    pub severity: Severity,
    pub node: Option<u64>,
    pub message: String,
    pub hint: String,
    /// The command-line flag that lets the operator proceed past this finding (only for
    /// `block` findings that an operator may knowingly accept, e.g. `--allow-downgrade`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_by: Option<&'static str>,
}

impl Finding {
    pub fn new(
        id: &'static str,
        severity: Severity,
        node: Option<u64>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Finding {
            id,
            severity,
            node,
            message: message.into(),
            hint: hint.into(),
            allowed_by: None,
        }
    }

    pub fn block(
        id: &'static str,
        node: Option<u64>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Self::new(id, Severity::Block, node, message, hint)
    }

    pub fn warn(
        id: &'static str,
        node: Option<u64>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Self::new(id, Severity::Warn, node, message, hint)
    }

    pub fn info(
        id: &'static str,
        node: Option<u64>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Self::new(id, Severity::Info, node, message, hint)
    }

    /// Names the flag that lets the operator accept this finding.
    #[must_use]
    pub fn allowed_by(mut self, flag: &'static str) -> Self {
        self.allowed_by = Some(flag);
        self
    }

    /// Turns a `block` finding into a `warn` because the operator passed its flag.
    #[must_use]
    pub fn accepted(mut self) -> Self {
        if self.severity == Severity::Block {
            self.severity = Severity::Warn;
            if let Some(flag) = self.allowed_by {
                self.message = format!("{} (accepted with `{flag}`)", self.message);
            }
        }
        self
    }
}

/// Sorts findings for display: blocks first, then by node (cluster-wide first), then id.
pub fn sort(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.node.cmp(&b.node))
            .then(a.id.cmp(b.id))
    });
}

/// True when no finding blocks.
pub fn ok(findings: &[Finding]) -> bool {
    findings.iter().all(|f| f.severity != Severity::Block)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_sort_first_and_accepting_downgrades_to_warn() {
        let mut v = vec![
            Finding::info("a.info", None, "i", "h"),
            Finding::block("a.block", Some(1002), "b", "h").allowed_by("--allow-downgrade"),
            Finding::warn("a.warn", None, "w", "h"),
        ];
        sort(&mut v);
        assert_eq!(
            v.iter().map(|f| f.id).collect::<Vec<_>>(),
            ["a.block", "a.warn", "a.info"]
        );
        assert!(!ok(&v));
        let accepted = v[0].clone().accepted();
        assert_eq!(accepted.severity, Severity::Warn);
        assert!(accepted.message.contains("--allow-downgrade"));
    }
}
