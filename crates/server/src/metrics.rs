//! Prometheus metrics at `GET /metrics`, in the OpenMetrics text format.
//!
//! Labels never name a user, a device, a conversation or a client: requests are counted
//! by route *template* (`/v1/accounts/{username}`, not the name in the URL), method and
//! status; stored data by kind.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::state::AppState;

/// Labels of a request: route template, method and status code.
type RequestLabels = Vec<(&'static str, String)>;

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<Vec<(&'static str, String)>, Histogram>,
    /// Messages accepted for delivery, by kind (`application`, `commit`, `welcome`).
    pub messages: Family<Vec<(&'static str, &'static str)>, Counter>,
    /// Rows deleted by the retention sweeper, by what (`messages`, `expired`).
    pub swept: Family<Vec<(&'static str, &'static str)>, Counter>,
    /// Open WebSocket connections.
    pub live_connections: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("sotto");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route template, method and status",
            requests.clone(),
        );
        let latency =
            Family::<Vec<(&'static str, String)>, Histogram>::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.0005, 2.0, 16))
            });
        registry.register(
            "http_request_duration_seconds",
            "Time to answer HTTP requests, by route template",
            latency.clone(),
        );
        let messages = Family::default();
        registry.register(
            "messages_accepted",
            "Messages accepted for delivery, by kind",
            messages.clone(),
        );
        let swept = Family::default();
        registry.register(
            "retention_deleted",
            "Rows deleted by the retention sweeper",
            swept.clone(),
        );
        let live_connections = Gauge::default();
        registry.register(
            "live_connections",
            "Open WebSocket connections",
            live_connections.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            messages,
            swept,
            live_connections,
        }
    }
}

/// Middleware counting and timing every request by its route template.
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    metrics
        .latency
        .get_or_create(&vec![("route", route.clone())])
        .observe(started.elapsed().as_secs_f64());
    metrics
        .requests
        .get_or_create(&vec![
            ("route", route),
            ("method", method),
            ("status", response.status().as_u16().to_string()),
        ])
        .inc();
    response
}

/// `GET /metrics`.
pub async fn serve(State(state): State<AppState>) -> Response {
    let mut text = String::new();
    if encode(&mut text, &state.metrics.registry).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
