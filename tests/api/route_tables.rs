//! The three route tables must agree: template.yaml (what AWS deploys), Cargo.toml's
//! `[workspace.metadata.lambda.watch.router]` (what `cargo lambda watch` serves) and
//! openapi.yaml (the web team's contract). Each is read as (path, method, function).

use std::collections::BTreeSet;
use std::path::Path;

type Routes = BTreeSet<(String, String, String)>;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn template_routes() -> (Routes, BTreeSet<String>) {
    let text = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let mut routes = Routes::new();
    let mut binaries = BTreeSet::new();
    for (_, resource) in doc["Resources"].as_mapping().unwrap() {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let binary = resource["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .expect("every function names its binary under Metadata.BuildProperties.Binary")
            .to_string();
        binaries.insert(binary.clone());
        let Some(events) = resource["Properties"]["Events"].as_mapping() else {
            continue;
        };
        for (_, event) in events {
            if event["Type"].as_str() == Some("HttpApi") {
                let props = &event["Properties"];
                routes.insert((
                    props["Path"].as_str().unwrap().to_string(),
                    props["Method"].as_str().unwrap().to_uppercase(),
                    binary.clone(),
                ));
            }
        }
    }
    (routes, binaries)
}

fn router_routes() -> Routes {
    let text = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let doc: toml::Value = toml::from_str(&text).unwrap();
    let router = doc["workspace"]["metadata"]["lambda"]["watch"]["router"]
        .as_table()
        .unwrap();
    let mut routes = Routes::new();
    for (path, target) in router {
        for entry in target.as_array().expect("routes are written as method lists") {
            routes.insert((
                path.clone(),
                entry["method"].as_str().unwrap().to_uppercase(),
                entry["function"].as_str().unwrap().to_string(),
            ));
        }
    }
    routes
}

fn openapi_routes() -> Routes {
    let text = std::fs::read_to_string(root().join("openapi.yaml")).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let mut routes = Routes::new();
    for (path, item) in doc["paths"].as_mapping().unwrap() {
        for (method, operation) in item.as_mapping().unwrap() {
            let method = method.as_str().unwrap();
            if !["get", "put", "post", "delete", "patch", "options", "head"].contains(&method) {
                continue;
            }
            let function = operation["x-function"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path:?} has no x-function"));
            routes.insert((
                path.as_str().unwrap().to_string(),
                method.to_uppercase(),
                function.to_string(),
            ));
        }
    }
    routes
}

fn workspace_functions() -> BTreeSet<String> {
    std::fs::read_dir(root().join("functions"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect()
}

#[test]
fn template_router_and_openapi_declare_the_same_routes() {
    let (template, _) = template_routes();
    let router = router_routes();
    let openapi = openapi_routes();
    assert!(!template.is_empty());
    assert_eq!(template, router, "template.yaml vs Cargo.toml router");
    assert_eq!(template, openapi, "template.yaml vs openapi.yaml");
}

#[test]
fn every_function_crate_is_deployed_and_every_deployed_function_exists() {
    let (_, binaries) = template_routes();
    assert_eq!(
        binaries,
        workspace_functions(),
        "template.yaml functions vs functions/*"
    );
}

#[test]
fn the_template_uses_the_runtime_and_build_the_design_calls_for() {
    let text = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let globals = &doc["Globals"]["Function"];
    assert_eq!(globals["Runtime"].as_str(), Some("provided.al2023"));
    assert_eq!(globals["Handler"].as_str(), Some("bootstrap"));
    assert_eq!(globals["Architectures"][0].as_str(), Some("arm64"));
    for (name, resource) in doc["Resources"].as_mapping().unwrap() {
        if resource["Type"].as_str() == Some("AWS::Serverless::Function") {
            assert_eq!(
                resource["Metadata"]["BuildMethod"].as_str(),
                Some("rust-cargolambda"),
                "{name:?}"
            );
        }
    }
}
