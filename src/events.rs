//! Upgrade events (DESIGN §8): the JSON contract of `--json` (JSON Lines), of
//! notifications and of the tests. How they are shown on a terminal or as plain lines is
//! [`crate::output::progress`]'s business.

use serde::Serialize;

use crate::finding::Finding;
use crate::gate::clients::Summary as ClientsSummary;
use crate::gate::{Signal, SignalIn, SignalWord, signal_serde};
use crate::plan::{PlanKind, PlanStepKind};
use crate::state::{NodeStatus, RunStatus};

/// One thing that happened during a run.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        /// `upgrade` or `restart`.
        kind: PlanKind,
        cluster: String,
        to: String,
        nodes: Vec<u64>,
        resume: bool,
        plan_digest: String,
    },
    CheckFinished {
        ok: bool,
        findings: Vec<Finding>,
    },
    NodeStarted {
        node: u64,
        from: Option<String>,
        to: String,
        index: usize,
        total: usize,
    },
    NodeSkipped {
        node: u64,
        reason: String,
    },
    StepStarted {
        node: u64,
        step: PlanStepKind,
        command: Option<String>,
    },
    StepFinished {
        node: u64,
        step: PlanStepKind,
        ok: bool,
        exit_code: Option<i32>,
        timed_out: bool,
        duration_s: f64,
    },
    GateSignal {
        node: u64,
        #[serde(serialize_with = "signal_serde::letter")]
        signal: Signal,
        name: &'static str,
        state: SignalWord,
        reason: Option<String>,
    },
    NodeReady {
        node: u64,
        version: String,
        duration_s: f64,
        /// Client connections moved off and back (issue #18); `null` when unknown.
        clients: Option<ClientsSummary>,
    },
    SoakFinished {
        node: u64,
        ok: bool,
        duration_s: f64,
        reason: Option<String>,
        /// The service-level check of the soak (issue #18).
        clients: Option<ClientsSummary>,
    },
    /// Reported, not fatal: a service-level shortfall under `on_shortfall: warn`, a
    /// sharp rise of `slow_clients` / `retry_queue`, a skipped client check.
    Warning {
        node: Option<u64>,
        message: String,
    },
    /// The opt-in end-to-end smoke test (`policy.smoke`) of one node.
    SmokeFinished {
        node: u64,
        ok: bool,
        /// The node the probe message was read back through.
        read_via: Option<u64>,
        client_msg_no: String,
        reason: Option<String>,
    },
    /// An interrupted step was not run again: observing the node showed it had taken
    /// effect (the node is already down, or already runs a new process on the target).
    StepSkipped {
        node: u64,
        step: PlanStepKind,
        reason: String,
    },
    NodeFailed {
        node: u64,
        step: PlanStepKind,
        reason: String,
        #[serde(serialize_with = "signal_serde::label")]
        signal: Option<SignalIn>,
        observed: Option<String>,
        logs_tail: Option<String>,
        /// Known failure signatures (`wkctl doctor`'s) the log tail matches (13.10).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        known: Vec<KnownSignature>,
    },
    RollbackFinished {
        node: u64,
        ok: bool,
        reason: Option<String>,
    },
    Waiting {
        node: Option<u64>,
        what: String,
    },
    Interrupted {
        node: Option<u64>,
        message: String,
    },
    /// The first Ctrl-C (or SIGTERM/SIGHUP): what the run does now (13.4).
    StopRequested {
        message: String,
    },
    /// `wkctl recover`: one step of the ordered cold start begins (issue #19).
    RecoverStep {
        index: usize,
        total: usize,
        step: crate::recover::RecoverStepKind,
        node: Option<u64>,
        what: String,
    },
    /// `wkctl recover`: the end of the run (its last event, instead of `summary`).
    RecoverFinished {
        ok: bool,
        status: crate::recover::RecoverStatus,
        cluster: String,
        /// Nodes the cluster reports at the end, of the manifest's `nodes`.
        members: usize,
        nodes: usize,
        duration_s: f64,
        doctor_report: Option<String>,
    },
    Summary(Summary),
}

impl Event {
    /// `step_started` for `command` as it is shown: without any secret this process knows
    /// ([`crate::scrub::scrub_known`]). A token or webhook URL written literally into a
    /// playbook command or a manifest `vars` entry is run as written but never printed,
    /// put in JSON or sent to a webhook.
    pub fn step_started(node: u64, step: PlanStepKind, command: Option<&str>) -> Event {
        Event::StepStarted {
            node,
            step,
            command: command.map(crate::scrub::scrub_known),
        }
    }

    /// `step_finished` for a step's output; `None`: it could not run at all.
    pub fn step_finished(
        node: u64,
        step: PlanStepKind,
        out: Option<&crate::transport::StepOutput>,
    ) -> Event {
        Event::StepFinished {
            node,
            step,
            ok: out.is_some_and(crate::transport::StepOutput::success),
            exit_code: out.and_then(|o| o.exit_code),
            timed_out: out.is_some_and(|o| o.timed_out),
            duration_s: out.map_or(0.0, |o| o.duration.as_secs_f64()),
        }
    }
}

/// A known failure signature found in a failed node's log tail.
#[derive(Debug, Clone, Serialize)]
pub struct KnownSignature {
    pub id: crate::finding::FindingId,
    pub issue: Option<u32>,
    pub explanation: String,
    pub hint: String,
}

impl KnownSignature {
    /// Every distinct signature in `text`, in the order first seen.
    pub fn scan(node: u64, text: &str) -> Vec<KnownSignature> {
        let mut out: Vec<KnownSignature> = Vec::new();
        for m in crate::doctor::signatures::scan(node, text) {
            if out.iter().any(|k| k.id == m.signature) {
                continue;
            }
            if let Some(sig) = crate::doctor::signatures::signature(m.signature) {
                out.push(KnownSignature {
                    id: sig.id,
                    issue: sig.issue,
                    explanation: sig.explanation.to_string(),
                    hint: sig.hint.to_string(),
                });
            }
        }
        out
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// `upgrade` or `restart` (issue 19).
    pub kind: PlanKind,
    pub ok: bool,
    pub status: RunStatus,
    pub cluster: String,
    pub to: String,
    pub duration_s: f64,
    pub nodes: Vec<NodeSummary>,
}

/// One node of the `summary`: its `status` is the summary's word for the run's kind
/// (`upgraded`, or `restarted` in a restart).
#[derive(Debug, Clone)]
pub struct NodeSummary {
    pub id: u64,
    pub from: Option<String>,
    pub to: String,
    pub status: NodeStatus,
    pub duration_s: Option<f64>,
    /// The run's kind (not serialized: it names `status`).
    pub kind: PlanKind,
}

impl NodeSummary {
    /// `status` as the summary says it.
    pub fn word(&self) -> &'static str {
        self.status.summary_word_in(self.kind)
    }
}

impl Serialize for NodeSummary {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Out<'a> {
            id: u64,
            from: &'a Option<String>,
            to: &'a str,
            status: &'static str,
            duration_s: Option<f64>,
        }
        Out {
            id: self.id,
            from: &self.from,
            to: &self.to,
            status: self.word(),
            duration_s: self.duration_s,
        }
        .serialize(ser)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The typed signal, state and statuses keep the JSON contract (README "JSON events").
    #[test]
    fn typed_fields_keep_their_json_forms() {
        let g = Event::GateSignal {
            node: 1002,
            signal: Signal::ConfigCaughtUp,
            name: Signal::ConfigCaughtUp.name(),
            state: SignalWord::NotYet,
            reason: Some("config 7 < 9".into()),
        };
        let v = serde_json::to_value(&g).unwrap();
        assert_eq!(v["data"]["signal"], "E");
        assert_eq!(v["data"]["name"], "cluster config caught up");
        assert_eq!(v["data"]["state"], "not_yet");
        let f = Event::NodeFailed {
            node: 1002,
            step: PlanStepKind::WaitReady,
            reason: "r".into(),
            signal: Some(SignalIn {
                signal: Signal::NewProcessOnTarget,
                kind: PlanKind::Upgrade,
            }),
            observed: None,
            logs_tail: None,
            known: Vec::new(),
        };
        let v = serde_json::to_value(&f).unwrap();
        assert_eq!(v["data"]["signal"], "B new process on target version");
        // A restart's B is a new process on the same version; the letter stays.
        let Event::NodeFailed { signal, .. } = &f else {
            unreachable!()
        };
        let restart = Event::NodeFailed {
            node: 1002,
            step: PlanStepKind::WaitReady,
            reason: "r".into(),
            signal: signal.map(|s| SignalIn {
                kind: PlanKind::Restart,
                ..s
            }),
            observed: None,
            logs_tail: None,
            known: Vec::new(),
        };
        let v = serde_json::to_value(&restart).unwrap();
        assert_eq!(v["data"]["signal"], "B new process on the same version");
        // Only B's name depends on the kind.
        for sig in Signal::ALL {
            assert_eq!(sig.label_in(PlanKind::Upgrade), sig.label(), "{sig}");
            assert_eq!(
                sig.label_in(PlanKind::Restart) == sig.label(),
                sig != Signal::NewProcessOnTarget,
                "{sig}"
            );
        }
        let none = Event::NodeFailed {
            node: 1002,
            step: PlanStepKind::Stop,
            reason: "r".into(),
            signal: None,
            observed: None,
            logs_tail: None,
            known: Vec::new(),
        };
        assert!(serde_json::to_value(&none).unwrap()["data"]["signal"].is_null());
        let summary = |kind| {
            Event::Summary(Summary {
                kind,
                ok: false,
                status: RunStatus::Interrupted,
                cluster: "c".into(),
                to: "t".into(),
                duration_s: 1.0,
                nodes: [NodeStatus::Ready, NodeStatus::Failed]
                    .into_iter()
                    .enumerate()
                    .map(|(i, status)| NodeSummary {
                        id: 1001 + i as u64,
                        from: None,
                        to: "t".into(),
                        status,
                        duration_s: None,
                        kind,
                    })
                    .collect(),
            })
        };
        let v = serde_json::to_value(summary(PlanKind::Upgrade)).unwrap();
        assert_eq!(v["data"]["status"], "interrupted");
        assert_eq!(v["data"]["kind"], "upgrade");
        assert_eq!(v["data"]["nodes"][0]["status"], "upgraded");
        assert_eq!(v["data"]["nodes"][1]["status"], "failed");
        // The node's fields are what they were: no `kind` inside.
        assert_eq!(
            v["data"]["nodes"][0],
            serde_json::json!({"id": 1001, "from": null, "to": "t", "status": "upgraded", "duration_s": null})
        );
        let v = serde_json::to_value(summary(PlanKind::Restart)).unwrap();
        assert_eq!(v["data"]["kind"], "restart");
        assert_eq!(v["data"]["nodes"][0]["status"], "restarted");
        assert_eq!(v["data"]["nodes"][1]["status"], "failed");
    }

    #[test]
    fn events_serialize_as_type_and_data() {
        let e = Event::NodeReady {
            node: 1001,
            version: "v2.1.2-20250120".into(),
            duration_s: 1.5,
            clients: None,
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["type"], "node_ready");
        assert_eq!(v["data"]["node"], 1001);
        let s = Event::Summary(Summary {
            kind: PlanKind::Upgrade,
            ok: true,
            status: RunStatus::Completed,
            cluster: "c".into(),
            to: "t".into(),
            duration_s: 1.0,
            nodes: vec![],
        });
        assert_eq!(serde_json::to_value(&s).unwrap()["type"], "summary");
    }
}
