//! `/metrics`: Prometheus text, counted by route template — never by user or client.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use reqwest::StatusCode;

async fn metrics_count_routes_without_naming_users(db: Db) {
    let server = TestServer::start(db.clone()).await;
    let (_, device) = registered(&server, "alice").await;
    let token = login(&server, "alice", &device).await;
    server.account("alice").await;
    let missing = server.http.get(server.url("/v1/accounts/zed")).send().await;
    assert_eq!(missing.unwrap().status(), StatusCode::NOT_FOUND);

    let response = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let text = response.text().await.unwrap();
    assert!(
        text.contains(
            r#"sotto_http_requests_total{route="/v1/accounts/{username}",method="GET",status="200"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains(
        r#"sotto_http_requests_total{route="/v1/accounts/{username}",method="GET",status="404"} 1"#
    ));
    assert!(text.contains("sotto_http_request_duration_seconds_bucket"));
    assert!(text.contains("sotto_live_connections 0"));
    for private in ["alice", "zed", "127.0.0.1", token.as_str()] {
        assert!(!text.contains(private), "{private} in metrics");
    }
}

async fn accepted_messages_are_counted_by_kind(db: Db) {
    let server = TestServer::start(db.clone()).await;
    let (alice, bob) = (person(&server, "alice").await, person(&server, "bob").await);
    let (mut ca, _cb) = conversation(&server, &alice, &bob).await;
    let (_, ciphertext) = ca.send_text("hi", 600, false, NOW_MS).unwrap();
    let body = to(ciphertext, &[&bob]);
    assert_eq!(
        post(&server, &alice, ca.id(), &body).await.status(),
        StatusCode::CREATED
    );
    // A resend of the same message is not counted again.
    assert_eq!(
        post(&server, &alice, ca.id(), &body).await.status(),
        StatusCode::OK
    );
    let text = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        r#"sotto_messages_accepted_total{kind="commit"} 1"#,
        r#"sotto_messages_accepted_total{kind="welcome"} 1"#,
        r#"sotto_messages_accepted_total{kind="application"} 1"#,
    ] {
        assert!(text.contains(line), "{line} missing in {text}");
    }
}

on_both_backends!(
    metrics_count_routes_without_naming_users,
    accepted_messages_are_counted_by_kind,
);
