//! Man pages (issue 13.21) and boolean environment variables (issue 13.7), through the real
//! binary.

use std::process::Command;

use clap::CommandFactory;
use wkctl::cli::Cli;

use crate::harness::{Sim, SimOpts};
use crate::support::{Opts, Ws};

fn wkctl(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wkctl"));
    c.args(args)
        .env("NO_COLOR", "1")
        .env_remove("WKCTL_MANIFEST");
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().expect("run wkctl");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

#[test]
fn man_all_writes_one_page_per_subcommand_with_the_required_sections() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("man1");
    let (code, out, err) = wkctl(&["man", "--all", out_dir.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{err}");
    let mut want: Vec<String> = Cli::command()
        .get_subcommands()
        .map(|c| format!("wkctl-{}.1", c.get_name()))
        .collect();
    want.push("wkctl.1".into());
    want.sort();
    let mut written: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    assert_eq!(written, want);
    assert_eq!(out.lines().count(), want.len(), "one path per page: {out}");

    for file in &written {
        let text = std::fs::read_to_string(out_dir.join(file)).unwrap();
        for section in [
            ".SH NAME",
            ".SH SYNOPSIS",
            ".SH \"EXIT STATUS\"",
            ".SH ENVIRONMENT",
            ".SH FILES",
            ".SH \"SEE ALSO\"",
        ] {
            assert!(text.contains(section), "{file} lacks {section}");
        }
        // Every page a page refers to exists.
        for (i, _) in text.match_indices("(1)") {
            let start = text[..i]
                .rfind(|c: char| c.is_whitespace() || c == ',')
                .map_or(0, |s| s + 1);
            let name = text[start..i]
                .replace("\\fB", "")
                .replace("\\fR", "")
                .replace("\\-", "-");
            assert!(
                written.contains(&format!("{name}.1")),
                "{file} refers to {name}(1), which was not generated"
            );
        }
    }
    let top = std::fs::read_to_string(out_dir.join("wkctl.1")).unwrap();
    assert!(top.contains("\\fBwkctl\\-upgrade\\fR(1)"), "{top}");
    assert!(
        !top.contains("wkctl\\-help"),
        "no page is generated for `help`"
    );

    let upgrade = std::fs::read_to_string(out_dir.join("wkctl-upgrade.1")).unwrap();
    // EXIT STATUS comes from the subcommand's own `Exit:` line.
    assert!(
        upgrade.contains(".TP\n\\fB130\\fR\ninterrupted"),
        "{upgrade}"
    );
    assert!(upgrade.contains("\\fBWKCTL_YES\\fR\nSets \\-\\-yes. Boolean"));
    assert!(upgrade.contains(".wkctl/<name>/state.json"));
    let (code, single, _) = wkctl(&["man", "upgrade"], &[]);
    assert_eq!(code, 0);
    assert_eq!(single.trim_end(), upgrade.trim_end());
}

#[test]
fn man_pages_render_without_roff_warnings() {
    // groff is part of every system with `man`; without it there is nothing to check.
    if Command::new("groff").arg("--version").output().is_err() {
        return;
    }
    // `-k` runs preconv, as `man` does: pages are UTF-8 (`→`).
    for page in [None, Some("check"), Some("upgrade"), Some("history")] {
        let mut args = vec!["man"];
        args.extend(page);
        let (code, text, _) = wkctl(&args, &[]);
        assert_eq!(code, 0);
        let path = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(path.path(), &text).unwrap();
        let o = Command::new("groff")
            .args(["-k", "-man", "-Tutf8", "-ww", "-z"])
            .arg(path.path())
            .output()
            .unwrap();
        let warnings = String::from_utf8_lossy(&o.stderr);
        assert!(
            o.status.success() && warnings.trim().is_empty(),
            "{page:?}: {warnings}"
        );
    }
}

#[test]
fn an_unknown_man_page_is_bad_input_with_the_list() {
    let (code, out, err) = wkctl(&["man", "upgrad"], &[]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("no man page `upgrad`"), "{err}");
    assert!(err.contains("hint: pages: check, plan, upgrade"), "{err}");
}

fn downgrade_check(value: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("cluster.yaml");
    std::fs::write(
        &m,
        "name: n\nnodes:\n  - { id: 1001, host: a, version: v2.1.2-20250120 }\n",
    )
    .unwrap();
    let (code, _, err) = wkctl(
        &[
            "check",
            "--to",
            "v2.1.1",
            "--offline",
            "-m",
            m.to_str().unwrap(),
        ],
        &[("WKCTL_ALLOW_DOWNGRADE", value)],
    );
    (code, err)
}

#[test]
fn boolean_env_vars_accept_the_usual_values() {
    for v in ["1", "true", "TRUE", "yes", "Yes", "on", "y"] {
        assert_eq!(downgrade_check(v).0, 0, "WKCTL_ALLOW_DOWNGRADE={v}");
    }
    for v in ["0", "false", "no", "off", "n", ""] {
        let (code, err) = downgrade_check(v);
        assert_eq!(
            code, 1,
            "WKCTL_ALLOW_DOWNGRADE={v}: the downgrade stays blocked: {err}"
        );
    }
    let (code, err) = downgrade_check("maybe");
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("invalid value 'maybe' for '--allow-downgrade': not a boolean: use 1/0, true/false, yes/no or on/off"),
        "{err}"
    );
}

#[test]
fn wkctl_yes_1_confirms_an_upgrade_without_a_terminal() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    // Without a terminal and without `--yes`, `WKCTL_YES=0` refuses before touching a node.
    let no = ws.run(
        &["upgrade", "--to", "v2.1.2", "--json"],
        &[("WKCTL_YES", "0")],
    );
    assert_ne!(no.code, 0, "{}", no.all());
    assert!(no.all().contains("--yes"), "{}", no.all());
    let yes = ws.run(
        &["upgrade", "--to", "v2.1.2", "--json"],
        &[("WKCTL_YES", "1")],
    );
    assert_eq!(yes.code, 0, "{}", yes.all());
    let last = yes.lines().last().cloned().unwrap_or_default();
    assert_eq!(last["type"], "summary");
    assert_eq!(last["data"]["status"], "completed");
    crate::harness::rollout_was_safe(&sim.events()).unwrap();
}
