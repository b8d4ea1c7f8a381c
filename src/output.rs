//! The one `Printer`: stdout carries results (tables, plans, JSON); progress, logs and
//! warnings go to stderr (DESIGN §8). Colour follows `--color`, `NO_COLOR` and the terminal.
//! [`progress`] shows a run's events through it.
#![allow(clippy::print_stdout, clippy::print_stderr)]

pub mod plain;
pub mod progress;

use std::io::{self, IsTerminal, Write};

use serde::Serialize;

use crate::finding::{Finding, Severity};

/// Where and how output goes.
#[derive(Debug, Clone)]
pub struct Printer {
    pub json: bool,
    pub quiet: bool,
    pub verbose: u8,
    color_out: bool,
    color_err: bool,
    /// Progress bars on stderr (a terminal, not `--json`, `-q` or `--no-progress`).
    pub progress: bool,
}

/// When to colour: `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Color {
    Auto,
    Always,
    Never,
}

/// The global output flags a [`Printer`] follows (`cli` converts its own flags to these).
#[derive(Debug, Clone, Copy)]
pub struct Opts {
    pub color: Color,
    pub quiet: bool,
    pub verbose: u8,
    pub no_progress: bool,
}

impl Printer {
    pub fn new(opts: &Opts, json: bool) -> Self {
        let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let decide = |tty: bool| match opts.color {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => tty && !no_color_env,
        };
        let err_tty = io::stderr().is_terminal();
        Printer {
            json,
            quiet: opts.quiet,
            verbose: opts.verbose,
            color_out: decide(io::stdout().is_terminal()),
            color_err: decide(err_tty),
            progress: err_tty && !json && !opts.quiet && !opts.no_progress,
        }
    }

    /// A printer for tests and embedding: plain, no colour, no progress.
    pub fn plain(json: bool) -> Self {
        Printer {
            json,
            quiet: false,
            verbose: 0,
            color_out: false,
            color_err: false,
            progress: false,
        }
    }

    /// A result line on stdout.
    pub fn out(&self, text: &str) -> io::Result<()> {
        let mut o = io::stdout().lock();
        writeln!(o, "{text}")?;
        o.flush()
    }

    /// One pretty JSON document on stdout.
    pub fn json_doc<T: Serialize>(&self, value: &T) -> io::Result<()> {
        let text = serde_json::to_string_pretty(value).map_err(io::Error::other)?;
        self.out(&text)
    }

    /// One compact JSON line on stdout (JSON Lines).
    pub fn json_line<T: Serialize>(&self, value: &T) -> io::Result<()> {
        let text = serde_json::to_string(value).map_err(io::Error::other)?;
        self.out(&text)
    }

    /// A progress or information line on stderr (hidden with `-q`).
    pub fn note(&self, text: &str) {
        if !self.quiet {
            err_line(text);
        }
    }

    /// A warning on stderr (always shown).
    pub fn warn(&self, text: &str, hint: Option<&str>) {
        let label = self.paint_err("warning", "33;1");
        err_line(&format!("{label}: {text}"));
        if let Some(h) = hint {
            err_line(&format!("  hint: {h}"));
        }
    }

    pub fn bold(&self, s: &str) -> String {
        paint(self.color_out, s, "1")
    }
    pub fn green(&self, s: &str) -> String {
        paint(self.color_out, s, "32")
    }
    pub fn red(&self, s: &str) -> String {
        paint(self.color_out, s, "31;1")
    }
    pub fn yellow(&self, s: &str) -> String {
        paint(self.color_out, s, "33")
    }
    pub fn dim(&self, s: &str) -> String {
        paint(self.color_out, s, "2")
    }
    pub fn paint_err(&self, s: &str, code: &str) -> String {
        paint(self.color_err, s, code)
    }
    pub fn dim_err(&self, s: &str) -> String {
        paint(self.color_err, s, "2")
    }

    /// Severity label, coloured.
    pub fn severity(&self, s: Severity) -> String {
        let text = format!("{:<5}", s.as_str());
        match s {
            Severity::Block => self.red(&text),
            Severity::Warn => self.yellow(&text),
            Severity::Info => self.dim(&text),
        }
    }

    /// Findings as human lines: severity, id, node, message, then the hint.
    pub fn findings(&self, findings: &[Finding]) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        if findings.is_empty() {
            s.push_str("no findings\n");
        }
        let width = findings
            .iter()
            .map(|f| f.id.as_str().len())
            .max()
            .unwrap_or(0);
        for f in findings {
            let node = f
                .node
                .map_or_else(|| "cluster".to_string(), |n| format!("node {n}"));
            let _ = writeln!(
                s,
                "{} {:<width$}  {:<9}  {}",
                self.severity(f.severity),
                f.id,
                node,
                f.message
            );
            let _ = writeln!(s, "      {}", self.dim(&format!("hint: {}", f.hint)));
        }
        s
    }
}

fn paint(on: bool, s: &str, code: &str) -> String {
    if on {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

/// Pads columns of a table (header + rows) with two spaces between them.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let cols = header.len();
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(cols) {
            width[i] = width[i].max(visible_len(c));
        }
    }
    let mut s = String::new();
    let line = |cells: Vec<String>, s: &mut String| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            l.push_str(c);
            if i + 1 < cells.len() {
                l.push_str(&" ".repeat(width[i].saturating_sub(visible_len(c)) + 2));
            }
        }
        s.push_str(l.trim_end());
        s.push('\n');
    };
    line(header.iter().map(|h| (*h).to_string()).collect(), &mut s);
    for r in rows {
        line(r.clone(), &mut s);
    }
    s
}

/// Length without ANSI escapes.
fn visible_len(s: &str) -> usize {
    let mut n = 0;
    let mut esc = false;
    for c in s.chars() {
        if esc {
            if c == 'm' {
                esc = false;
            }
        } else if c == '\x1b' {
            esc = true;
        } else {
            n += 1;
        }
    }
    n
}

/// `1m05s`-style short duration for humans.
pub fn short_duration(d: std::time::Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// Prints a rendered error (from [`crate::error::exit_code`]) to stderr.
/// One JSON line on stdout outside a command (the `--json` error object). A closed
/// stdout is ignored.
pub fn print_json_line(value: &serde_json::Value) {
    let _ = writeln!(io::stdout().lock(), "{value}");
}

pub fn eprint_error(text: &str) {
    err_line(text);
}

/// One line on stderr. A write error (the pipe closed after a SIGHUP, `| tee` gone) is
/// ignored: `eprintln!` would panic and kill the run in the middle of a node.
fn err_line(text: &str) {
    let _ = writeln!(io::stderr().lock(), "{text}");
}

/// Asks a yes/no question on stderr and reads the answer from stdin (`y`/`yes` = yes).
pub async fn confirm(prompt: &str) -> bool {
    let _ = write!(io::stderr().lock(), "{prompt}");
    let _ = io::stderr().flush();
    tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        io::stdin()
            .read_line(&mut line)
            .is_ok_and(|_| matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_ignoring_colour() {
        let t = table(
            &["ID", "STATE"],
            &[
                vec!["\x1b[31m1001\x1b[0m".into(), "up".into()],
                vec!["2".into(), "down".into()],
            ],
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "ID    STATE");
        assert_eq!(lines[2], "2     down");
        assert_eq!(short_duration(std::time::Duration::from_secs(65)), "1m05s");
    }
}
