//! The architecture, guarded (issue #16 point 7): the pure modules decide and do no I/O,
//! and no test file is forgotten by the test binary that should compile it (in the
//! spirit of jj's `test_no_forgotten_test_files`). These read the source tree; they need
//! no simulator.

use std::path::{Path, PathBuf};

/// The modules that decide (version, releases, manifest, playbook, plan, gate, checks,
/// finding): given inputs and observations, they return verdicts. The ones that act are
/// elsewhere: `execute` (the only one that changes the cluster), `probe`, `transport`,
/// `state`, `doctor`, `notify`, `smoke` and the commands (which read, write or ask).
const PURE: [&str; 8] = [
    "version", "releases", "manifest", "playbook", "plan", "gate", "checks", "finding",
];

/// What a pure module must not name: a runtime, a process, an HTTP client, or a module
/// that acts.
const FORBIDDEN_PATHS: [&str; 8] = [
    "tokio",
    "std::process",
    "reqwest",
    "crate::execute",
    "crate::commands",
    "crate::probe::client",
    "crate::transport",
    "crate::state",
];

/// The same modules, named inside a grouped `use crate::{…}`.
const FORBIDDEN_IN_GROUP: [&str; 4] = ["execute", "commands", "transport", "state"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// Test code is allowed to spawn a shell or make a temp dir: a `tests.rs` file (or the
/// test-only `fixtures.rs`), and everything from a file's `#[cfg(test)]` on.
fn is_test_file(p: &Path) -> bool {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name == "tests.rs" || name == "fixtures.rs"
}

fn non_test_code(text: &str) -> String {
    text.lines()
        .take_while(|l| l.trim() != "#[cfg(test)]")
        // A comment line is kept empty, so line numbers stay the file's.
        .map(|l| {
            if l.trim_start().starts_with("//") {
                ""
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every forbidden name in `code`, as `line: what`.
fn violations(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, line) in code.lines().enumerate() {
        for f in FORBIDDEN_PATHS {
            if line.contains(f) {
                out.push(format!("{}: names `{f}`", i + 1));
            }
        }
    }
    // `use crate::{a, b::{c, d}};`, over as many lines as it takes.
    let mut rest = code;
    while let Some(at) = rest.find("use crate::{") {
        let tail = &rest[at + "use crate::{".len()..];
        let group = tail.split(';').next().unwrap_or("");
        let line = code[..code.len() - rest.len() + at].lines().count().max(1);
        for item in group.split(',') {
            let head = item
                .trim()
                .trim_start_matches('{')
                .split("::")
                .next()
                .unwrap_or("")
                .trim();
            let probe_client = item.trim().starts_with("probe::client");
            if FORBIDDEN_IN_GROUP.contains(&head) || probe_client {
                out.push(format!("{line}: imports `crate::{}`", item.trim()));
            }
        }
        rest = &tail[group.len()..];
    }
    out
}

#[test]
fn the_scanner_sees_each_way_of_naming_a_module_that_acts() {
    assert!(violations("fn f() { let _ = std::process::id(); }").len() == 1);
    assert!(violations("use tokio::time::sleep;").len() == 1);
    assert!(violations("use crate::{finding::Finding, state::RunState};").len() == 1);
    assert!(violations("use crate::{\n    probe::client::Client,\n    plan::Plan,\n};").len() == 1);
    assert!(violations("use crate::{execute, version::WkVersion};").len() == 1);
    assert!(violations("use crate::{gate::SignalState, probe::ClusterView};").is_empty());
    assert!(violations(&non_test_code("// tokio is not used here\nfn f() {}")).is_empty());
    assert!(
        violations(&non_test_code(
            "fn f() {}\n#[cfg(test)]\nmod t { use tokio; }"
        ))
        .is_empty()
    );
}

#[test]
fn pure_modules_do_no_io_and_name_no_module_that_acts() {
    let src = root().join("src");
    let mut found = Vec::new();
    let mut scanned = 0;
    for m in PURE {
        let mut files = vec![src.join(format!("{m}.rs"))];
        rust_files(&src.join(m), &mut files);
        for f in files
            .into_iter()
            .filter(|f| f.is_file() && !is_test_file(f))
        {
            let text = std::fs::read_to_string(&f).unwrap();
            scanned += 1;
            for v in violations(&non_test_code(&text)) {
                found.push(format!("{}:{v}", f.strip_prefix(root()).unwrap().display()));
            }
        }
    }
    assert!(scanned >= PURE.len(), "only {scanned} files scanned");
    assert!(
        found.is_empty(),
        "a pure module reaches for I/O or for a module that acts (move the I/O to the \
         caller, or the type to the pure side):\n{}",
        found.join("\n")
    );
}

/// `mod` names declared in `file` (a test crate root or a module with children).
fn declared_mods(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let rest = l
                .strip_prefix("pub mod ")
                .or_else(|| l.strip_prefix("mod "))?;
            Some(rest.trim_end_matches(';').trim().to_string())
        })
        .collect()
}

#[test]
fn every_test_file_is_compiled_by_its_test_binary() {
    let tests = root().join("tests");
    let mut forgotten = Vec::new();
    // `tests/cli/x.rs` is a `mod x;` of `tests/cli/main.rs`; `tests/cli/x/y.rs` a `mod y;`
    // of `tests/cli/x.rs`.
    let check_dir = |dir: &Path, parent: &Path, forgotten: &mut Vec<String>| {
        let mods = declared_mods(parent);
        let mut files = Vec::new();
        for e in std::fs::read_dir(dir).unwrap().filter_map(Result::ok) {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "rs") && p != parent {
                files.push(p);
            }
        }
        for p in files {
            let stem = p.file_stem().unwrap().to_str().unwrap().to_string();
            if !mods.contains(&stem) {
                forgotten.push(p.strip_prefix(root()).unwrap().display().to_string());
            }
        }
    };
    let cli = tests.join("cli");
    check_dir(&cli, &cli.join("main.rs"), &mut forgotten);
    for e in std::fs::read_dir(&cli).unwrap().filter_map(Result::ok) {
        let p = e.path();
        if p.is_dir() {
            let parent = cli.join(format!("{}.rs", p.file_name().unwrap().to_str().unwrap()));
            check_dir(&p, &parent, &mut forgotten);
        }
    }
    // Top-level test crates and the files they pull in with `#[path]`.
    let mut pulled = String::new();
    for e in std::fs::read_dir(&tests).unwrap().filter_map(Result::ok) {
        if e.path().extension().is_some_and(|x| x == "rs") {
            pulled.push_str(&std::fs::read_to_string(e.path()).unwrap());
        }
    }
    for e in std::fs::read_dir(tests.join("docker"))
        .unwrap()
        .filter_map(Result::ok)
    {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "rs") {
            let name = format!("docker/{}", p.file_name().unwrap().to_str().unwrap());
            if !pulled.contains(&format!("#[path = \"{name}\"]")) {
                forgotten.push(format!("tests/{name}"));
            }
        }
    }
    assert!(
        forgotten.is_empty(),
        "test files no test binary compiles (their tests never run): {forgotten:?}"
    );
}

/// `src/x/tests.rs` is included by a `mod tests;` in `src/x.rs`. A unit-test file nobody
/// includes is a suite that silently stopped running.
#[test]
fn every_unit_test_file_in_src_is_included() {
    let src = root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut forgotten = Vec::new();
    for f in &files {
        let name = f.file_name().unwrap().to_str().unwrap();
        let dir = f.parent().unwrap();
        let included = name != "tests.rs"
            || std::fs::read_to_string(dir.with_extension("rs"))
                .is_ok_and(|t| t.lines().any(|l| l.trim() == "mod tests;"));
        if !included {
            forgotten.push(f.strip_prefix(root()).unwrap().display().to_string());
        }
    }
    assert!(
        forgotten.is_empty(),
        "unit-test files never compiled: {forgotten:?}"
    );
}

/// One convention each (issue #16 point 6): a module with children is `x.rs` beside `x/`
/// (never `x/mod.rs`), and a unit-test suite is inline (`mod tests { … }`) or, when large,
/// `x/tests.rs` (never a sibling `x_tests.rs` pulled in by `#[path]`).
#[test]
fn modules_and_unit_tests_follow_one_layout() {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let odd: Vec<String> = files
        .iter()
        .filter(|f| {
            let name = f.file_name().unwrap().to_str().unwrap();
            let text = std::fs::read_to_string(f).unwrap_or_default();
            name == "mod.rs" || name.ends_with("_tests.rs") || text.contains("#[path = ")
        })
        .map(|f| f.strip_prefix(root()).unwrap().display().to_string())
        .collect();
    assert!(odd.is_empty(), "off the layout: {odd:?}");
}
