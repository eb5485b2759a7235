//! The operator's side of the template, checked offline: every alarm notifies someone and has a
//! runbook entry, production cannot deploy without a notification target, each samconfig
//! environment passes the template's rules, function logs survive a rolled-back deploy, and CORS
//! exposes the headers the web app reads. Plain file reading, like route_tables.rs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_yaml::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn template() -> Value {
    let text = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

fn runbook() -> String {
    std::fs::read_to_string(root().join("docs/operations/runbook.md")).unwrap()
}

fn resources_of_type<'a>(doc: &'a Value, kind: &str) -> Vec<(String, &'a Value)> {
    doc["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, resource)| resource["Type"].as_str() == Some(kind))
        .map(|(name, resource)| (name.as_str().unwrap().to_string(), resource))
        .collect()
}

/// An intrinsic function as either `!Name arg` or `{"Fn::Name": arg}` (`Ref` for `!Ref`).
fn intrinsic(value: &Value) -> Option<(String, &Value)> {
    match value {
        Value::Tagged(tagged) => Some((
            tagged.tag.to_string().trim_start_matches('!').to_string(),
            &tagged.value,
        )),
        Value::Mapping(map) if map.len() == 1 => {
            let (key, arg) = map.iter().next().unwrap();
            let key = key.as_str()?;
            if key == "Ref" {
                Some(("Ref".to_string(), arg))
            } else {
                key.strip_prefix("Fn::").map(|name| (name.to_string(), arg))
            }
        }
        _ => None,
    }
}

/// Every parameter a value refers to with `Ref`.
fn refs(value: &Value, found: &mut BTreeSet<String>) {
    if let Some((name, arg)) = intrinsic(value) {
        if name == "Ref" {
            found.insert(arg.as_str().unwrap().to_string());
            return;
        }
        return refs(arg, found);
    }
    match value {
        Value::Sequence(items) => items.iter().for_each(|item| refs(item, found)),
        Value::Mapping(map) => map.values().for_each(|item| refs(item, found)),
        _ => {}
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Eval {
    Text(String),
    Bool(bool),
}

/// Evaluates a rule condition or assertion (the functions rules may use here: Ref, Equals, Not,
/// And, Or) over a parameter set.
fn eval(value: &Value, params: &BTreeMap<String, String>) -> Eval {
    let Some((name, arg)) = intrinsic(value) else {
        return match value {
            Value::String(text) => Eval::Text(text.clone()),
            Value::Number(number) => Eval::Text(number.to_string()),
            Value::Bool(flag) => Eval::Bool(*flag),
            other => panic!("unexpected value in a rule: {other:?}"),
        };
    };
    let args = || arg.as_sequence().unwrap().iter().map(|item| eval(item, params));
    let truth = |item: Eval| match item {
        Eval::Bool(flag) => flag,
        other => panic!("{name} expects conditions, got {other:?}"),
    };
    match name.as_str() {
        "Ref" => {
            let parameter = arg.as_str().unwrap();
            Eval::Text(
                params
                    .get(parameter)
                    .unwrap_or_else(|| panic!("no value for parameter {parameter}"))
                    .clone(),
            )
        }
        "Equals" => {
            let items: Vec<Eval> = args().collect();
            assert_eq!(items.len(), 2);
            Eval::Bool(items[0] == items[1])
        }
        "Not" => Eval::Bool(!truth(args().next().unwrap())),
        "And" => Eval::Bool(args().map(truth).all(|flag| flag)),
        "Or" => Eval::Bool(args().map(truth).any(|flag| flag)),
        other => panic!("rule function {other} is not understood by this test; extend eval()"),
    }
}

/// The descriptions of the assertions of rule `rule` that fail for `params` (none when its
/// condition does not hold).
fn failed_assertions(rule: &Value, params: &BTreeMap<String, String>) -> Vec<String> {
    let applies = rule
        .get("RuleCondition")
        .is_none_or(|condition| eval(condition, params) == Eval::Bool(true));
    if !applies {
        return Vec::new();
    }
    rule["Assertions"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter(|assertion| eval(&assertion["Assert"], params) != Eval::Bool(true))
        .map(|assertion| assertion["AssertDescription"].as_str().unwrap().to_string())
        .collect()
}

fn default_parameters(doc: &Value) -> BTreeMap<String, String> {
    let mut params = BTreeMap::new();
    for (name, parameter) in doc["Parameters"].as_mapping().unwrap() {
        let value = match &parameter["Default"] {
            Value::String(text) => text.clone(),
            Value::Number(number) => number.to_string(),
            Value::Null => continue,
            other => panic!("unexpected default {other:?}"),
        };
        params.insert(name.as_str().unwrap().to_string(), value);
    }
    params
}

fn secret_parameters(doc: &Value) -> BTreeSet<String> {
    doc["Parameters"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, parameter)| parameter["NoEcho"].as_bool() == Some(true))
        .map(|(name, _)| name.as_str().unwrap().to_string())
        .collect()
}

/// samconfig.toml's `parameter_overrides` per environment (`Key=Value`, `Key=""` for empty).
fn samconfig_environments() -> BTreeMap<String, BTreeMap<String, String>> {
    let text = std::fs::read_to_string(root().join("samconfig.toml")).unwrap();
    let doc: toml::Value = toml::from_str(&text).unwrap();
    let mut environments = BTreeMap::new();
    for (env, table) in doc.as_table().unwrap() {
        let Some(list) = table
            .get("deploy")
            .and_then(|deploy| deploy.get("parameters"))
            .and_then(|parameters| parameters.get("parameter_overrides"))
        else {
            continue;
        };
        let mut params = BTreeMap::new();
        for entry in list.as_array().expect("parameter_overrides is a list") {
            let (key, value) = entry.as_str().unwrap().split_once('=').unwrap();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            params.insert(key.to_string(), value.to_string());
        }
        environments.insert(env.clone(), params);
    }
    environments
}

#[test]
fn every_alarm_notifies_the_alarm_topic_on_alarm_and_on_ok() {
    let doc = template();
    let alarms = resources_of_type(&doc, "AWS::CloudWatch::Alarm");
    assert!(alarms.len() >= 10, "{alarms:?}");
    for (name, alarm) in alarms {
        for actions in ["AlarmActions", "OKActions"] {
            let value = &alarm["Properties"][actions];
            assert!(!value.is_null(), "{name} has no {actions}");
            let mut targets = BTreeSet::new();
            refs(value, &mut targets);
            assert!(
                targets.contains("AlarmTopic") && targets.contains("AlarmTopicArn"),
                "{name}: {actions} must notify AlarmTopic and, when set, AlarmTopicArn; found {targets:?}"
            );
        }
        // A condition on an alarm would leave some stacks without it (and without its actions).
        assert!(alarm.get("Condition").is_none(), "{name} is conditional");
    }
    let (_, topic) = &resources_of_type(&doc, "AWS::SNS::Topic")[0];
    assert!(topic.get("Condition").is_none(), "the alarm topic must always exist");
}

#[test]
fn every_alarm_has_a_runbook_entry_and_every_entry_an_alarm() {
    let doc = template();
    let alarms: BTreeSet<String> = resources_of_type(&doc, "AWS::CloudWatch::Alarm")
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let runbook = runbook();
    let headings: BTreeSet<String> = runbook
        .lines()
        .filter_map(|line| line.strip_prefix("### "))
        .map(|heading| heading.trim().trim_matches('`').to_string())
        .filter(|heading| heading.ends_with("Alarm"))
        .collect();
    let missing: Vec<_> = alarms.difference(&headings).collect();
    let stale: Vec<_> = headings.difference(&alarms).collect();
    assert!(
        missing.is_empty(),
        "alarms without a `### <AlarmName>` entry in docs/operations/runbook.md: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "runbook entries for alarms the template does not have: {stale:?}"
    );
    // Each entry says how to confirm (a query or a command) and what to do.
    for alarm in &alarms {
        let start = runbook.find(&format!("### {alarm}")).unwrap();
        let rest = &runbook[start + 4..];
        let entry = &rest[..rest.find("\n### ").or_else(|| rest.find("\n## ")).unwrap_or(rest.len())];
        for part in ["**Means**", "**Confirm**", "**Do**"] {
            assert!(entry.contains(part), "the runbook entry of {alarm} has no {part}");
        }
    }
}

#[test]
fn production_refuses_to_deploy_without_a_notification_target() {
    let doc = template();
    let rules = doc["Rules"].as_mapping().unwrap();
    let mut params = default_parameters(&doc);
    params.insert("AppEnv".into(), "production".into());
    for secret in secret_parameters(&doc) {
        params.insert(secret, "x".into());
    }
    let failures = |params: &BTreeMap<String, String>| -> Vec<String> {
        rules
            .values()
            .flat_map(|rule| failed_assertions(rule, params))
            .collect()
    };
    // Other rules want real secrets and prices; give them what they need, so that only the
    // notification target is missing.
    params.insert("StripePricePro".into(), "price_pro".into());
    params.insert("StripePriceBusiness".into(), "price_business".into());
    params.insert("SettingsEncryptionKeyPrevious".into(), String::new());
    params.insert("AlarmEmail".into(), String::new());
    params.insert("AlarmTopicArn".into(), String::new());
    let refused = failures(&params);
    assert!(
        refused
            .iter()
            .any(|why| why.contains("AlarmEmail") && why.contains("AlarmTopicArn")),
        "a production deploy without AlarmEmail and AlarmTopicArn must be refused by a rule; refused: {refused:?}"
    );
    params.insert("AlarmEmail".into(), "oncall@example.com".into());
    assert_eq!(failures(&params), Vec::<String>::new(), "an e-mail target is enough");
    params.insert("AlarmEmail".into(), String::new());
    params.insert(
        "AlarmTopicArn".into(),
        "arn:aws:sns:us-east-1:123456789012:pagerduty".into(),
    );
    assert_eq!(failures(&params), Vec::<String>::new(), "a topic target is enough");
    // Staging may go without one.
    params.insert("AppEnv".into(), "staging".into());
    params.insert("AlarmTopicArn".into(), String::new());
    assert_eq!(failures(&params), Vec::<String>::new());
}

#[test]
fn every_samconfig_environment_passes_the_rules_that_need_no_secret() {
    let doc = template();
    let secrets = secret_parameters(&doc);
    let declared: BTreeSet<String> = doc["Parameters"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|key| key.as_str().unwrap().to_string())
        .collect();
    let environments = samconfig_environments();
    assert!(
        environments
            .values()
            .any(|params| params.get("AppEnv").map(String::as_str) == Some("production")),
        "samconfig.toml has no production environment: {:?}",
        environments.keys()
    );
    for (env, overrides) in &environments {
        for key in overrides.keys() {
            assert!(
                declared.contains(key),
                "[{env}] sets {key}, which template.yaml does not declare"
            );
            assert!(
                !secrets.contains(key),
                "[{env}] puts the secret {key} in samconfig.toml"
            );
        }
        let mut params = default_parameters(&doc);
        params.extend(overrides.clone());
        // Parameters without a default must be in the list, unless they are secrets (passed by
        // scripts/deploy).
        for name in &declared {
            assert!(
                params.contains_key(name) || secrets.contains(name),
                "[{env}] gives no value for {name}, which has no default"
            );
        }
        for (rule_name, rule) in doc["Rules"].as_mapping().unwrap() {
            let mut used = BTreeSet::new();
            refs(rule, &mut used);
            if used.iter().any(|name| secrets.contains(name)) {
                continue; // decided at deploy time, from the secrets
            }
            let failed = failed_assertions(rule, &params);
            assert!(
                failed.is_empty(),
                "[{env}] fails rule {}: {failed:?}",
                rule_name.as_str().unwrap()
            );
        }
    }
}

#[test]
fn function_logs_survive_a_rolled_back_deploy_and_feed_the_error_metric() {
    let doc = template();
    let resources = &doc["Resources"];
    let filters = resources_of_type(&doc, "AWS::Logs::MetricFilter");
    for (name, function) in resources_of_type(&doc, "AWS::Serverless::Function") {
        let target = &function["Properties"]["LoggingConfig"]["LogGroup"];
        let (function, arg) =
            intrinsic(target).unwrap_or_else(|| panic!("{name}: LoggingConfig.LogGroup must !Ref its own log group"));
        assert_eq!(function, "Ref", "{name}: LoggingConfig.LogGroup");
        let group = arg.as_str().unwrap();
        let log_group = &resources[group];
        assert_eq!(
            log_group["Type"].as_str(),
            Some("AWS::Logs::LogGroup"),
            "{name} -> {group}"
        );
        assert_eq!(log_group["DeletionPolicy"].as_str(), Some("Retain"), "{group}");
        assert_eq!(log_group["UpdateReplacePolicy"].as_str(), Some("Retain"), "{group}");
        assert!(
            !log_group["Properties"]["RetentionInDays"].is_null(),
            "{group} keeps logs forever"
        );
        // A fixed name on a retained group would block the next create of the stack.
        assert!(
            log_group["Properties"]["LogGroupName"].is_null(),
            "{group} has a fixed name"
        );
        let counted = filters.iter().any(|(_, filter)| {
            let mut used = BTreeSet::new();
            refs(&filter["Properties"]["LogGroupName"], &mut used);
            used.contains(group)
                && filter["Properties"]["MetricTransformations"][0]["MetricName"].as_str() == Some("ErrorLogLines")
        });
        assert!(counted, "{group} has no ErrorLogLines metric filter");
    }
}

#[test]
fn cors_exposes_the_headers_the_web_app_reads() {
    let doc = template();
    let cors = &doc["Resources"]["HttpApi"]["Properties"]["CorsConfiguration"];
    let exposed: BTreeSet<String> = cors["ExposeHeaders"]
        .as_sequence()
        .expect("CorsConfiguration.ExposeHeaders: API Gateway ignores the functions' own CORS headers")
        .iter()
        .map(|header| header.as_str().unwrap().to_ascii_lowercase())
        .collect();
    for header in ["location", "x-request-id", "retry-after"] {
        assert!(exposed.contains(header), "ExposeHeaders lacks {header}: {exposed:?}");
    }
    let origins = cors["AllowOrigins"].as_sequence().unwrap();
    assert_eq!(origins.len(), 1, "CORS allows FRONTEND_URL only");
    let mut used = BTreeSet::new();
    refs(&origins[0], &mut used);
    assert_eq!(used, BTreeSet::from(["FrontendUrl".to_string()]));
}

/// scripts/restore-drill compares `_sqlx_migrations.checksum` with `sha384sum` of each file; this
/// proves that is what sqlx records (the checksums embedded in the migrate binary).
#[test]
fn the_restore_drill_computes_the_checksums_sqlx_records() {
    let dir = root().join("migrations");
    let files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    let mut checked = 0;
    for migration in shared::db::MIGRATOR.iter() {
        if migration.migration_type.is_down_migration() {
            continue;
        }
        let prefix = format!("{}_", migration.version);
        let file = files
            .iter()
            .find(|name| name.starts_with(&prefix) && !name.ends_with(".down.sql"))
            .unwrap_or_else(|| panic!("no file for migration {}", migration.version));
        let output = Command::new("sha384sum").arg(dir.join(file)).output().unwrap();
        assert!(output.status.success());
        let drill = String::from_utf8(output.stdout).unwrap();
        let drill = drill.split_whitespace().next().unwrap();
        let sqlx: String = migration.checksum.iter().map(|byte| format!("{byte:02x}")).collect();
        assert_eq!(drill, sqlx, "{file}");
        checked += 1;
    }
    assert!(checked >= 7);
}

/// The dashboard body is JSON once CloudFormation substitutes it, and its alarm widget shows
/// every alarm of the template.
#[test]
fn the_dashboard_is_valid_json_and_shows_every_alarm() {
    let doc = template();
    let body = &doc["Resources"]["OperationsDashboard"]["Properties"]["DashboardBody"];
    let (function, text) = intrinsic(body).expect("DashboardBody is a !Sub");
    assert_eq!(function, "Sub");
    let text = text.as_str().unwrap();
    // What !Sub would do, with placeholder values: numbers for the numeric parameters (they are
    // written unquoted), strings elsewhere.
    let mut substituted = String::new();
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let end = start + rest[start..].find('}').unwrap();
        let name = &rest[start + 2..end];
        substituted.push_str(&rest[..start]);
        let numeric = doc["Parameters"][name]["Type"].as_str() == Some("Number");
        substituted.push_str(if numeric { "1" } else { "x" });
        names.insert(name.to_string());
        rest = &rest[end + 1..];
    }
    substituted.push_str(rest);
    let dashboard: serde_json::Value =
        serde_json::from_str(&substituted).unwrap_or_else(|err| panic!("DashboardBody: {err}"));
    assert!(!dashboard["widgets"].as_array().unwrap().is_empty());
    for (alarm, _) in resources_of_type(&doc, "AWS::CloudWatch::Alarm") {
        assert!(
            names.contains(&format!("{alarm}.Arn")),
            "the dashboard's alarm widget does not show {alarm}"
        );
    }
}
