//! JSON Schemas of `cluster.yaml` and of playbooks (`wkctl schema manifest|playbook`),
//! derived from the types the loaders deserialize, so the schema cannot drift from them.
//!
//! The committed copies in `schemas/` are what editors fetch (the `yaml-language-server`
//! line at the top of `examples/cluster.yaml`); a test holds them equal to this output.

use serde_json::{Value, json};

use crate::playbook::StepKind;

/// Which schema: `cluster.yaml`, a playbook, or the plan file of `plan --out`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Manifest,
    Playbook,
    Plan,
}

/// Where the committed schemas are published (the `$id` of each).
pub const BASE_URL: &str = "https://raw.githubusercontent.com/wkctl/wkctl/main/schemas";

/// The file name under `schemas/` for a kind.
pub fn file_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Manifest => "cluster.schema.json",
        Kind::Playbook => "playbook.schema.json",
        Kind::Plan => "plan.schema.json",
    }
}

/// The schema as a JSON value.
pub fn schema(kind: Kind) -> Value {
    let mut v = match kind {
        Kind::Manifest => crate::manifest::json_schema().to_value(),
        Kind::Playbook => {
            let mut v = schemars::schema_for!(crate::playbook::Playbook).to_value();
            // Map keys are step kinds; a playbook needs at least `stop` and `start`
            // (both checked by `playbook::parse`).
            let kinds: Vec<&str> = StepKind::ALL.iter().map(|k| k.as_str()).collect();
            for key in ["steps", "timeouts"] {
                if let Some(map) = v.pointer_mut(&format!("/properties/{key}")) {
                    map["propertyNames"] = json!({ "enum": kinds });
                }
            }
            if let Some(steps) = v.pointer_mut("/properties/steps") {
                steps["required"] = json!(["stop", "start"]);
            }
            v
        }
        Kind::Plan => {
            let mut v = schemars::schema_for!(crate::planfile::PlanFile).to_value();
            let kinds: Vec<&str> = crate::planfile::STEP_KINDS
                .iter()
                .map(|k| k.as_str())
                .collect();
            if let Some(kind) = v.pointer_mut("/$defs/StepDoc/properties/kind") {
                *kind = json!({ "type": "string", "enum": kinds });
            }
            if let Some(k) = v.pointer_mut("/properties/kind") {
                *k = json!({ "const": crate::planfile::KIND, "description": "Always `wkctl-plan`." });
            }
            if let Some(f) = v.pointer_mut("/properties/format_version") {
                *f = json!({ "const": crate::planfile::FORMAT, "description": "The plan file format." });
            }
            v
        }
    };
    if let Some(obj) = v.as_object_mut() {
        obj.insert(
            "$id".into(),
            Value::String(format!("{BASE_URL}/{}", file_name(kind))),
        );
    }
    v
}

/// The schema as pretty JSON with a trailing newline (what `wkctl schema` prints).
pub fn render(kind: Kind) -> String {
    let mut s = serde_json::to_string_pretty(&schema(kind)).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_schema_is_closed_and_bounded() {
        let v = schema(Kind::Manifest);
        assert_eq!(v["additionalProperties"], false);
        assert_eq!(v["required"], json!(["name", "nodes"]));
        assert_eq!(
            v["$id"],
            "https://raw.githubusercontent.com/wkctl/wkctl/main/schemas/cluster.schema.json"
        );
        let node = &v["$defs"]["Node"];
        assert_eq!(node["additionalProperties"], false);
        assert_eq!(node["properties"]["id"]["maximum"], 1023);
        assert_eq!(node["properties"]["id"]["minimum"], 1);
        assert_eq!(v["properties"]["nodes"]["minItems"], 1);
    }

    #[test]
    fn playbook_schema_requires_stop_and_start() {
        let v = schema(Kind::Playbook);
        assert_eq!(v["additionalProperties"], false);
        assert_eq!(
            v["properties"]["steps"]["required"],
            json!(["stop", "start"])
        );
        assert!(v["properties"].get("digest").is_none());
        assert_eq!(
            v["properties"]["timeouts"]["propertyNames"]["enum"][7],
            "netcheck"
        );
    }
}
