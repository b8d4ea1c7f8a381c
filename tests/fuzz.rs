//! Property tests ("fuzzing" that runs on stable Rust and in CI): every parser of
//! operator or node input is fed arbitrary and near-valid input and must never panic.
//!
//! Case counts are small by default so the file runs in seconds; `PROPTEST_CASES`
//! overrides them for a longer bounded run (see "Fuzzing" in the README). Failing cases
//! that proptest finds are kept in `tests/fuzz.proptest-regressions` and replayed first.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::Value;

use wkctl::error::Kind;
use wkctl::manifest;
use wkctl::playbook::{render, shell_quote};
use wkctl::probe::{
    self, ClusterInfo, ClusterLogs, ClusterView, Health, InfoNode, InfoSlot, NodeAnswers,
    NodeConfig, NodeList, NodeStatus, ProbeError, SlotStatus, Varz,
};
use wkctl::version::WkVersion;
use wkctl::{checks, doctor, gate};

/// `cases` unless `PROPTEST_CASES` asks for more (or fewer).
fn cases(default: u32) -> Config {
    let mut config = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = default;
    }
    config
}

// ----- versions ---------------------------------------------------------------------------

/// `v?N.N.N(-beta)?(-YYYYMMDD)?(-suffix)*`; with `near`, also deliberate near-misses
/// (empty or huge numbers, bad dates, odd characters, trailing junk).
fn version_text(near: bool) -> impl Strategy<Value = String> {
    let num = if near {
        prop_oneof!["0", "[0-9]{1,3}", "0[0-9]{1,2}", "[0-9]{9,11}", ""].boxed()
    } else {
        prop_oneof!["0", "[0-9]{1,3}", "0[0-9]{1,2}", "[0-9]{9}"].boxed()
    };
    let date = if near {
        prop_oneof![valid_date(), "[0-9]{8}", "[0-9]{7}"].boxed()
    } else {
        valid_date().boxed()
    };
    let mut suffixes = vec![
        Just("dev".to_string()).boxed(),
        Just("dirty".to_string()).boxed(),
        Just("beta".to_string()).boxed(),
        "[0-9]{1,3}".boxed(),
        "g[0-9a-f]{3,9}".boxed(),
        "[a-zA-Z0-9._]{1,8}".boxed(),
        "[a-z]{100,125}".boxed(),
    ];
    if near {
        suffixes.push("[ -~]{0,3}".boxed());
    }
    let suffix = proptest::strategy::Union::new(suffixes);
    let tail = if near {
        prop_oneof!["", ".1", "-", " "].boxed()
    } else {
        Just(String::new()).boxed()
    };
    (
        prop_oneof!["", "v", "V", " v"],
        num.clone(),
        num.clone(),
        num,
        proptest::option::of(Just("-beta")),
        proptest::option::of(date),
        proptest::collection::vec(suffix, 0..4),
        tail,
    )
        .prop_map(|(v, a, b, c, beta, date, suffix, tail)| {
            let mut s = format!("{v}{a}.{b}.{c}{}", beta.unwrap_or(""));
            if let Some(d) = date {
                s.push('-');
                s.push_str(&d);
            }
            for x in suffix {
                s.push('-');
                s.push_str(&x);
            }
            s + &tail
        })
}

fn valid_date() -> impl Strategy<Value = String> {
    "20[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])"
}

fn any_version_text() -> impl Strategy<Value = String> {
    prop_oneof![
        version_text(true),
        version_text(false),
        any::<String>(),
        "[v0-9.a-z_-]{0,40}"
    ]
}

/// Mostly valid versions (a long suffix can still push one over 128 characters).
fn version() -> impl Strategy<Value = WkVersion> {
    version_text(false).prop_filter_map("unparsable", |s| WkVersion::parse(&s).ok())
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn versions_parse_without_panic_and_round_trip(s in any_version_text()) {
        if let Ok(v) = WkVersion::parse(&s) {
            let shown = v.to_string();
            let again = WkVersion::parse(&shown)
                .map_err(|e| TestCaseError::fail(format!("{s:?} → {shown:?}: {e}")))?;
            prop_assert_eq!(&again, &v, "{:?} → {:?}", s, shown);
            prop_assert_eq!(again.to_string(), shown);
            prop_assert_eq!(again.suffix(), v.suffix());
            prop_assert_eq!((again.is_beta(), again.date()), (v.is_beta(), v.date()));
        }
    }

    #[test]
    fn version_order_is_total_and_agrees_with_eq(a in version(), b in version(), c in version()) {
        use std::cmp::Ordering::*;
        prop_assert_eq!(a.cmp(&b), b.cmp(&a).reverse());
        prop_assert_eq!(a.cmp(&b) == Equal, a == b);
        prop_assert_eq!(a.cmp(&a), Equal);
        prop_assert_eq!(a.partial_cmp(&b), Some(a.cmp(&b)));
        if a <= b && b <= c {
            prop_assert!(a <= c, "{} <= {} <= {} but not {} <= {}", a, b, c, a, c);
        }
        if a == b && b == c {
            prop_assert_eq!(&a, &c);
        }
    }
}

// ----- manifests --------------------------------------------------------------------------

const GOOD_MANIFEST: &str = "\
name: im-prod
playbook: docker-compose
api:
  token_env: WK_MANAGER_TOKEN
  timeout: 5s
vars:
  compose_dir: /opt/wukongim
nodes:
  - id: 1001
    host: 10.0.0.11
    version: v2.0.10-20241221
    vars:
      service: wukongim1
  - id: 1002
    host: 10.0.0.12
policy:
  order: controller-last
  canary: true
  soak: 30s
  poll_interval: 1s
";

/// One edit of a valid manifest: delete a line, insert garbage, or replace a value.
fn manifest_edit() -> impl Strategy<Value = (usize, u8, String)> {
    let junk = prop_oneof![
        Just("99999999999999999999999999".to_string()),
        Just("-9223372036854775809".to_string()),
        Just("1e999".to_string()),
        Just(".nan".to_string()),
        Just("0".to_string()),
        Just("&a [*a]".to_string()),
        Just("*nope".to_string()),
        Just("!!binary aGVsbG8=".to_string()),
        Just("{a: {b: {c: {d: [1, [2, [3]]]}}}}".to_string()),
        Just("\"\\u0000\"".to_string()),
        Just("'\u{1F980}'".to_string()),
        Just("|\n  block".to_string()),
        Just("~".to_string()),
        "[a-z_]{1,12}: [ -~]{0,12}",
        "[ -~]{0,20}",
        any::<String>(),
    ];
    (0usize..40, 0u8..4, junk)
}

fn mutate(text: &str, edits: &[(usize, u8, String)]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for (at, op, junk) in edits {
        let i = at % (lines.len() + 1);
        match op {
            0 if i < lines.len() => {
                lines.remove(i);
            }
            1 => lines.insert(i, junk.clone()),
            2 if i < lines.len() => {
                let keep = lines[i].split_once(':').map_or("", |(k, _)| k).to_string();
                lines[i] = format!("{keep}: {junk}");
            }
            _ => lines.insert(i, format!("  garbage_{i}: {junk}")),
        }
    }
    lines.join("\n") + "\n"
}

/// `Ok`, or an input error whose message is `path:line:col: ...`.
fn check_manifest(text: &str) -> Result<(), TestCaseError> {
    let shown = "fuzz/cluster.yaml";
    let started = Instant::now();
    let result = manifest::parse(text, Path::new(shown));
    prop_assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    if let Err(e) = result {
        prop_assert_eq!(e.kind, Kind::Input);
        let rest = e
            .message
            .strip_prefix(shown)
            .and_then(|r| r.strip_prefix(':'));
        let position = rest.and_then(|r| {
            let mut parts = r.splitn(3, ':');
            let line = parts.next()?.parse::<u64>().ok()?;
            let col = parts.next()?.parse::<u64>().ok()?;
            Some((line, col))
        });
        prop_assert!(position.is_some(), "no `path:line:col:` in {:?}", e.message);
        prop_assert!(e.hint.is_some(), "no hint for {:?}", e.message);
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn arbitrary_text_is_a_manifest_or_a_positioned_input_error(text in any::<String>()) {
        check_manifest(&text)?;
    }

    #[test]
    fn mutated_manifests_load_or_fail_with_a_position(
        edits in proptest::collection::vec(manifest_edit(), 1..5)
    ) {
        check_manifest(&mutate(GOOD_MANIFEST, &edits))?;
    }

    #[test]
    fn deep_nesting_and_alias_bombs_are_rejected_quickly(depth in 1usize..20_000, width in 2usize..12) {
        check_manifest(&format!("name: a\nvars: {}{}\n", "[".repeat(depth), "]".repeat(depth)))?;
        check_manifest(&format!("name: a\nvars:\n  k: {}x\n", "- ".repeat(depth)))?;
        check_manifest(&format!("name: a\nnodes:\n{}", "  ".repeat(depth.min(500)) + "- id: 1"))?;
        check_manifest(&billion_laughs(width, 9))?;
    }
}

/// The "billion laughs": each anchor is a list of `width` aliases of the previous one.
/// The anchors sit under `vars`, a known key, so the parser must expand (or refuse) them
/// before serde can reject the value's type.
fn billion_laughs(width: usize, levels: usize) -> String {
    let mut s = String::from("name: a\nvars:\n  a0: &a0 lol\n");
    for l in 1..=levels {
        let refs = vec![format!("*a{}", l - 1); width].join(", ");
        let _ = writeln!(s, "  a{l}: &a{l} [{refs}]");
    }
    format!("{s}nodes:\n  - id: 1\n    host: a\n    vars: {{k: *a{levels}}}\n")
}

#[test]
fn the_classic_billion_laughs_is_refused_within_a_second() {
    let started = Instant::now();
    let e = manifest::parse(&billion_laughs(10, 9), Path::new("bomb.yaml")).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(e.kind, Kind::Input);
    assert!(e.message.starts_with("bomb.yaml:"), "{}", e.message);
    // Refused at `a1`, the first list a var cannot be: the schema never expands the bomb.
    assert!(e.message.starts_with("bomb.yaml:4:"), "{}", e.message);
}

#[test]
fn alias_floods_hit_the_parser_budget_quickly() {
    let flood = |n: usize| {
        let mut text = String::from("name: &n a\nvars:\n");
        for i in 0..n {
            let _ = writeln!(text, "  k{i}: *n");
        }
        text + "nodes:\n  - id: 1\n    host: a\n"
    };
    // A few aliases are fine.
    let m = manifest::parse(&flood(50), Path::new("aliases.yaml")).unwrap();
    assert_eq!(m.vars.len(), 50);
    // serde-saphyr's default budget (on in `manifest::parse`) refuses more than 10 aliases
    // per anchor past 100 aliases, with a position.
    let started = Instant::now();
    let e = manifest::parse(&flood(2_000), Path::new("aliases.yaml")).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(e.message.starts_with("aliases.yaml:"), "{}", e.message);
    assert!(e.message.contains("budget breached"), "{}", e.message);
}

// ----- node answers -----------------------------------------------------------------------

/// Key names of every model (snake and camel case), so objects often hit real fields.
const KEYS: &[&str] = &[
    "id",
    "is_leader",
    "isLeader",
    "role",
    "cluster_addr",
    "clusterAddr",
    "api_server_addr",
    "apiServerAddr",
    "online",
    "offline_count",
    "offlineCount",
    "last_offline",
    "lastOffline",
    "allow_vote",
    "allowVote",
    "slot_count",
    "slotCount",
    "term",
    "slot_leader_count",
    "uptime",
    "app_version",
    "config_version",
    "status",
    "total",
    "data",
    "version",
    "slotReplicaCount",
    "channelReplicaCount",
    "nodes",
    "slots",
    "migrateFrom",
    "migrateTo",
    "createdAt",
    "join",
    "leader",
    "replicas",
    "learners",
    "expectLeader",
    "applied",
    "last",
    "server_id",
    "server_name",
    "commit",
    "commit_date",
    "connections",
    "message",
    "msg",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop_oneof![
            Just(0u64),
            Just(1),
            Just(2),
            Just(1001),
            Just(1002),
            Just(u64::MAX)
        ]
        .prop_map(Value::from),
        prop_oneof![
            Just("ok".to_string()),
            Just("1".to_string()),
            Just("1001".to_string()),
            Just("1d2h3m4s".to_string()),
            Just("99999999999999999999d".to_string()),
            Just("v2.1.2-20250120".to_string()),
            Just("tcp://127.0.0.1:11110".to_string()),
            Just("leader not found".to_string()),
            "[0-9dhms.]{0,12}",
            any::<String>(),
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec(
                (
                    prop_oneof![
                        proptest::sample::select(KEYS).prop_map(str::to_string),
                        ".{0,6}"
                    ],
                    inner
                ),
                0..10
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Bytes shaped like an answer: a JSON value, a mangled one, or noise.
fn answer_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        json_value().prop_map(|v| v.to_string().into_bytes()),
        (json_value(), any::<usize>(), any::<u8>()).prop_map(|(v, at, b)| {
            let mut bytes = v.to_string().into_bytes();
            let i = at % (bytes.len() + 1);
            bytes.insert(i, b);
            bytes
        }),
        proptest::collection::vec(any::<u8>(), 0..64),
    ]
}

fn probe_error() -> impl Strategy<Value = ProbeError> {
    prop_oneof![
        Just(ProbeError::Unauthorized),
        Just(ProbeError::Refused),
        Just(ProbeError::Timeout),
        Just(ProbeError::NotFound),
        any::<u16>().prop_map(ProbeError::ServerError),
        ".{0,8}".prop_map(ProbeError::BadBody),
        ".{0,8}".prop_map(ProbeError::Network),
        (
            any::<u16>(),
            prop_oneof![
                Just("leader not found".to_string()),
                ".{0,8}".prop_map(String::from)
            ]
        )
            .prop_map(|(status, msg)| ProbeError::ApiError { status, msg }),
    ]
}

/// `from_slice` as the client would, turning a parse failure into a `BadBody`.
fn decoded<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ProbeError> {
    serde_json::from_slice(bytes).map_err(|e| ProbeError::BadBody(e.to_string()))
}

fn or_error<T>(bytes: &[u8], err: Option<ProbeError>) -> Result<T, ProbeError>
where
    T: serde::de::DeserializeOwned,
{
    match err {
        Some(e) => Err(e),
        None => decoded(bytes),
    }
}

fn node_answers(id: u64) -> impl Strategy<Value = NodeAnswers> {
    let one = || {
        (
            answer_bytes(),
            proptest::option::weighted(0.3, probe_error()),
        )
    };
    (
        one(),
        one(),
        one(),
        (
            any::<bool>(),
            any::<Option<String>>(),
            proptest::option::weighted(0.3, probe_error()),
        ),
    )
        .prop_map(
            move |((varz, e1), (node, e2), (info, e3), (ok, message, e4))| NodeAnswers {
                id,
                api: format!("http://127.0.0.1:{}", 5000 + id),
                health: e4.map_or(Ok(Health { ok, message }), Err),
                varz: or_error::<Varz>(&varz, e1),
                node: or_error::<NodeConfig>(&node, e2),
                info: or_error::<ClusterInfo>(&info, e3),
            },
        )
}

fn cluster_view(at_secs: u64) -> impl Strategy<Value = ClusterView> {
    (
        proptest::collection::vec(
            prop_oneof![Just(1001u64), Just(1002), Just(1003), 0u64..1100],
            0..4,
        ),
        proptest::option::of(answer_bytes()),
    )
        .prop_flat_map(|(ids, simple)| {
            let answers: Vec<_> = ids.into_iter().map(node_answers).collect();
            (answers, Just(simple))
        })
        .prop_map(move |(answers, simple)| {
            let list: Option<NodeList> = simple.and_then(|b| serde_json::from_slice(&b).ok());
            let from = answers.first().map_or(1001, |a| a.id);
            let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + at_secs);
            probe::assemble(&answers, list.as_ref().map(|l| (from, l)), at)
        })
}

fn one_node_manifest(ids: &[u64]) -> manifest::Manifest {
    let mut text = String::from("name: fuzz\nnodes:\n");
    // Each node its own API port: a manifest with two nodes on one API is refused (#18).
    for (i, id) in ids.iter().enumerate() {
        let _ = write!(
            text,
            "  - id: {id}\n    host: 127.0.0.1\n    api: http://127.0.0.1:{}\n    version: v2.1.2-20250120\n",
            10_000 + i
        );
    }
    manifest::parse(&text, Path::new("fuzz.yaml")).expect("the fuzz manifest is valid")
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn every_model_survives_arbitrary_bytes(bytes in answer_bytes()) {
        let _ = serde_json::from_slice::<Varz>(&bytes);
        let _ = serde_json::from_slice::<NodeConfig>(&bytes);
        let _ = serde_json::from_slice::<NodeList>(&bytes);
        let _ = serde_json::from_slice::<ClusterInfo>(&bytes);
        let _ = serde_json::from_slice::<InfoNode>(&bytes);
        let _ = serde_json::from_slice::<InfoSlot>(&bytes);
        let _ = serde_json::from_slice::<ClusterLogs>(&bytes);
        let _ = serde_json::from_slice::<NodeStatus>(&bytes);
        let _ = serde_json::from_slice::<SlotStatus>(&bytes);
        if let Ok(z) = serde_json::from_slice::<Varz>(&bytes) {
            let _ = probe::parse_go_uptime(&z.uptime);
            let _ = z.server_id_num();
        }
    }

    #[test]
    fn go_uptime_parser_survives_any_text(s in prop_oneof!["[0-9dhms.µ]{0,24}", any::<String>()]) {
        let _ = probe::parse_go_uptime(&s);
    }

    #[test]
    fn views_gates_and_checks_survive_any_answers(
        prev in cluster_view(0),
        now in cluster_view(5),
        target in version(),
        baseline_uptime in proptest::option::of(any::<u64>()),
    ) {
        let mut ids: Vec<u64> = now.nodes.iter().map(|n| n.id).filter(|id| (1..=1023).contains(id)).collect();
        ids.sort_unstable();
        ids.dedup();
        for id in ids.iter().copied().chain([1001]) {
            let mut before = gate::NodeBaseline::from_view(&prev, id);
            before.uptime = before.uptime.or(baseline_uptime.map(Duration::from_secs));
            let state = gate::evaluate(&before, Some(&prev), &now, &gate::GateTarget::new(target.clone()));
            let _ = (state.ready_now(), state.waiting_on());
            let _ = gate::evaluate(&before, None, &now, &gate::GateTarget::new(target.clone()));
        }
        let _ = gate::cluster_settled(&now);
        let _ = checks::controller(&now);
        if !ids.is_empty() {
            let findings = checks::live_findings(&one_node_manifest(&ids), &now);
            for f in &findings {
                prop_assert!(!f.message.is_empty() && !f.hint.is_empty(), "{:?}", f);
            }
        }
        let _ = checks::live_findings(&one_node_manifest(&[1001, 1002, 1003]), &now);
    }
}

// ----- doctor parsers ---------------------------------------------------------------------

fn log_like() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        any::<String>(),
        "[0-9]{4}[-/][0-9]{2}[-/][0-9]{2}[ T][ -~]{0,30}",
        "[a-z0-9]{1,10}  \\| .{0,30}",
        ".{395,405}",
        "(WK_[A-Z_]{1,12}=.{0,10}|export WK_A=.{0,4}|[ ]{0,6}[a-zA-Z.]{1,10}:[ ].{0,10}|- .{0,8})",
        Just("2026-11-26T08:41:47.977Z panic: leader not found".to_string()),
        Just("é".repeat(250)),
    ];
    proptest::collection::vec(line, 0..12).prop_map(|l| l.join("\n"))
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn doctor_parsers_survive_any_text(text in log_like()) {
        let settings = doctor::settings::parse(&text);
        for (k, v) in &settings {
            let _ = doctor::settings::normalize(k);
            let _ = doctor::settings::fingerprint(doctor::settings::FingerprintKey::random().as_ref(), v);
        }
        for m in doctor::signatures::scan(1001, &text) {
            prop_assert!(m.line.chars().count() <= 401, "{} chars", m.line.chars().count());
            prop_assert!(doctor::signatures::signature(m.signature).is_some());
        }
    }
}

// ----- templates --------------------------------------------------------------------------

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn render_never_panics(tpl in prop_oneof![any::<String>(), "([a-z ]|\\{\\{|\\}\\}|[ .a-z_]{0,4}){0,12}"], value in any::<String>()) {
        let vars = BTreeMap::from([("a".to_string(), value.clone()), ("node.id".to_string(), value)]);
        let _ = render(&tpl, &vars);
    }
}

proptest! {
    // Each case spawns one `sh`; the values of a case go through it together.
    #![proptest_config(cases(48))]

    #[test]
    fn quoted_values_come_back_exactly_through_sh(
        values in proptest::collection::vec(
            // argv cannot hold NUL, so NUL is the one character left out.
            prop_oneof!["[^\u{0}]{0,12}", "['\"$`\\\\!*?;&|<>(){}\\[\\] ~#=%\n\t-]{0,8}"],
            1..16
        )
    ) {
        let mut vars = BTreeMap::new();
        let mut tpl = String::from("printf '%s\\0'");
        for (i, v) in values.iter().enumerate() {
            vars.insert(format!("v{i}"), v.clone());
            let _ = write!(tpl, " {{{{v{i}}}}}");
        }
        let script = render(&tpl, &vars).map_err(TestCaseError::fail)?;
        let out = Command::new("sh").arg("-c").arg(&script).output()
            .map_err(|e| TestCaseError::fail(format!("cannot run sh: {e}")))?;
        prop_assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let mut got: Vec<&[u8]> = out.stdout.split(|b| *b == 0).collect();
        prop_assert_eq!(got.pop(), Some(&b""[..]));
        let want: Vec<&[u8]> = values.iter().map(String::as_bytes).collect();
        prop_assert_eq!(got, want, "script {:?}", script);
        for v in &values {
            prop_assert!(!shell_quote(v).is_empty());
        }
    }
}

// ----- plan files (issue 17) ------------------------------------------------------------------

/// A valid plan file of the example manifest: live (with a view) or offline.
fn plan_file_bytes(live: bool) -> Vec<u8> {
    use wkctl::planfile;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let m = manifest::load(&root.join("examples/cluster.yaml")).unwrap();
    let pb = wkctl::playbook::load(&m.playbook, &root.join("examples")).unwrap();
    let target = wkctl::releases::resolve_target("v2.1.2", false).unwrap();
    let versions: BTreeMap<_, _> = m.nodes.iter().map(|n| (n.id, n.version.clone())).collect();
    let plan = wkctl::plan::build(&wkctl::plan::Input {
        manifest: &m,
        playbook: &pb,
        target: &target,
        versions: &versions,
        controller: None,
        live,
        rules: wkctl::releases::RuleOptions::default(),
        kind: wkctl::plan::PlanKind::Upgrade,
    })
    .unwrap();
    let view = ClusterView::default();
    let file = planfile::build(
        &plan,
        &planfile::Inputs {
            manifest_path: "cluster.yaml",
            manifest_text: "name: im-prod\n",
            playbook_text: "{}",
            target: planfile::TargetInfo {
                to: plan.to.to_string(),
                allow_unknown_version: false,
                allow_downgrade: false,
                allow_downgrade_across_rewrite: false,
            },
            view: live.then_some(&view),
            now: SystemTime::now(),
            only_nodes: &[],
        },
    )
    .unwrap();
    planfile::to_bytes(&file)
}

fn leaves(v: &Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(path.clone());
    match v {
        Value::Object(m) => m.iter().for_each(|(k, v)| {
            path.push(k.clone());
            leaves(v, path, out);
            path.pop();
        }),
        Value::Array(a) => a.iter().enumerate().for_each(|(i, v)| {
            path.push(i.to_string());
            leaves(v, path, out);
            path.pop();
        }),
        _ => {}
    }
}

fn slot<'v>(v: &'v mut Value, path: &[String]) -> Option<&'v mut Value> {
    path.iter().try_fold(v, |v, k| match v {
        Value::Array(a) => a.get_mut(k.parse::<usize>().ok()?),
        Value::Object(o) => o.get_mut(k),
        _ => None,
    })
}

proptest! {
    #![proptest_config(cases(256))]

    /// Any corrupt or hostile plan file: read, or refused with the file named and a hint;
    /// what is read renders, diffs and is judged against a cluster without a panic.
    #[test]
    fn plan_files_are_read_or_refused_clearly(
        live in any::<bool>(),
        how in 0u8..5,
        at in any::<usize>(),
        value in json_value(),
        noise in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        use wkctl::planfile::{self, drift, render};
        let original = plan_file_bytes(live);
        let mut doc: Value = serde_json::from_slice(&original).unwrap();
        let mut paths = Vec::new();
        leaves(&doc, &mut Vec::new(), &mut paths);
        let path = paths[at % paths.len()].clone();
        let bytes = match how {
            0 => original[..at % original.len()].to_vec(),
            1 => {
                if let Some(s) = slot(&mut doc, &path) { *s = value; }
                serde_json::to_vec(&doc).unwrap()
            }
            2 => {
                if let Some((last, parent)) = path.split_last()
                    && let Some(p) = slot(&mut doc, parent)
                {
                    match p {
                        Value::Object(o) => { o.remove(last); }
                        Value::Array(a) => { if let Ok(i) = last.parse::<usize>() { a.remove(i); } }
                        _ => {}
                    }
                }
                serde_json::to_vec(&doc).unwrap()
            }
            3 => {
                let mut b = original.clone();
                let i = at % b.len();
                b.splice(i..i, noise);
                b
            }
            _ => value.to_string().into_bytes(),
        };
        let first = planfile::parse("a.json", &original).unwrap();
        match planfile::parse("f.json", &bytes) {
            Ok(f) => {
                let md = render::markdown(&f, Some("sha256:00"), Some("f.json"));
                prop_assert!(md.starts_with("### wkctl plan"));
                let _ = render::diff(("a.json", &first, "sha256:a"), ("f.json", &f, "sha256:f"), true);
                let _ = drift::cluster(&f, &ClusterView::default());
                let _ = planfile::age("f.json", &f, SystemTime::now());
            }
            Err(e) => {
                prop_assert!(e.message.contains("f.json"), "{}", e.message);
                prop_assert!(e.hint.as_deref().is_some_and(|h| !h.is_empty()));
                prop_assert!(e.message.len() < 4096, "bounded message: {}", e.message.len());
            }
        }
    }
}
