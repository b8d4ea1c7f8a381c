//! `wkctl smoke`: the end-to-end smoke test of `policy.smoke` on every node (issue #18),
//! a post-deploy check for CI. Through each node: `/route` for the probe uid and a probe
//! message (unique `client_msg_no`) to the probe channel; read back through the next node
//! with `/channel/messagesync`. Only the probe channel is written; the token is never
//! printed.

use serde::Serialize;

use crate::cli::{Global, SmokeArgs};
use crate::error::{Outcome, WkError};
use crate::inputs::Context;
use crate::output::Printer;
use crate::probe::Client;

#[derive(Serialize)]
struct SmokeDoc<'a> {
    format_version: u32,
    cluster: &'a str,
    channel: &'a str,
    ok: bool,
    nodes: Vec<NodeDoc>,
}

#[derive(Serialize)]
struct NodeDoc {
    node: u64,
    ok: bool,
    read_via: Option<u64>,
    client_msg_no: String,
    reason: Option<String>,
}

pub async fn run(global: &Global, args: &SmokeArgs, p: &Printer) -> anyhow::Result<Outcome> {
    let ctx = Context::load(global.manifest.as_deref())?;
    let m = &ctx.manifest;
    let Some(policy) = m.policy.smoke.clone() else {
        return Err(WkError::input(
            format!(
                "{}: `policy.smoke` is not set: wkctl writes only to a probe channel the manifest names",
                m.path.display()
            ),
            "add e.g. `policy: { smoke: { channel: wkctl-probe, uid: wkctl-probe } }` (a dedicated channel)",
        )
        .into());
    };
    let client = Client::from_manifest(m)?;
    let mut nodes = Vec::new();
    for n in &m.nodes {
        let via = crate::execute::smoke_read_via(m, None, n.id);
        let out = crate::smoke::run(
            &client,
            &policy,
            n.id,
            &n.api,
            via.as_ref().map(|(id, api)| (*id, api.as_str())),
            m.policy.poll_interval,
        )
        .await;
        nodes.push(NodeDoc {
            node: n.id,
            ok: out.failure.is_none(),
            read_via: out.read_via,
            client_msg_no: out.client_msg_no,
            reason: out.failure,
        });
    }
    let ok = nodes.iter().all(|n| n.ok);
    if args.json {
        p.json_doc(&SmokeDoc {
            format_version: 1,
            cluster: &m.name,
            channel: &policy.channel,
            ok,
            nodes,
        })?;
    } else {
        for n in &nodes {
            let line = match (&n.reason, n.read_via) {
                (None, Some(via)) => format!(
                    "{} node {}: `/route` ok, message {} sent through {} and read back through {via}",
                    p.green("✓"),
                    n.node,
                    n.client_msg_no,
                    n.node
                ),
                (r, _) => format!(
                    "{} node {}: {}",
                    p.red("✗"),
                    n.node,
                    r.as_deref().unwrap_or("failed")
                ),
            };
            p.out(&line)?;
        }
        p.out(&format!(
            "smoke test on probe channel `{}`: {}",
            policy.channel,
            if ok {
                p.green("passed")
            } else {
                p.red("FAILED")
            }
        ))?;
    }
    Ok(if ok { Outcome::Success } else { Outcome::No })
}
