//! The OpenAPI document (`GET /openapi.json`) against the router of a real server, both
//! ways: every documented operation reaches a handler and is answered with a status the
//! document lists, and every routed path and method is documented. A route added without
//! documentation, or documentation of a route that does not exist, fails here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use std::collections::{BTreeMap, BTreeSet};

use reqwest::{Method, StatusCode};
use serde_json::Value;
use sotto_api::{ApiError, ErrorCode};
use sotto_server::state::AppState;

/// The HTTP methods an OpenAPI path item can hold.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Error answers documented without a body: `GET /metrics` fails with a bare 500.
const BODILESS_ERRORS: [(&str, &str, &str); 1] = [("get", "/metrics", "500")];

async fn fetch_document(server: &TestServer) -> Value {
    let response = server
        .http
        .get(server.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.unwrap()
}

/// `(path, method) -> operation` of the document.
fn operations(doc: &Value) -> BTreeMap<(String, String), Value> {
    let mut out = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            if METHODS.contains(&method.as_str()) {
                out.insert((path.clone(), method.clone()), operation.clone());
            }
        }
    }
    assert!(!out.is_empty(), "the document has no operations");
    out
}

/// The `{name}` parameters of a path template.
fn template_params(path: &str) -> BTreeSet<String> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(str::to_owned)
        .collect()
}

/// A concrete path for a template: known parameters get well-formed values, others any.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(
            |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some("username") => "nobody".to_owned(),
                Some("device_id" | "id") => "0".repeat(32),
                Some("conversation") => "00".to_owned(),
                Some(_) => "sample".to_owned(),
                None => segment.to_owned(),
            },
        )
        .collect::<Vec<_>>()
        .join("/")
}

/// Every value of a `format` keyword in `value`.
fn formats(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("format", Value::String(f)) => {
                        out.insert(f.clone());
                    }
                    _ => formats(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| formats(v, out)),
        _ => {}
    }
}

/// Every `$ref` string in `value`.
fn refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

fn is_api_error(content: &Value) -> bool {
    content["application/json"]["schema"]["$ref"] == "#/components/schemas/ApiError"
}

/// The media type of a `Content-Type` value or content key, without parameters.
fn media_type(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn document_is_openapi_3_1_and_self_consistent() {
    let server = TestServer::start(Db::Sqlite).await;
    let doc = fetch_document(&server).await;

    let version = doc["openapi"].as_str().expect("openapi field");
    assert!(version.starts_with("3.1."), "not OpenAPI 3.1: {version}");
    assert_eq!(doc["info"]["title"], "Sotto");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(doc["servers"][0]["url"], "/");
    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .expect("security schemes");
    assert_eq!(schemes["session"]["type"], "http");
    assert_eq!(schemes["session"]["scheme"], "bearer");
    assert_eq!(schemes["capability"]["type"], "apiKey");
    assert_eq!(schemes["capability"]["in"], "header");
    assert_eq!(schemes["capability"]["name"], "Authorization");
    let bytes = &doc["components"]["schemas"]["Bytes"];
    assert_eq!(bytes["type"], "string");
    assert_eq!(bytes["contentEncoding"], "base64");

    // Only formats of the OpenAPI format registry (utoipa's own spelling of unsigned
    // integers, `u-int64`, is not one).
    let mut used = BTreeSet::new();
    formats(&doc, &mut used);
    for format in &used {
        assert!(
            ["byte", "binary", "int32", "int64", "uint32", "uint64"].contains(&format.as_str()),
            "unregistered format {format}"
        );
    }

    // Every reference resolves.
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in &all {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{r} is not local"));
        assert!(
            pointer.starts_with("/components/"),
            "{r} is not a component"
        );
        assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
    }

    let tags: BTreeSet<&str> = doc["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    let mut operation_ids = BTreeSet::new();
    for ((path, method), op) in operations(&doc) {
        let name = format!("{} {path}", method.to_uppercase());
        let id = op["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}"));
        assert!(operation_ids.insert(id.to_owned()), "{name}: {id} twice");
        assert!(op["summary"].is_string(), "{name} has no summary");
        let op_tags = op["tags"].as_array().unwrap_or_else(|| panic!("{name}"));
        assert!(!op_tags.is_empty(), "{name} has no tag");
        for tag in op_tags {
            assert!(tags.contains(tag.as_str().unwrap()), "{name}: tag {tag}");
        }

        // Path parameters are exactly the template's, and required.
        let params = op["parameters"].as_array().cloned().unwrap_or_default();
        let in_path: BTreeSet<String> = params
            .iter()
            .filter(|p| p["in"] == "path")
            .inspect(|p| assert_eq!(p["required"], true, "{name}: {p}"))
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(in_path, template_params(&path), "{name}: path parameters");

        // Security names an existing scheme.
        for requirement in op["security"].as_array().cloned().unwrap_or_default() {
            for scheme in requirement.as_object().unwrap().keys() {
                assert!(schemes.contains_key(scheme), "{name}: scheme {scheme}");
            }
        }

        // A success, and every error answered with an ApiError.
        let responses = op["responses"].as_object().unwrap();
        assert!(
            responses
                .keys()
                .any(|s| s.starts_with('1') || s.starts_with('2')),
            "{name} documents no success"
        );
        for (status, response) in responses {
            assert!(response["description"].is_string(), "{name} {status}");
            if status.starts_with('4') || status.starts_with('5') {
                if BODILESS_ERRORS.contains(&(method.as_str(), path.as_str(), status.as_str())) {
                    assert!(response.get("content").is_none(), "{name} {status}");
                } else {
                    assert!(
                        is_api_error(&response["content"]),
                        "{name} {status} is not an ApiError"
                    );
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_reaches_a_handler() {
    let server = TestServer::start(Db::Sqlite).await;
    let doc = fetch_document(&server).await;
    for ((path, method), op) in operations(&doc) {
        let name = format!("{} {path}", method.to_uppercase());
        // No session, capability or body: enough to reach the handler (or its extractors),
        // which must answer as documented.
        let response = server
            .http
            .request(
                Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
                server.url(&concrete(&path)),
            )
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert_ne!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{name}: the path is routed, but not this method"
        );
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| media_type(v.to_str().unwrap()));
        let body = response.bytes().await.unwrap();
        let error = serde_json::from_slice::<ApiError>(&body).ok();
        if let Some(e) = &error {
            assert!(
                !(e.error == ErrorCode::NotFound && e.message == "no such route"),
                "{name} is documented but not routed"
            );
        }
        let documented = &op["responses"][status.as_str()];
        assert!(
            documented.is_object(),
            "{name} answered {status}, which the document does not list (body: {})",
            String::from_utf8_lossy(&body)
        );
        match documented["content"].as_object() {
            Some(content) => {
                let types: BTreeSet<String> = content.keys().map(|k| media_type(k)).collect();
                let got = content_type.unwrap_or_default();
                assert!(
                    types.contains(&got),
                    "{name} {status}: {got} not in {types:?}"
                );
                if is_api_error(&documented["content"]) {
                    assert!(error.is_some(), "{name} {status}: body is not an ApiError");
                }
            }
            None => assert!(body.is_empty(), "{name} {status}: undocumented body"),
        }
    }
}

/// The path templates of a router, from its `Debug` output (axum has no public way to list
/// routes). The output is searched only between `path_router` and `fallback_router`, for
/// `RouteId(n): "/path"`.
fn routed_paths(router: &axum::Router) -> BTreeSet<String> {
    let debug = format!("{router:?}");
    let start = debug
        .find("path_router:")
        .expect("axum's Router Debug output changed: update routed_paths");
    let end = debug
        .find("fallback_router:")
        .expect("axum's Router Debug output changed: update routed_paths");
    let mut rest = &debug[start..end];
    let mut paths = BTreeSet::new();
    while let Some(i) = rest.find("RouteId(") {
        rest = &rest[i + "RouteId(".len()..];
        let Some(close) = rest.find(')') else { break };
        let digits = rest[..close].bytes().all(|b| b.is_ascii_digit());
        let Some(quoted) = rest[close..].strip_prefix("): \"") else {
            continue;
        };
        let path = &quoted[..quoted.find('"').unwrap()];
        if digits {
            paths.insert(path.to_owned());
        }
    }
    assert!(
        paths.contains("/healthz"),
        "axum's Router Debug output changed: update routed_paths"
    );
    paths
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_is_documented() {
    let server = TestServer::start(Db::Sqlite).await;
    let doc = fetch_document(&server).await;
    let mut documented: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, method) in operations(&doc).into_keys() {
        documented.entry(path).or_default().insert(method);
    }

    // The same router as the server's, on a store of its own.
    let (_stored, store) = open_store(&Db::Sqlite).await;
    let keys = sotto_server::passwords::ServerKeys::load(&store)
        .await
        .unwrap();
    let router = sotto_server::http::router(AppState::new(store, keys, None));
    let routed = routed_paths(&router);
    let documented_paths: BTreeSet<String> = documented.keys().cloned().collect();
    assert_eq!(
        routed.difference(&documented_paths).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "routed but not documented"
    );
    assert_eq!(
        documented_paths.difference(&routed).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "documented but not routed"
    );

    // A method no route has is answered 405 with the path's methods in `Allow` (HEAD comes
    // with GET and is not documented separately).
    let probe = Method::from_bytes(b"PROBE").unwrap();
    for (path, methods) in &documented {
        let response = server
            .http
            .request(probe.clone(), server.url(&concrete(path)))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{path}: a route answering any method cannot be checked"
        );
        let allow = response.headers()["allow"].to_str().unwrap().to_owned();
        let allowed: BTreeSet<String> = allow
            .split(',')
            .map(|m| m.trim().to_ascii_lowercase())
            .filter(|m| !m.is_empty() && m != "head")
            .collect();
        assert_eq!(
            &allowed, methods,
            "{path}: routed methods vs documented ones"
        );
    }
}
