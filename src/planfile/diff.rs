//! A keyed diff of two JSON documents: what `plan --diff` shows and what the apply
//! reports when the file's plan is not the plan its inputs give; and a line diff of two
//! input files (drift, `plan --diff`, a refused resume).

use std::collections::BTreeMap;

use serde_json::Value;

/// One difference between two JSON documents: (path, old, new); `None` = absent.
pub type Change = (String, Option<Value>, Option<Value>);

/// Keys that change on every plan and say nothing about what runs.
const VOLATILE: [&str; 3] = ["created_at", "at", "uptime_s"];

/// Lines only in `old` (`-`) and only in `new` (`+`), in order. Enough to show an edit.
pub fn line_diff(old: &str, new: &str) -> String {
    let o: Vec<&str> = old.lines().collect();
    let n: Vec<&str> = new.lines().collect();
    let mut out = Vec::new();
    for l in &o {
        if !n.contains(l) {
            out.push(format!("  - {l}"));
        }
    }
    for l in &n {
        if !o.contains(l) {
            out.push(format!("  + {l}"));
        }
    }
    if out.is_empty() {
        out.push("  (only whitespace or order changed)".into());
    }
    out.join("\n")
}

/// The leaf differences between `a` and `b`. Arrays of objects are matched by `id` (nodes)
/// or `kind` (steps) when every element has one, so a path reads `nodes.1002.steps.stop.command`.
pub fn changes(a: &Value, b: &Value, skip_volatile: bool) -> Vec<Change> {
    let mut out = Vec::new();
    walk(String::new(), Some(a), Some(b), skip_volatile, &mut out);
    // What runs first, then the target and inputs, the cluster, the findings, the digests.
    let rank = |p: &str| {
        if p.contains("nodes.") && p.starts_with("plan.") || p.contains("run_steps") {
            0
        } else if p.contains("digest") {
            4
        } else if p.contains("findings") {
            3
        } else if p.starts_with("observed") {
            2
        } else {
            1
        }
    };
    out.sort_by_key(|(p, _, _)| rank(p));
    out
}

fn key_of(v: &Value) -> Option<String> {
    let o = v.as_object()?;
    if let Some(id) = o.get("id").filter(|i| i.is_u64() || i.is_string()) {
        let node = o.get("node").and_then(Value::as_u64);
        let id = id.as_str().map_or_else(|| id.to_string(), str::to_string);
        return Some(match node {
            Some(n) if o.contains_key("severity") => format!("{id}@{n}"),
            _ => id,
        });
    }
    o.get("kind").and_then(Value::as_str).map(str::to_string)
}

/// The keys of an array's elements in order (a repeated key gets `#2`, `#3`…), or `None`
/// when an element has none.
fn keys(items: &[Value]) -> Option<Vec<String>> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    items
        .iter()
        .map(|v| {
            let k = key_of(v)?;
            let n = seen.entry(k.clone()).or_insert(0);
            *n += 1;
            Some(if *n == 1 { k } else { format!("{k}#{n}") })
        })
        .collect()
}

fn at<'v>(ks: &[String], vs: &'v [Value], k: &String) -> Option<&'v Value> {
    ks.iter().position(|x| x == k).and_then(|i| vs.get(i))
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn walk(path: String, a: Option<&Value>, b: Option<&Value>, skip: bool, out: &mut Vec<Change>) {
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                if skip && VOLATILE.contains(&k.as_str()) {
                    continue;
                }
                walk(join(&path, k), x.get(k), y.get(k), skip, out);
            }
        }
        (Some(Value::Array(x)), Some(Value::Array(y))) => {
            if let (Some(kx), Some(ky)) = (keys(x), keys(y))
                && !(kx.is_empty() && ky.is_empty())
            {
                let mut order = kx.clone();
                order.extend(ky.iter().filter(|k| !kx.contains(k)).cloned());
                for k in &order {
                    walk(join(&path, k), at(&kx, x, k), at(&ky, y, k), skip, out);
                }
                let ox: Vec<&String> = kx.iter().filter(|k| ky.contains(k)).collect();
                let oy: Vec<&String> = ky.iter().filter(|k| kx.contains(k)).collect();
                if ox != oy {
                    let show =
                        |v: &[&String]| v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
                    out.push((
                        join(&path, "(order)"),
                        Some(Value::String(show(&ox))),
                        Some(Value::String(show(&oy))),
                    ));
                }
            } else {
                for i in 0..x.len().max(y.len()) {
                    walk(join(&path, &i.to_string()), x.get(i), y.get(i), skip, out);
                }
            }
        }
        (x, y) if x == y => {}
        (x, y) => out.push((path, x.cloned(), y.cloned())),
    }
}
