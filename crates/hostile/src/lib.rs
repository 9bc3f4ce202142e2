//! # sotto-hostile
//!
//! A compromised server, played by a proxy: clients talk to [`Proxy`], which forwards
//! every request to a real Sotto server and lets a test rewrite what goes back (or what
//! goes in). One proxy per client gives each member its own view of the server, which
//! is how a server forks a group or withholds messages from one member.
//!
//! The attacks themselves are the tests in `tests/`: each makes the server misbehave in
//! one way and asserts what the user sees (a clear error or notice, never a silent wrong
//! message) and that the client's state is intact afterwards.

use std::sync::{Arc, Mutex};

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio::sync::oneshot;

/// Largest body the proxy carries (an attachment, with room to spare).
const MAX_BODY: usize = 64 << 20;

/// One request and its answer, as the proxy sees them; a rule may change any part.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query, if any.
    pub query: Option<String>,
    /// The request body.
    pub request: Vec<u8>,
    /// The answer's status.
    pub status: u16,
    /// The answer's body.
    pub response: Vec<u8>,
}

/// What a rule does to an exchange: before forwarding (`response` empty; setting
/// `status` answers in the server's place, and the request never reaches it) and after.
pub type Rewrite = Box<dyn FnMut(&mut Exchange, Phase) + Send>;

/// When a rule runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Before the request goes to the server.
    Request,
    /// After the server answered, before the client sees the answer.
    Response,
}

struct Shared {
    upstream: String,
    http: reqwest::Client,
    rules: Mutex<Vec<Rewrite>>,
}

/// A proxy in front of a real server.
pub struct Proxy {
    /// The address clients use, e.g. `http://127.0.0.1:40001`.
    pub url: String,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
}

impl Proxy {
    /// Starts a proxy on loopback in front of `upstream`.
    pub async fn start(upstream: &str) -> std::io::Result<Self> {
        // reqwest is built without a crypto provider of its own in this workspace.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            rules: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .fallback(forward)
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Self {
            url,
            shared,
            stop: Some(stop),
        })
    }

    /// Adds a rule; rules run in the order they were added.
    pub fn rule(&self, rewrite: impl FnMut(&mut Exchange, Phase) + Send + 'static) {
        if let Ok(mut rules) = self.shared.rules.lock() {
            rules.push(Box::new(rewrite));
        }
    }

    /// Removes every rule: the server behaves again.
    pub fn behave(&self) {
        if let Ok(mut rules) = self.shared.rules.lock() {
            rules.clear();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn apply(shared: &Shared, exchange: &mut Exchange, phase: Phase) {
    if let Ok(mut rules) = shared.rules.lock() {
        for rule in rules.iter_mut() {
            rule(exchange, phase);
        }
    }
}

async fn forward(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = to_bytes(body, MAX_BODY).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let mut exchange = Exchange {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        request: body.to_vec(),
        status: 0,
        response: Vec::new(),
    };
    apply(&shared, &mut exchange, Phase::Request);
    if exchange.status != 0 {
        // A rule answered in the server's place: the request never reaches it.
        return answer_with(exchange.status, exchange.response, None);
    }
    let mut url = format!("{}{}", shared.upstream, exchange.path);
    if let Some(query) = &exchange.query {
        url = format!("{url}?{query}");
    }
    let mut upstream = shared
        .http
        .request(parts.method.clone(), url)
        .body(exchange.request.clone());
    for name in ["authorization", "content-type"] {
        if let Some(value) = parts.headers.get(name) {
            upstream = upstream.header(name, value.clone());
        }
    }
    let answer = match upstream.send().await {
        Ok(answer) => answer,
        Err(_) => return StatusCode::BAD_GATEWAY.into_response(),
    };
    exchange.status = answer.status().as_u16();
    let content_type = answer.headers().get("content-type").cloned();
    exchange.response = match answer.bytes().await {
        Ok(bytes) => bytes.to_vec(),
        Err(_) => return StatusCode::BAD_GATEWAY.into_response(),
    };
    apply(&shared, &mut exchange, Phase::Response);
    answer_with(exchange.status, exchange.response, content_type)
}

fn answer_with(status: u16, body: Vec<u8>, content_type: Option<HeaderValue>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    let content_type = content_type.unwrap_or_else(|| HeaderValue::from_static("application/json"));
    response.headers_mut().insert("content-type", content_type);
    response
}
