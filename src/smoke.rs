//! The opt-in end-to-end smoke test (`policy.smoke`, issue #18): WuKongIM's upgrade guide
//! (docs-site v2.2.5, `operations/docker/upgrade.mdx` "推荐的最小回归清单") checks `/route`
//! and `/message/send` after each node. wkctl does that, and reads the message back through
//! **another** node, which proves the new version stores and replicates messages.
//!
//! Shapes (upstream v2.2.5-20260422):
//! - `GET /route?uid=` → `{"tcp_addr","ws_addr","wss_addr"}` (`internal/api/route.go`);
//! - `POST /message/send` `messageSendReq` (`internal/api/message_model.go`: `header`,
//!   `client_msg_no`, `from_uid`, `channel_id`, `channel_type`, `payload` as base64 bytes)
//!   → `{"status":200,"data":{"message_id","client_msg_no"}}` (`message.go` `send`);
//! - `POST /channel/messagesync` (`login_uid`, `channel_id`, `channel_type`,
//!   `start_message_seq`, `end_message_seq`, `limit`, `pull_mode`) → `syncMessageResp`
//!   `{"messages":[{"client_msg_no",..}]}` (`message.go` `syncMessages`,
//!   `channel_model.go`).
//!
//! Only the configured probe channel is ever written. The token travels as the `token`
//! header of every request ([`Client`]) and is never printed.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Value, json};

use crate::manifest::SmokePolicy;
use crate::probe::{Client, ProbeError};

/// Read-back attempts (replication may lag a moment) and the pause between them.
const READ_ATTEMPTS: u32 = 5;

/// The result of one node's smoke test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub node: u64,
    pub read_via: Option<u64>,
    pub client_msg_no: String,
    /// `None` when it passed.
    pub failure: Option<String>,
}

/// A `client_msg_no` no earlier probe used: node, time and randomness.
pub fn unique_client_msg_no(node: u64) -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let mut r = [0u8; 4];
    let _ = getrandom::fill(&mut r);
    format!("wkctl-smoke-{node}-{ms}-{}", u32::from_le_bytes(r))
}

/// Percent-encodes a query value (RFC 3986 unreserved characters kept).
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Standard base64 (the JSON form of Go's `[]byte` payload).
pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(char::from(T[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The body of the probe message.
pub fn send_body(p: &SmokePolicy, client_msg_no: &str) -> Value {
    json!({
        "header": {"no_persist": 0, "red_dot": 0, "sync_once": 0},
        "client_msg_no": client_msg_no,
        "from_uid": p.uid,
        "channel_id": p.channel,
        "channel_type": p.channel_type,
        "payload": base64(format!("wkctl smoke {client_msg_no}").as_bytes()),
    })
}

/// The read-back request.
pub fn sync_body(p: &SmokePolicy) -> Value {
    json!({
        "login_uid": p.uid,
        "channel_id": p.channel,
        "channel_type": p.channel_type,
        "start_message_seq": 0,
        "end_message_seq": 0,
        "limit": 50,
        "pull_mode": 0,
    })
}

/// The error text of a non-200 answer: upstream's `{"msg"}` when there is one.
fn answer_error(status: u16, body: &[u8]) -> String {
    let msg = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("msg").and_then(Value::as_str).map(str::to_string));
    match msg {
        Some(m) => format!("HTTP {status}: {m}"),
        None if status == 401 => "HTTP 401: the managerToken was rejected".into(),
        None => format!("HTTP {status}"),
    }
}

/// The `server_id` both APIs report, when they report the same one (facts §3.2: the
/// node id as a string). Either unknown: `None` (the read-back then shows what it shows).
async fn same_server(client: &Client, writer: &str, reader: &str) -> Option<String> {
    let (w, r) = tokio::join!(client.varz(writer), client.varz(reader));
    let (w, r) = (w.ok()?.server_id, r.ok()?.server_id);
    let w = w.trim();
    (!w.is_empty() && w == r.trim()).then(|| format!("`{w}`"))
}

/// Whether a `/channel/messagesync` answer holds the probe message.
pub fn holds(body: &[u8], client_msg_no: &str) -> Result<bool, String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("not the expected JSON: {e}"))?;
    let messages = v
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| "no `messages` list in the answer".to_string())?;
    Ok(messages
        .iter()
        .any(|m| m.get("client_msg_no").and_then(Value::as_str) == Some(client_msg_no)))
}

/// Runs the smoke test of `node` (API `api`), reading back through `via` (id, API).
pub async fn run(
    client: &Client,
    policy: &SmokePolicy,
    node: u64,
    api: &str,
    via: Option<(u64, &str)>,
    pause: Duration,
) -> Outcome {
    let client_msg_no = unique_client_msg_no(node);
    let probe = Probe {
        client,
        policy,
        node,
        api,
        client_msg_no: &client_msg_no,
    };
    let failure = probe.steps(via, pause).await.err();
    Outcome {
        node,
        read_via: via.map(|v| v.0),
        client_msg_no,
        failure,
    }
}

/// One node's smoke test: who asks whom, and the probe message's number.
struct Probe<'a> {
    client: &'a Client,
    policy: &'a SmokePolicy,
    node: u64,
    api: &'a str,
    client_msg_no: &'a str,
}

impl Probe<'_> {
    /// The steps in order; the first failure ends the test.
    async fn steps(&self, via: Option<(u64, &str)>, pause: Duration) -> Result<(), String> {
        let node = self.node;
        // 0. The reader is another server: a manifest whose two nodes reach one process
        //    would read the message back through the node it was written to.
        if let Some((via_id, via_api)) = via
            && let Some(server) = same_server(self.client, self.api, via_api).await
        {
            return Err(format!(
                "node {node} and node {via_id} answer as one server (`/varz.server_id` {server}): reading the probe message back through it would prove nothing; nothing was sent"
            ));
        }
        self.route().await?;
        self.send().await?;
        // 3. Read back through another node.
        let Some(via) = via else {
            return Err(format!(
                "no other node answers to read the probe message back from (node {node} is the only one)"
            ));
        };
        self.read_back(via, pause).await
    }

    /// 1. `/route` answers for the probe uid, with a client address.
    async fn route(&self) -> Result<(), String> {
        let node = self.node;
        match self
            .client
            .get_raw(
                self.api,
                &format!("/route?uid={}", encode(&self.policy.uid)),
            )
            .await
        {
            Ok((200, body)) => {
                let addr = serde_json::from_slice::<Value>(&body).ok().and_then(|v| {
                    ["tcp_addr", "ws_addr", "wss_addr"].iter().find_map(|k| {
                        v.get(*k)
                            .and_then(Value::as_str)
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                    })
                });
                match addr {
                    Some(_) => Ok(()),
                    None => Err(format!(
                        "`/route` on node {node} answered without any client address"
                    )),
                }
            }
            Ok((status, body)) => Err(format!(
                "`/route` on node {node}: {}",
                answer_error(status, &body)
            )),
            Err(err) => Err(self.failed("`/route`", &err)),
        }
    }

    /// 2. The probe message, through this node.
    async fn send(&self) -> Result<(), String> {
        let node = self.node;
        match self
            .client
            .post_raw(
                self.api,
                "/message/send",
                &send_body(self.policy, self.client_msg_no),
            )
            .await
        {
            Ok((200, body)) => {
                let ok = serde_json::from_slice::<Value>(&body)
                    .ok()
                    .is_some_and(|v| v.pointer("/data/message_id").is_some());
                if ok {
                    Ok(())
                } else {
                    Err(format!(
                        "`/message/send` on node {node} answered 200 without a `message_id`"
                    ))
                }
            }
            Ok((status, body)) => Err(format!(
                "`/message/send` to probe channel `{}` on node {node}: {}",
                self.policy.channel,
                answer_error(status, &body)
            )),
            Err(err) => Err(self.failed("`/message/send`", &err)),
        }
    }

    /// Reads the probe message back through `via` (id, API), a few times: replication
    /// may lag a moment. The last attempt's error when it never shows.
    async fn read_back(
        &self,
        (via_id, via_api): (u64, &str),
        pause: Duration,
    ) -> Result<(), String> {
        let (node, client_msg_no) = (self.node, self.client_msg_no);
        let mut last = String::new();
        for attempt in 0..READ_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(pause).await;
            }
            match self
                .client
                .post_raw(via_api, "/channel/messagesync", &sync_body(self.policy))
                .await
            {
                Ok((200, body)) => match holds(&body, client_msg_no) {
                    Ok(true) => return Ok(()),
                    Ok(false) => {
                        last = format!(
                            "probe message {client_msg_no} sent through node {node} is not readable through node {via_id} (not replicated?)"
                        );
                    }
                    Err(m) => last = format!("`/channel/messagesync` on node {via_id}: {m}"),
                },
                Ok((status, body)) => {
                    last = format!(
                        "`/channel/messagesync` on node {via_id}: {}",
                        answer_error(status, &body)
                    );
                }
                Err(err) => last = format!("`/channel/messagesync` on node {via_id}: {err}"),
            }
        }
        Err(last)
    }

    /// A request to this node that got no answer.
    fn failed(&self, what: &str, err: &ProbeError) -> String {
        format!("{what} on node {}: {err}", self.node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pol() -> SmokePolicy {
        SmokePolicy {
            channel: "wkctl-probe".into(),
            channel_type: 2,
            uid: "wkctl probe".into(),
        }
    }

    #[test]
    fn bodies_have_upstreams_shape() {
        let b = send_body(&pol(), "n1");
        assert_eq!(b["channel_id"], "wkctl-probe");
        assert_eq!(b["channel_type"], 2);
        assert_eq!(b["from_uid"], "wkctl probe");
        assert_eq!(b["client_msg_no"], "n1");
        assert_eq!(b["payload"], base64(b"wkctl smoke n1"));
        assert_eq!(b["header"]["sync_once"], 0);
        let s = sync_body(&pol());
        assert_eq!(s["login_uid"], "wkctl probe");
        assert_eq!(s["limit"], 50);
        assert_eq!(encode("wkctl probe/1"), "wkctl%20probe%2F1");
    }

    #[test]
    fn base64_matches_the_standard() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn read_back_answers_are_parsed_without_panics() {
        let ok = br#"{"start_message_seq":0,"end_message_seq":0,"more":0,"messages":[{"client_msg_no":"a"},{"client_msg_no":"b"}]}"#;
        assert_eq!(holds(ok, "b"), Ok(true));
        assert_eq!(holds(ok, "c"), Ok(false));
        assert!(holds(b"{}", "a").is_err());
        assert!(holds(b"nope", "a").is_err());
        assert!(holds(br#"{"messages":[1,null,{"client_msg_no":3}]}"#, "a") == Ok(false));
        assert_eq!(
            answer_error(
                400,
                r#"{"msg":"channel_id不能为空！","status":400}"#.as_bytes()
            ),
            "HTTP 400: channel_id不能为空！"
        );
        assert_eq!(
            answer_error(401, b""),
            "HTTP 401: the managerToken was rejected"
        );
        let a = unique_client_msg_no(1001);
        let b = unique_client_msg_no(1001);
        assert_ne!(a, b);
        assert!(a.starts_with("wkctl-smoke-1001-"));
    }
}
