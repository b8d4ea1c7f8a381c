//! `wkctl man [PAGE]` and `wkctl man --all DIR`: one man page per subcommand (issue 13.21),
//! generated from the clap types by clap_mangen, plus EXIT STATUS, ENVIRONMENT, FILES and
//! SEE ALSO sections. SEE ALSO names only pages that [`pages`] generates.

use std::fmt::Write as _;
use std::path::Path;

use clap::{ArgAction, CommandFactory};

use crate::cli::{Cli, ManArgs};
use crate::error::{Outcome, WkError};
use crate::output::Printer;

/// Subcommands that read no manifest and keep no state (their FILES section says so).
const NO_FILES: &[&str] = &["releases", "completions", "man", "schema", "demo", "init"];

/// The command tree as the pages show it (no `help` subcommand: `--help` is everywhere).
fn command() -> clap::Command {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// Every page: (file name, roff text), the top page first.
pub fn pages() -> std::io::Result<Vec<(String, String)>> {
    let top = command();
    let subs: Vec<clap::Command> = top
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect();
    let names: Vec<String> = subs
        .iter()
        .map(|s| format!("wkctl-{}", s.get_name()))
        .collect();
    let mut out = vec![("wkctl.1".to_string(), render(&top, None, &names)?)];
    for sub in subs {
        let text = render(&sub, Some(sub.get_name()), &names)?;
        out.push((format!("wkctl-{}.1", sub.get_name()), text));
    }
    Ok(out)
}

/// The page of `wkctl` (`None`) or of one subcommand.
pub fn page(name: Option<&str>) -> Result<String, WkError> {
    let pages = pages().map_err(|e| WkError::no(e.to_string(), "internal error"))?;
    let file = name.map_or_else(|| "wkctl.1".to_string(), |n| format!("wkctl-{n}.1"));
    let names: Vec<&str> = pages
        .iter()
        .filter_map(|(f, _)| f.strip_prefix("wkctl-")?.strip_suffix(".1"))
        .collect();
    match pages.iter().find(|(f, _)| *f == file) {
        Some((_, text)) => Ok(text.clone()),
        None => Err(WkError::input(
            format!("no man page `{}`", name.unwrap_or_default()),
            format!("pages: {}", names.join(", ")),
        )),
    }
}

fn render(cmd: &clap::Command, sub: Option<&str>, all: &[String]) -> std::io::Result<String> {
    let man = clap_mangen::Man::new(cmd.clone());
    let mut buf = Vec::new();
    man.render_title(&mut buf)?;
    man.render_name_section(&mut buf)?;
    man.render_synopsis_section(&mut buf)?;
    man.render_description_section(&mut buf)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut buf)?;
    }
    if cmd.has_subcommands() {
        man.render_subcommands_section(&mut buf)?;
    }
    if cmd.get_after_help().is_some() {
        man.render_extra_section(&mut buf)?;
    }
    let mut s = String::from_utf8_lossy(&buf).into_owned();
    s = s.replacen(".SH EXTRA", ".SH EXAMPLES", 1);
    exit_status(&mut s, cmd);
    environment(&mut s, cmd);
    files(&mut s, sub);
    let _ = writeln!(s, ".SH \"SEE ALSO\"");
    let see: Vec<String> = match sub {
        None => all
            .iter()
            .map(|n| format!("\\fB{}\\fR(1)", esc(n)))
            .collect(),
        Some(_) => vec!["\\fBwkctl\\fR(1)".to_string()],
    };
    let _ = writeln!(s, "{}", see.join(", "));
    let mut v = Vec::new();
    man.render_version_section(&mut v)?;
    // Each render call repeats the roff preamble; keep only the section.
    let version = String::from_utf8_lossy(&v).into_owned();
    s.push_str(version.find(".SH").map_or("", |i| &version[i..]));
    Ok(s)
}

/// From the `Exit: 0 done, 1 …` line of the command's help, else the codes every command
/// uses (`error::Kind`).
fn exit_status(s: &mut String, cmd: &clap::Command) {
    let _ = writeln!(s, ".SH \"EXIT STATUS\"");
    let help = cmd
        .get_after_help()
        .map(ToString::to_string)
        .unwrap_or_default();
    let listed: Vec<(String, String)> = help
        .lines()
        .find_map(|l| l.trim().strip_prefix("Exit: "))
        .map(|codes| {
            codes
                .trim_end_matches('.')
                .split(", ")
                .filter_map(|c| c.split_once(' '))
                .map(|(n, what)| (n.to_string(), what.to_string()))
                .collect()
        })
        .unwrap_or_default();
    let codes = if listed.is_empty() {
        vec![
            ("0".to_string(), "success".to_string()),
            (
                "1".to_string(),
                "refused, blocked or failed (the message says why)".to_string(),
            ),
            (
                "2".to_string(),
                "bad input: arguments, manifest or playbook".to_string(),
            ),
            ("130".to_string(), "interrupted (Ctrl-C)".to_string()),
        ]
    } else {
        listed
    };
    for (n, what) in codes {
        let _ = writeln!(s, ".TP\n\\fB{n}\\fR\n{}", esc(&what));
    }
}

fn environment(s: &mut String, cmd: &clap::Command) {
    let _ = writeln!(s, ".SH ENVIRONMENT");
    for a in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
        let Some(env) = a.get_env() else { continue };
        let flag = a
            .get_long()
            .map_or_else(|| a.get_id().to_string(), |l| format!("--{l}"));
        let mut what = format!("Sets {flag}.");
        if matches!(a.get_action(), ArgAction::SetTrue) {
            what.push_str(" Boolean: 1, true, yes or on; 0, false, no, off or empty.");
        }
        let _ = writeln!(
            s,
            ".TP\n\\fB{}\\fR\n{}",
            esc(&env.to_string_lossy()),
            esc(&what)
        );
    }
    for (name, what) in [
        (
            "RUST_LOG",
            "Log filter for stderr; overrides -v (e.g. wkctl=debug).",
        ),
        (
            "NO_COLOR",
            "Any non-empty value turns colour off (--color auto).",
        ),
        (
            "the variable named by api.token_env",
            "The managerToken of the node API; never written to the manifest or printed.",
        ),
        (
            "the variable named by notify.url_env",
            "The webhook URL for notifications; never printed.",
        ),
    ] {
        let _ = writeln!(s, ".TP\n\\fB{}\\fR\n{}", esc(name), esc(what));
    }
}

fn files(s: &mut String, sub: Option<&str>) {
    let _ = writeln!(s, ".SH FILES");
    if sub.is_some_and(|n| NO_FILES.contains(&n)) {
        let what = match sub {
            Some("init") => "Writes cluster.yaml (or -o FILE).",
            Some("demo") => "A temporary directory, removed at the end.",
            _ => "None.",
        };
        let _ = writeln!(s, "{}", esc(what));
        return;
    }
    for (path, what) in [
        (
            "cluster.yaml",
            "The cluster manifest (-m, WKCTL_MANIFEST); relative paths in it are relative to its directory.",
        ),
        (
            ".wkctl/<name>/state.json",
            "The state of the current or unfinished run, next to the manifest (--state-dir, WKCTL_STATE_DIR).",
        ),
        (
            ".wkctl/<name>/lock",
            "The cluster lock: pid, host and start time of the run holding it.",
        ),
        (
            ".wkctl/<name>/history/",
            "One JSON file per finished or discarded run (wkctl history).",
        ),
    ] {
        let _ = writeln!(s, ".TP\n\\fI{}\\fR\n{}", esc(path), esc(what));
    }
    if sub == Some("recover") {
        for (path, what) in [
            (
                ".wkctl/<name>/recover.json",
                "The recover run: the versions the nodes are started with and the step cursor --resume continues from.",
            ),
            (
                ".wkctl/<name>/doctor-<ms>.json",
                "The doctor report (JSON) collected by step 1, before anything is stopped.",
            ),
        ] {
            let _ = writeln!(s, ".TP\n\\fI{}\\fR\n{}", esc(path), esc(what));
        }
    }
}

/// Escapes text for roff: backslashes, hyphens (so they stay ASCII) and a leading dot.
fn esc(text: &str) -> String {
    let s = text.replace('\\', "\\\\").replace('-', "\\-");
    if s.starts_with('.') || s.starts_with('\'') {
        format!("\\&{s}")
    } else {
        s
    }
}

pub fn run(args: &ManArgs, p: &Printer) -> anyhow::Result<Outcome> {
    if let Some(dir) = &args.all {
        write_all(dir, p)?;
        return Ok(Outcome::Success);
    }
    let text = page(args.page.as_deref())?;
    p.out(text.trim_end())?;
    Ok(Outcome::Success)
}

fn write_all(dir: &Path, p: &Printer) -> Result<(), WkError> {
    std::fs::create_dir_all(dir).map_err(|e| {
        WkError::input(
            format!("cannot create `{}`: {e}", dir.display()),
            "pass a writable directory, e.g. `--all ~/.local/share/man/man1`",
        )
    })?;
    let pages = pages().map_err(|e| WkError::no(e.to_string(), "internal error"))?;
    for (file, text) in pages {
        let path = dir.join(&file);
        std::fs::write(&path, text).map_err(|e| {
            WkError::input(
                format!("cannot write `{}`: {e}", path.display()),
                "check the directory's permissions",
            )
        })?;
        let _ = p.out(&path.display().to_string());
    }
    Ok(())
}
