//! Secrets out of node-supplied text (issue #18): a node, or a debugging proxy or WAF in
//! front of it, may echo the request's `token` header in an error (`{"msg":"… token: …"}`).
//! wkctl knows its secrets (the managerToken, the webhook URL of `notify.url_env`), so
//! every text a node hands it passes through [`scrub`] before it is printed, put in JSON,
//! saved in the run state or sent to a webhook. The probe client applies it where node
//! text enters wkctl ([`crate::probe::Client::scrub`]): error bodies, `/health`
//! messages, every string of a decoded answer, and the smoke test's answers.

use serde_json::Value;

/// What a secret is replaced with.
pub const REDACTED: &str = "<redacted>";

/// Secrets shorter than this are not searched for: replacing every `1` of a text would
/// garble it without protecting anything (a 3-character token is guessable anyway).
pub const MIN_SECRET_LEN: usize = 4;

/// Every secret this process knows (registered by each probe client it builds, see
/// [`remember`]): text that does not come through the probe client (a playbook step's
/// or a hook's output, a host's logs) is scrubbed with these ([`scrub_known`]).
static KNOWN: std::sync::RwLock<Vec<String>> = std::sync::RwLock::new(Vec::new());

/// Adds `secrets` to the ones [`scrub_known`] removes.
pub fn remember(secrets: &[String]) {
    if let Ok(mut known) = KNOWN.write() {
        for s in secrets.iter().filter(|s| s.len() >= MIN_SECRET_LEN) {
            if !known.contains(s) {
                known.push(s.clone());
            }
        }
    }
}

/// `text` without any secret this process knows ([`remember`]).
pub fn scrub_known(text: &str) -> String {
    match KNOWN.read() {
        Ok(known) if !known.is_empty() => scrub(text, &known),
        _ => text.to_string(),
    }
}

/// `text` with every occurrence of each secret (and of its JSON-escaped form) replaced
/// by [`REDACTED`].
pub fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| s.len() >= MIN_SECRET_LEN) {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), REDACTED);
        }
        // A token with `"` or `\` shows escaped inside a raw JSON body.
        let escaped = Value::String(s.clone()).to_string();
        let escaped = &escaped[1..escaped.len() - 1];
        if escaped != s && out.contains(escaped) {
            out = out.replace(escaped, REDACTED);
        }
    }
    out
}

/// Whether `text` holds one of the secrets.
pub fn holds_secret(text: &str, secrets: &[String]) -> bool {
    scrub(text, secrets) != text
}

/// Every string (and object key) of `v`, scrubbed in place.
pub fn scrub_json(v: &mut Value, secrets: &[String]) {
    match v {
        Value::String(s) if holds_secret(s, secrets) => *s = scrub(s, secrets),
        Value::Array(a) => a.iter_mut().for_each(|x| scrub_json(x, secrets)),
        Value::Object(m) => {
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                if let Some(mut x) = m.remove(&k) {
                    scrub_json(&mut x, secrets);
                    m.insert(scrub(&k, secrets), x);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_replaced_wherever_they_appear() {
        let secrets = vec!["s3cr3t-token".to_string(), "ab".to_string()];
        assert_eq!(
            scrub("request rejected (token: s3cr3t-token)", &secrets),
            "request rejected (token: <redacted>)"
        );
        assert_eq!(
            scrub("s3cr3t-tokens3cr3t-token", &secrets),
            "<redacted><redacted>"
        );
        // Too short to search for: left alone.
        assert_eq!(scrub("abc", &secrets), "abc");
        assert!(!holds_secret("nothing here", &secrets));
        let quoted = vec![r#"to"k\en"#.to_string()];
        assert_eq!(
            scrub(r#"{"msg":"to\"k\\en"}"#, &quoted),
            r#"{"msg":"<redacted>"}"#
        );
        let mut v = serde_json::json!({"msg": "x s3cr3t-token", "n": [1, "s3cr3t-token"], "s3cr3t-token": 2});
        scrub_json(&mut v, &secrets);
        assert_eq!(
            v,
            serde_json::json!({"msg": "x <redacted>", "n": [1, "<redacted>"], "<redacted>": 2})
        );
    }
}
