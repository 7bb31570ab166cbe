//! `dap-check CHECKS.json`: validates DAP messages with a real JSON-schema
//! validator (draft-04, as the DAP schema declares).
//!
//! CHECKS.json is `{"schema": "path/to/debugAdapterProtocol.json",
//! "checks": [{"definition": "Response", "body": {...}?, "message": {...}}]}`.
//! `definition` names a schema definition; the optional `body` is a schema
//! the message's `body` must also satisfy (its `$ref`s resolve against the
//! DAP definitions). Prints one line per check; exits 1 if any failed.

use jsonschema::Validator;
use serde_json::{json, Value};
use std::collections::hash_map::{Entry, HashMap};
use std::process::ExitCode;

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("dap-check: {e}");
            ExitCode::from(2)
        }
    }
}

fn read_json(path: &str) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))
}

fn run() -> Result<bool, String> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: dap-check CHECKS.json")?;
    let input = read_json(&path)?;
    let schema_path = input["schema"].as_str().ok_or("missing \"schema\"")?;
    let definitions = read_json(schema_path)?["definitions"].clone();
    let checks = input["checks"].as_array().ok_or("missing \"checks\"")?;

    // Building a validator compiles the whole DAP schema: once per
    // definition and body schema, not once per message.
    let mut validators: HashMap<(String, String), Validator> = HashMap::new();
    let mut all_ok = true;
    for (i, check) in checks.iter().enumerate() {
        let definition = check["definition"]
            .as_str()
            .ok_or(format!("check {i}: no definition"))?;
        if definitions.get(definition).is_none() {
            return Err(format!("check {i}: unknown definition {definition}"));
        }
        let body = check.get("body");
        let key = (
            definition.to_string(),
            body.map(Value::to_string).unwrap_or_default(),
        );
        let validator = match validators.entry(key) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(slot) => slot.insert(validator(&definitions, definition, body)?),
        };
        let errors: Vec<String> = validator
            .iter_errors(&check["message"])
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        if errors.is_empty() {
            println!("ok {i} {definition}");
        } else {
            all_ok = false;
            println!("FAIL {i} {definition}: {}", errors.join("; "));
        }
    }
    Ok(all_ok)
}

fn validator(
    definitions: &Value,
    definition: &str,
    body: Option<&Value>,
) -> Result<Validator, String> {
    let reference = json!({ "$ref": format!("#/definitions/{definition}") });
    let root = match body {
        None => reference,
        Some(body) => json!({
            "allOf": [reference, { "properties": { "body": body }, "required": ["body"] }]
        }),
    };
    let mut root = root;
    root["definitions"] = definitions.clone();
    root["$schema"] = json!("http://json-schema.org/draft-04/schema#");
    jsonschema::draft4::new(&root).map_err(|e| format!("schema for {definition}: {e}"))
}
