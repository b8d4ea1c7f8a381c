//! The service endpoints of a simulated node (issue #18): `GET /route`, `POST
//! /message/send`, `POST /channel/messagesync`, with upstream's shapes (v2.2.5-20260422,
//! `internal/api/route.go`, `internal/api/message.go`, `message_model.go`,
//! `channel_model.go`). Answers go through the same middleware as every route.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{Reply, middleware};
use crate::sim::model::{Cluster, Node};

/// `GET /route` (`routeUserIMAddr`): the node's own client addresses; `intranet=1` gives
/// only the intranet TCP address. Upstream does not look at `uid`.
pub(crate) fn route(c: &Cluster, n: &Node, q: &BTreeMap<String, String>) -> Reply {
    let host = &c.opts.host;
    let tcp = format!("{host}:{}", 5100 + n.id % 1000);
    if q.get("intranet").is_some_and(|v| v == "1") {
        return Reply::json(
            200,
            &json!({"tcp_addr": tcp, "ws_addr": "", "wss_addr": ""}),
        );
    }
    Reply::json(
        200,
        &json!({"tcp_addr": tcp, "ws_addr": format!("ws://{host}:{}", 5200 + n.id % 1000), "wss_addr": ""}),
    )
}

/// A POST to node `id`: middleware, then the route. A body that is not JSON is upstream's
/// `BindJSON` error (400 `{"msg"}`).
pub(crate) fn post(
    c: &mut Cluster,
    id: u64,
    path: &str,
    body: &[u8],
    token: Option<&str>,
    now: u64,
) -> Reply {
    if let Some(r) = middleware(c, id, token) {
        return r;
    }
    let route = matches!(path, "/message/send" | "/channel/messagesync");
    if !route {
        return Reply::not_found();
    }
    let req: Value = match serde_json::from_slice(body) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return Reply::err("数据格式有误！"),
        Err(e) => return Reply::err(&e.to_string()),
    };
    let out = if path == "/message/send" {
        c.message_send(id, &req, now)
    } else {
        c.message_sync(id, &req)
    };
    match out {
        Ok(v) => Reply::json(200, &v),
        Err(m) => Reply::err(&m),
    }
}
