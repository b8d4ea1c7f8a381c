//! The architecture, guarded (issue #16 points 1 and 7): the pure modules decide and do no
//! I/O, no module below the commands reaches up into `commands` or `cli`, the commands do
//! not import each other in a cycle, and no test file is forgotten by the test binary that should compile it (in the
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
    for (line, item) in grouped_imports(code) {
        let probe_client = item.starts_with("probe::client");
        if FORBIDDEN_IN_GROUP.contains(&module_of(&item)) || probe_client {
            out.push(format!("{line}: imports `crate::{item}`"));
        }
    }
    out
}

/// The items of every grouped `use crate::{a, b::{c, d}};` in `code` (over as many lines as
/// it takes), each with the line the group starts on: `(line, "b::{c")`.
fn grouped_imports(code: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("use crate::{") {
        let tail = &rest[at + "use crate::{".len()..];
        let group = tail.split(';').next().unwrap_or("");
        let line = code[..code.len() - rest.len() + at].lines().count().max(1);
        out.extend(group.split(',').map(|item| (line, item.trim().to_string())));
        rest = &tail[group.len()..];
    }
    out
}

/// The crate module a grouped item starts with: `b` for `b::{c`.
fn module_of(item: &str) -> &str {
    item.trim_start_matches('{')
        .split("::")
        .next()
        .unwrap_or("")
        .trim()
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

/// The files above the layers: the flags, the commands, and the crate's roots.
fn is_top_layer(rel: &str) -> bool {
    rel == "src/commands.rs"
        || rel.starts_with("src/commands/")
        || rel == "src/cli.rs"
        || rel == "src/main.rs"
        || rel == "src/lib.rs"
        || rel.starts_with("src/bin/")
}

/// Where `code` names `crate::NAME` for one of `names`, as a path (`crate::cli::Global`,
/// `crate::commands;`) or inside a grouped `use crate::{…}`: `line: what`. A longer name
/// (`crate::client`) is not `crate::cli`.
fn names_crate_module(code: &str, names: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, line) in code.lines().enumerate() {
        for n in names {
            let path = format!("crate::{n}");
            for (at, _) in line.match_indices(&path) {
                let next = line[at + path.len()..].chars().next();
                if !next.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    out.push(format!("{}: names `{path}`", i + 1));
                }
            }
        }
    }
    for (line, item) in grouped_imports(code) {
        if names.contains(&module_of(&item)) {
            out.push(format!("{line}: imports `crate::{item}`"));
        }
    }
    out
}

#[test]
fn the_layer_scanner_sees_paths_and_groups() {
    let up = ["commands", "cli"];
    assert_eq!(
        names_crate_module("use crate::commands::Context;", &up).len(),
        1
    );
    assert_eq!(
        names_crate_module("use crate::cli::{ColorChoice, Global};", &up).len(),
        1
    );
    assert_eq!(
        names_crate_module("let x = crate::commands::confirm(&q);", &up).len(),
        1
    );
    assert_eq!(
        names_crate_module("use crate::{\n    cli::Global,\n    plan::Plan,\n};", &up).len(),
        1
    );
    assert_eq!(
        names_crate_module("use crate::{commands, error::WkError};", &up).len(),
        1
    );
    assert!(
        names_crate_module("use crate::client::Client; use crate::sim::cli::Args;", &up).is_empty()
    );
    assert!(names_crate_module("use crate::{inputs::Context, output::Printer};", &up).is_empty());
}

#[test]
fn no_module_below_the_commands_reaches_up_into_them() {
    let src = root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut found = Vec::new();
    let mut scanned = 0;
    for f in files.iter().filter(|f| !is_test_file(f)) {
        let rel = f.strip_prefix(root()).unwrap().display().to_string();
        if is_top_layer(&rel) {
            continue;
        }
        scanned += 1;
        let text = std::fs::read_to_string(f).unwrap();
        for v in names_crate_module(&non_test_code(&text), &["commands", "cli"]) {
            found.push(format!("{rel}:{v}"));
        }
    }
    assert!(scanned > 50, "only {scanned} files scanned");
    assert!(
        found.is_empty(),
        "a module below the commands names `crate::commands` or `crate::cli` (move the shared \
         code down, e.g. to `inputs`, `observe`, `render`, or take plain options):\n{}",
        found.join("\n")
    );
}

/// The commands a command file names: `crate::commands::X` (also in a group
/// `crate::commands::{X, Y}`) and, from a top-level command file, `super::X`. Only names in
/// `commands` count (`target`, `rule_options` are helpers of `commands.rs`).
fn command_refs(code: &str, top_level: bool, commands: &[String]) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = Vec::new();
    let mut prefixes = vec!["crate::commands::"];
    if top_level {
        prefixes.push("super::");
    }
    for prefix in prefixes {
        for (at, _) in code.match_indices(prefix) {
            let tail = &code[at + prefix.len()..];
            let names: Vec<String> = if let Some(group) = tail.strip_prefix('{') {
                group
                    .split('}')
                    .next()
                    .unwrap_or("")
                    .split(',')
                    .map(|i| ident(i.trim()))
                    .collect()
            } else {
                vec![ident(tail)]
            };
            out.extend(names.into_iter().filter(|n| commands.contains(n)));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// A cycle in `graph` (command -> commands it names), as `a -> b -> a`, if any.
fn find_cycle(graph: &std::collections::BTreeMap<String, Vec<String>>) -> Option<String> {
    fn visit(
        n: &str,
        graph: &std::collections::BTreeMap<String, Vec<String>>,
        path: &mut Vec<String>,
        done: &mut std::collections::BTreeSet<String>,
    ) -> Option<String> {
        if let Some(at) = path.iter().position(|p| p == n) {
            let mut cycle = path[at..].to_vec();
            cycle.push(n.to_string());
            return Some(cycle.join(" -> "));
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_string());
        for m in graph.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = std::collections::BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_cycle_finder_sees_a_cycle_and_only_a_cycle() {
    let commands: Vec<String> = ["check", "live", "plan", "upgrade"]
        .map(String::from)
        .to_vec();
    let refs = command_refs(
        "use crate::commands::{live, rule_options};\nlet o = super::plan::x(); use crate::commands::target;",
        true,
        &commands,
    );
    assert_eq!(refs, ["live", "plan"]);
    assert!(command_refs("use super::*; super::plan::x()", false, &commands).is_empty());
    let graph = |edges: &[(&str, &str)]| {
        let mut g = std::collections::BTreeMap::<String, Vec<String>>::new();
        for (a, b) in edges {
            g.entry((*a).into()).or_default().push((*b).into());
        }
        g
    };
    assert_eq!(
        find_cycle(&graph(&[("check", "live"), ("live", "check")])).as_deref(),
        Some("check -> live -> check")
    );
    assert_eq!(
        find_cycle(&graph(&[
            ("plan", "check"),
            ("upgrade", "plan"),
            ("check", "upgrade")
        ]))
        .as_deref(),
        Some("check -> upgrade -> plan -> check")
    );
    assert_eq!(
        find_cycle(&graph(&[
            ("plan", "check"),
            ("upgrade", "plan"),
            ("upgrade", "check")
        ])),
        None
    );
}

/// The commands sit on the layers below, not on each other in a circle: the import graph
/// between command files (a child `commands/x/y.rs` counts as `x`) has no cycle.
#[test]
fn the_commands_do_not_import_each_other_in_a_cycle() {
    let dir = root().join("src/commands");
    let mut files = Vec::new();
    rust_files(&dir, &mut files);
    let commands: Vec<String> = files
        .iter()
        .filter(|f| f.parent() == Some(dir.as_path()))
        .map(|f| f.file_stem().unwrap().to_str().unwrap().to_string())
        .collect();
    assert!(commands.len() > 10, "commands: {commands:?}");
    let mut graph = std::collections::BTreeMap::<String, Vec<String>>::new();
    for f in files.iter().filter(|f| !is_test_file(f)) {
        let rel = f.strip_prefix(&dir).unwrap();
        let top_level = rel.components().count() == 1;
        let name = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_str()
            .unwrap()
            .trim_end_matches(".rs")
            .to_string();
        let text = std::fs::read_to_string(f).unwrap();
        let refs = command_refs(&non_test_code(&text), top_level, &commands);
        let edges = graph.entry(name.clone()).or_default();
        edges.extend(refs.into_iter().filter(|r| *r != name));
    }
    let cycle = find_cycle(&graph);
    assert!(
        cycle.is_none(),
        "the commands import each other in a cycle: {} (move what they share below them)",
        cycle.unwrap_or_default()
    );
}
