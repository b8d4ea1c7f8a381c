//! Compose's variable interpolation (`${VAR:-default}`, `${VAR-default}`, `$$`) and the
//! project's `.env` file it takes its values from.

use std::collections::BTreeMap;

/// The variables of a compose project's `.env` file (`KEY=VALUE` lines; `#` comments,
/// blank lines and an `export ` prefix allowed; one pair of surrounding quotes removed),
/// which Compose uses for `${VAR}` interpolation.
pub fn read_dotenv(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let l = l.strip_prefix("export ").unwrap_or(l);
            let (k, v) = l.split_once('=')?;
            let v = v.trim();
            let unq = [('"', '"'), ('\'', '\'')]
                .iter()
                .find_map(|(a, b)| v.strip_prefix(*a)?.strip_suffix(*b))
                .unwrap_or(v);
            Some((k.trim().to_string(), unq.to_string()))
        })
        .collect()
}

/// Compose interpolation: `${VAR:-default}` and `${VAR-default}` become the default,
/// `$$` becomes `$`; `${VAR}`, `$VAR` and `${VAR:?err}` are left as written.
pub fn interpolate(s: &str) -> String {
    interpolate_in(s, &BTreeMap::new())
}

/// [`interpolate`], where a variable set in `vars` (a project's `.env`) takes its value
/// (also `${VAR}` and `$VAR`; `${VAR:-d}` uses `d` when the value is empty).
pub fn interpolate_in(s: &str, vars: &BTreeMap<String, String>) -> String {
    let is_name = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(body) = after.strip_prefix('{')
            && let Some(end) = closing_brace(body)
        {
            let inner = &body[..end];
            let name_len = inner.bytes().take_while(|b| is_name(*b)).count();
            let (name, op) = inner.split_at(name_len);
            let set = vars.get(name).filter(|_| !name.is_empty());
            if let Some(d) = op.strip_prefix(":-") {
                match set.filter(|v| !v.is_empty()) {
                    Some(v) => out.push_str(v),
                    None => out.push_str(&interpolate_in(d, vars)),
                }
            } else if let Some(d) = op.strip_prefix('-') {
                match set {
                    Some(v) => out.push_str(v),
                    None => out.push_str(&interpolate_in(d, vars)),
                }
            } else if let Some(v) = set {
                out.push_str(v);
            } else {
                out.push_str("${");
                out.push_str(inner);
                out.push('}');
            }
            rest = &body[end + 1..];
        } else {
            let name_len = after.bytes().take_while(|b| is_name(*b)).count();
            if let Some(v) = vars.get(&after[..name_len]).filter(|_| name_len > 0) {
                out.push_str(v);
                rest = &after[name_len..];
            } else {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Index of the `}` closing a `${` whose body starts `body` (nested `${...}` allowed).
fn closing_brace(body: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in body.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}
