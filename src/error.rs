//! Error kinds and the one place they map to exit codes (DESIGN §1).
//!
//! Command code returns `anyhow::Result`; an error that carries a [`WkError`] decides the
//! exit code and its hint, any other error exits 1 with its context chain.

use std::fmt::{self, Write as _};
use std::process::ExitCode;

/// What kind of "no" an error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The answer is "no": a blocking finding, a failed gate, a refused run (exit 1).
    No,
    /// Usage or input error: bad flag, unreadable or invalid manifest/playbook (exit 2).
    Input,
    /// Interrupted by the operator (exit 130).
    Interrupted,
}

impl Kind {
    /// The name in `--json` error objects.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::No => "no",
            Kind::Input => "input",
            Kind::Interrupted => "interrupted",
        }
    }

    pub fn exit_code(self) -> u8 {
        match self {
            Kind::No => 1,
            Kind::Input => 2,
            Kind::Interrupted => 130,
        }
    }
}

/// An error with a kind and a hint that says what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WkError {
    pub kind: Kind,
    pub message: String,
    pub hint: Option<String>,
}

impl WkError {
    pub fn input(message: impl Into<String>, hint: impl Into<String>) -> Self {
        WkError {
            kind: Kind::Input,
            message: message.into(),
            hint: Some(hint.into()),
        }
    }
    pub fn no(message: impl Into<String>, hint: impl Into<String>) -> Self {
        WkError {
            kind: Kind::No,
            message: message.into(),
            hint: Some(hint.into()),
        }
    }
    pub fn interrupted(message: impl Into<String>) -> Self {
        WkError {
            kind: Kind::Interrupted,
            message: message.into(),
            hint: None,
        }
    }
}

impl fmt::Display for WkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for WkError {}

/// The result of a command that ran to its end: success, or a "no" already reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// The command printed its answer and the answer is "no" (exit 1).
    No,
    /// The command stopped because the operator interrupted it (exit 130).
    Interrupted,
}

/// Maps a command result to the process exit code and renders the error to stderr.
/// This is the only place exit codes are decided.
pub fn exit_code(result: &anyhow::Result<Outcome>) -> (ExitCode, Option<String>) {
    match result {
        Ok(Outcome::Success) => (ExitCode::SUCCESS, None),
        Ok(Outcome::No) => (ExitCode::from(Kind::No.exit_code()), None),
        Ok(Outcome::Interrupted) => (ExitCode::from(Kind::Interrupted.exit_code()), None),
        Err(err) => {
            if is_broken_pipe(err) {
                return (ExitCode::SUCCESS, None);
            }
            let (kind, message, hint) = parts(err);
            let mut text = format!("error: {message}");
            if let Some(h) = hint {
                let _ = write!(text, "\n  hint: {h}");
            }
            (ExitCode::from(kind.exit_code()), Some(text))
        }
    }
}

/// An error's kind, its message with the context chain (outermost first, repeats
/// skipped) and its hint.
pub fn parts(err: &anyhow::Error) -> (Kind, String, Option<String>) {
    let (kind, hint) = match err.downcast_ref::<WkError>() {
        Some(wk) => (wk.kind, wk.hint.clone()),
        None => (Kind::No, None),
    };
    let mut text = err.to_string();
    for cause in err.chain().skip(1) {
        let c = cause.to_string();
        if !text.contains(&c) {
            let _ = write!(text, ": {c}");
        }
    }
    let hint = hint.or_else(|| {
        err.chain()
            .find_map(|c| c.downcast_ref::<WkError>())
            .and_then(|w| w.hint.clone())
    });
    (kind, text, hint)
}

/// With `--json`, an error is also one JSON object on stdout (issue 13.14), so a script
/// reading stdout never gets an empty answer: `{"type":"error","data":{"kind","message",
/// "hint","exit_code"}}`. `None` when the result is not an error (or a closed pipe).
pub fn json_error(result: &anyhow::Result<Outcome>) -> Option<serde_json::Value> {
    let err = result.as_ref().err()?;
    if is_broken_pipe(err) {
        return None;
    }
    let (kind, message, hint) = parts(err);
    Some(serde_json::json!({
        "type": "error",
        "data": {
            "kind": kind.as_str(),
            "message": message,
            "hint": hint,
            "exit_code": kind.exit_code(),
        }
    }))
}

/// A broken pipe on stdout (e.g. `wkctl releases | head -1`) is not an error (exit 0).
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_documented_exit_codes() {
        let r: anyhow::Result<Outcome> = Err(WkError::input("bad manifest", "fix it").into());
        let (_, text) = exit_code(&r);
        assert_eq!(text.unwrap(), "error: bad manifest\n  hint: fix it");
        assert_eq!(Kind::Input.exit_code(), 2);
        assert_eq!(Kind::No.exit_code(), 1);
        assert_eq!(Kind::Interrupted.exit_code(), 130);
        let pipe: anyhow::Result<Outcome> =
            Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe).into());
        assert_eq!(exit_code(&pipe).1, None);
        assert_eq!(json_error(&pipe), None);
        let j = json_error(&r).unwrap();
        assert_eq!(j["type"], "error");
        assert_eq!(j["data"]["kind"], "input");
        assert_eq!(j["data"]["message"], "bad manifest");
        assert_eq!(j["data"]["hint"], "fix it");
        assert_eq!(j["data"]["exit_code"], 2);
    }
}
