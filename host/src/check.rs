//! `payhost plugin check`: a conformance run any plugin author can use.
//!
//! It loads the component as `payhost run` would (contract version, names,
//! auth and retry declarations, all checked at load), checks its default
//! base URL could be used without `--base-url` (https, or http on loopback),
//! configures it with the operator's settings (placeholders for required
//! ones not given), and then, for every operation:
//!
//! - builds a request from minimal valid parameters, synthesised from the
//!   schema (every required field, nested required fields, the id and the
//!   parent where needed), and passes it through the host's outbound policy;
//! - checks the plugin itself refuses the call when a required field is
//!   left out (`missing-field`);
//!
//! and, for the first operation, feeds `parse-response` junk a real server
//! or network can produce (an empty body, invalid JSON, a huge body,
//! non-UTF-8 bytes, an error status, every transport failure), expecting a
//! JSON payload every time and an error payload for every failure. A plugin
//! declaring `responses: json-object-is-success` must answer 2xx JSON
//! objects with `response(body)` on every operation: the host acts on the
//! declaration without asking. Every
//! call runs in the sandbox with its limits, so a plugin that sleeps, spins,
//! panics or balloons fails the check that made it do so, with the reason.
//!
//! The result is a table of checks; any failure makes the command exit
//! non-zero.

use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use crate::flow::is_json_whitespace;
use crate::outbound::Destination;
use crate::plugin::{self, Plugin, PluginInstance, wit};
use crate::settings::{Settings, SettingsSource};

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

/// The whole report.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    fn record(&mut self, name: impl Into<String>, result: Result<String, String>) {
        let (passed, detail) = match result {
            Ok(detail) => (true, detail),
            Err(detail) => (false, detail),
        };
        self.checks.push(Check {
            name: name.into(),
            passed,
            detail,
        });
    }

    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }

    /// The report as a table for people.
    pub fn table(&self) -> String {
        let width = self.checks.iter().map(|c| c.name.len()).max().unwrap_or(5);
        let mut out = String::new();
        for check in &self.checks {
            let _ = writeln!(
                out,
                "{}  {:width$}  {}",
                if check.passed { "ok  " } else { "FAIL" },
                check.name,
                check.detail
            );
        }
        let failed = self.checks.iter().filter(|c| !c.passed).count();
        let _ = writeln!(
            out,
            "\n{} checks, {} passed, {failed} failed",
            self.checks.len(),
            self.checks.len() - failed
        );
        out
    }

    pub fn json(&self) -> Value {
        json!({
            "passed": self.passed(),
            "checks": self.checks.iter().map(|c| json!({
                "check": c.name, "passed": c.passed, "detail": c.detail,
            })).collect::<Vec<_>>(),
        })
    }
}

/// Runs every check on `load`'s plugin (the load itself is the first).
pub fn run(
    load: impl FnOnce() -> Result<Plugin, crate::plugin::LoadError>,
    source: &SettingsSource,
) -> Report {
    let mut report = Report::default();
    let plugin = match load() {
        Ok(plugin) => {
            report.record(
                "load",
                Ok(format!(
                    "payhost:plugin@{}, provider `{}` {}, names, auth and retry policy valid",
                    crate::plugin::CONTRACT_VERSION,
                    plugin.name(),
                    plugin.info().version
                )),
            );
            plugin
        }
        Err(e) => {
            report.record("load", Err(e.problem));
            return report;
        }
    };
    let info = plugin.info().clone();

    // Settings: the operator's where given, a placeholder for each required
    // non-secret one that is not.
    let mut source = source.clone();
    let env = |var: &str| std::env::var(var).ok();
    for setting in &info.settings {
        let given = source.set.iter().any(|(n, _)| *n == setting.name)
            || env(&crate::settings::env_name(&info.name, &setting.name))
                .is_some_and(|v| !v.is_empty());
        if setting.required && !setting.secret && setting.default.is_none() && !given {
            source
                .set
                .push((setting.name.clone(), format!("check_{}", setting.name)));
        }
    }
    let settings = match Settings::resolve(&info, &source, env) {
        Ok(settings) => settings,
        Err(e) => {
            report.record("settings", Err(e));
            return report;
        }
    };
    let plugin = match plugin.configured(settings.public.clone()) {
        Ok(plugin) => {
            report.record(
                "configure",
                Ok(format!("accepted {} setting(s)", settings.public.len())),
            );
            plugin
        }
        Err(e) => {
            report.record(
                "configure",
                Err(format!("{} (give real values with --set)", e.problem)),
            );
            return report;
        }
    };
    report.record(
        "default base URL",
        crate::outbound::check_default_base_url(&info.default_base_url, &info.name)
            .map(|()| format!("{} (https, or http on loopback)", info.default_base_url)),
    );
    let destination = match Destination::for_provider(
        &info,
        &info.default_base_url,
        plugin.limits().max_request_body,
    ) {
        Ok(d) => d,
        Err(e) => {
            report.record("outbound policy", Err(e));
            return report;
        }
    };
    let mut instance = match plugin.instantiate() {
        Ok(instance) => instance,
        Err(e) => {
            report.record("instantiate", Err(e.to_string()));
            return report;
        }
    };

    if info.objects.iter().all(|o| o.operations.is_empty()) {
        report.record("operations", Err("the plugin offers no operation".into()));
    }
    for object in &info.objects {
        for op in &object.operations {
            check_operation(
                &mut report,
                &mut instance,
                &destination,
                object,
                op,
                &settings,
            );
        }
    }
    if let Some((object, op)) = info
        .objects
        .iter()
        .find_map(|o| o.operations.first().map(|op| (o, op)))
    {
        check_junk(&mut report, &mut instance, &object.name, &op.name);
    }
    check_response_rule(&mut report, &mut instance, &info);
    report
}

/// Builds `op` from minimal parameters, checks the request, then checks a
/// missing required field is refused.
fn check_operation(
    report: &mut Report,
    instance: &mut PluginInstance,
    destination: &Destination,
    object: &wit::ObjectInfo,
    op: &wit::OperationInfo,
    settings: &Settings,
) {
    let name = format!("{}.{}", object.name, op.name);
    let params = minimal_params(object, op, settings);
    let input = |params: &Map<String, Value>| -> Result<wit::RequestInput, String> {
        Ok(wit::RequestInput {
            id: op.needs_id.then(|| "check_id".to_string()),
            parent: op.needs_parent.then(|| "check_parent".to_string()),
            params: plugin::json_to_tree(&Value::Object(params.clone()))?,
            extra: plugin::json_to_tree(&json!({}))?,
        })
    };
    let built = input(&params).and_then(|input| {
        instance
            .build_request(&object.name, &op.name, &input)
            .map_err(|e| e.to_string())?
            .map_err(|e| {
                format!(
                    "refused minimal parameters {}: {}",
                    Value::Object(params.clone()),
                    e.message
                )
            })
    });
    let result = built.and_then(|request| {
        let checked = destination.check(&request).map_err(|e| e.to_string())?;
        Ok(format!("{} {}", checked.method, checked.url.path()))
    });
    report.record(format!("{name} builds"), result);

    // The first required field the plugin must fill in itself is skipped.
    let filled = |field: &str| {
        op.filled_by
            .iter()
            .any(|(f, s)| f == field && settings.public(s).is_some())
    };
    if let Some(field) = op.required.iter().find(|f| !filled(f)) {
        let mut without = params.clone();
        without.remove(field);
        let result = input(&without).and_then(|input| {
            match instance
                .build_request(&object.name, &op.name, &input)
                .map_err(|e| e.to_string())?
            {
                Err(e) if e.code == wit::PluginErrorCode::MissingField => {
                    Ok(format!("refused without `{field}`: {}", e.message))
                }
                Err(e) => Err(format!(
                    "refused without `{field}`, but as {:?}, not missing-field: {}",
                    e.code, e.message
                )),
                Ok(_) => Err(format!("built a request without the required `{field}`")),
            }
        });
        report.record(format!("{name} requires {field}"), result);
    }
}

/// The smallest parameters the schema calls valid: every required field.
fn minimal_params(
    object: &wit::ObjectInfo,
    op: &wit::OperationInfo,
    settings: &Settings,
) -> Map<String, Value> {
    let mut params = Map::new();
    for field in &op.required {
        let filled = op
            .filled_by
            .iter()
            .any(|(f, s)| f == field && settings.public(s).is_some());
        if !filled {
            params.insert(field.clone(), example(object, field));
        }
    }
    params
}

/// A value for the field at `path` (`amount`, `amount.value`, `items[]`).
fn example(object: &wit::ObjectInfo, path: &str) -> Value {
    let Some(field) = object.fields.iter().find(|f| f.name == path) else {
        return json!("check");
    };
    let text = || json!(field.allowed.first().map_or("check", String::as_str));
    match field.kind {
        wit::FieldKind::Text => text(),
        wit::FieldKind::Integer => json!(1),
        wit::FieldKind::Amount => json!(100),
        wit::FieldKind::Decimal => json!("1.5"),
        wit::FieldKind::Boolean => json!(true),
        wit::FieldKind::Timestamp => json!(1_700_000_000),
        wit::FieldKind::StringMap => json!({"check": "value"}),
        wit::FieldKind::StringList => json!([text()]),
        wit::FieldKind::Object => Value::Object(nested(object, &format!("{path}."))),
        wit::FieldKind::ObjectList => json!([Value::Object(nested(object, &format!("{path}[].")))]),
    }
}

/// The required fields directly under `prefix` (`amount.`, `items[].`).
fn nested(object: &wit::ObjectInfo, prefix: &str) -> Map<String, Value> {
    object
        .fields
        .iter()
        .filter(|f| f.required)
        .filter_map(|f| {
            let rest = f.name.strip_prefix(prefix)?;
            (!rest.contains(['.', '['])).then(|| (rest.to_string(), example(object, &f.name)))
        })
        .collect()
}

/// The 2xx bodies `check_response_rule` hands `parse-response`: each a
/// JSON object, as providers write them.
const JSON_OBJECT_BODIES: [(&str, u16, &str); 4] = [
    ("an empty object", 200, "{}"),
    (
        "a nested object with escapes, numbers and null",
        200,
        "{\"id\": \"obj_1\", \"amount\": 2000, \"rate\": 1.5e-3, \"note\": \"caf\\u00e9 \\\"x\\\"\", \
         \"items\": [{\"a\": [1, {\"b\": null}]}], \"ok\": true, \"none\": null}",
    ),
    (
        "a 201 with whitespace around the object",
        201,
        "\r\n  {\"id\": \"obj_2\", \"status\": \"created\"}\n",
    ),
    (
        "a 202 whose object holds an `error` member",
        202,
        "{\"error\": {\"type\": \"not_an_error\"}, \"status\": \"accepted\"}",
    ),
];

/// A plugin declaring `json-object-is-success` promises that its own
/// `parse-response` answers a 2xx JSON object with `response(body)`: the
/// host relies on it and no longer asks. Each operation's answer to a few
/// such bodies must be the body (the whitespace around it aside, which the
/// host drops either way).
fn check_response_rule(
    report: &mut Report,
    instance: &mut PluginInstance,
    info: &wit::ProviderInfo,
) {
    if info.responses != wit::ResponseRule::JsonObjectIsSuccess {
        report.record(
            "responses: plugin",
            Ok("every response goes to parse-response".into()),
        );
        return;
    }
    for (what, status, body) in JSON_OBJECT_BODIES {
        let outcome = wit::TransportOutcome::Response(wit::HttpResponse {
            status,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("request-id".into(), "req_check".into()),
            ],
            body: body.as_bytes().to_vec(),
        });
        let mut failures = Vec::new();
        let mut calls = 0;
        for object in &info.objects {
            for op in &object.operations {
                calls += 1;
                let at = format!("{}.{}", object.name, op.name);
                match instance.parse_response(&object.name, &op.name, &outcome) {
                    Err(e) => failures.push(format!("{at}: {e}")),
                    Ok(wit::FlowPayload::Response(json))
                        if json.trim_matches(is_json_whitespace)
                            == body.trim_matches(is_json_whitespace) => {}
                    Ok(wit::FlowPayload::Response(json)) => failures.push(format!(
                        "{at}: the success payload is not the body ({} bytes, the body {})",
                        json.len(),
                        body.len()
                    )),
                    Ok(wit::FlowPayload::Error(json)) => failures.push(format!(
                        "{at}: classified as an error: {}",
                        crate::outbound::truncate(&json)
                    )),
                }
            }
        }
        let result = if failures.is_empty() {
            Ok(format!("response(body) from all {calls} operations"))
        } else {
            Err(format!(
                "declares json-object-is-success, so the host makes this response a success \
                 without asking, but parse-response disagrees: {}",
                failures.join("; ")
            ))
        };
        report.record(format!("responses: json-object-is-success, {what}"), result);
    }
}

/// Feeds `parse-response` what servers and networks produce.
fn check_junk(report: &mut Report, instance: &mut PluginInstance, object: &str, op: &str) {
    let response = |status: u16, body: Vec<u8>| {
        wit::TransportOutcome::Response(wit::HttpResponse {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body,
        })
    };
    let failed = |kind: wit::FailureKind| {
        wit::TransportOutcome::Failed(wit::TransportFailure {
            kind,
            status: None,
            message: "check: simulated transport failure".into(),
        })
    };
    let mut huge = b"{\"data\": \"".to_vec();
    huge.resize(4 << 20, b'x');
    let cases: Vec<(&str, wit::TransportOutcome, Option<bool>)> = vec![
        ("a 200 with {}", response(200, b"{}".to_vec()), Some(true)),
        ("an empty 200", response(200, Vec::new()), Some(false)),
        (
            "a 200 with invalid JSON",
            response(200, b"{\"a\":".to_vec()),
            Some(false),
        ),
        (
            "a 500 with HTML",
            response(500, b"<html>oops</html>".to_vec()),
            Some(false),
        ),
        (
            "a 400 with non-UTF-8",
            response(400, vec![0xff, 0xfe, 0x00, 0x80]),
            Some(false),
        ),
        (
            "a 4 MiB unterminated body",
            response(200, huge),
            Some(false),
        ),
        ("a 302 redirect", response(302, Vec::new()), Some(false)),
        (
            "a connect failure",
            failed(wit::FailureKind::Connect),
            Some(false),
        ),
        ("a timeout", failed(wit::FailureKind::Timeout), Some(false)),
        (
            "a body over the cap",
            failed(wit::FailureKind::BodyTooLarge),
            Some(false),
        ),
        ("an I/O failure", failed(wit::FailureKind::Io), Some(false)),
    ];
    for (what, outcome, expect_success) in cases {
        let result = match instance.parse_response(object, op, &outcome) {
            Err(e) => Err(e.to_string()),
            Ok(payload) => {
                let (success, json) = match &payload {
                    wit::FlowPayload::Response(j) => (true, j),
                    wit::FlowPayload::Error(j) => (false, j),
                };
                match serde_json::from_str::<Value>(json) {
                    Err(e) => Err(format!("the payload is not JSON: {e}")),
                    Ok(_) if expect_success.is_some_and(|s| s != success) => Err(format!(
                        "classified as {}, expected {}",
                        if success { "response" } else { "error" },
                        if success { "error" } else { "response" },
                    )),
                    Ok(_) => Ok(format!(
                        "{} payload, {} bytes of JSON",
                        if success { "response" } else { "error" },
                        json.len()
                    )),
                }
            }
        };
        report.record(format!("parse-response: {what}"), result);
    }
}
