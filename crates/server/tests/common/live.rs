//! A WebSocket client for `/v1/ws`, for the live-delivery tests.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use sotto_api::{ClientFrame, InboxMessage, ServerFrame};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};

use super::TestServer;

/// A client socket.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A guard against hanging, not a wait: every frame is awaited, never slept for.
pub const GUARD: Duration = Duration::from_secs(30);

/// Opens `/v1/ws`, with `Authorization: Bearer <token>` if a token is given.
pub async fn open(server: &TestServer, token: Option<&str>) -> Result<Socket, WsError> {
    let url = format!(
        "{}{}",
        server.base.replacen("http://", "ws://", 1),
        sotto_api::WS_PATH
    );
    let mut request = url.into_client_request().unwrap();
    if let Some(token) = token {
        let value = format!("Bearer {token}").parse().unwrap();
        request.headers_mut().insert("authorization", value);
    }
    connect_async(request).await.map(|(socket, _)| socket)
}

/// The socket's local (client) port.
pub fn local_port(socket: &Socket) -> u16 {
    match socket.get_ref() {
        MaybeTlsStream::Plain(tcp) => tcp.local_addr().unwrap().port(),
        _ => panic!("expected a plain TCP socket"),
    }
}

/// Sends a client frame.
pub async fn send(socket: &mut Socket, frame: &ClientFrame) {
    let text = serde_json::to_string(frame).unwrap();
    socket.send(Message::text(text)).await.unwrap();
}

/// The next frame from the server that is not a ping or pong.
pub async fn next_frame(socket: &mut Socket) -> Message {
    let deadline = Instant::now() + GUARD;
    loop {
        let frame = timeout_at(deadline, socket.next())
            .await
            .expect("no frame in time");
        match frame {
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(frame)) => return frame,
            other => panic!("socket ended: {other:?}"),
        }
    }
}

/// The next message frame from the server.
pub async fn next_message(socket: &mut Socket) -> InboxMessage {
    match next_frame(socket).await {
        Message::Text(text) => match serde_json::from_str(&text).unwrap() {
            ServerFrame::Message(m) => m,
            other => panic!("expected a message, got {other:?}"),
        },
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// Sends a ping and waits for its pong: the server has handled every earlier frame.
/// Returns the messages that arrived meanwhile.
pub async fn sync(socket: &mut Socket) -> Vec<InboxMessage> {
    socket
        .send(Message::Ping(b"sync".to_vec().into()))
        .await
        .unwrap();
    let mut messages = Vec::new();
    let deadline = Instant::now() + GUARD;
    loop {
        let frame = timeout_at(deadline, socket.next())
            .await
            .expect("no pong in time");
        match frame {
            Some(Ok(Message::Pong(data))) if data.as_ref() == b"sync" => return messages,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            Some(Ok(Message::Text(text))) => match serde_json::from_str(&text).unwrap() {
                ServerFrame::Message(m) => messages.push(m),
                other => panic!("unexpected {other:?}"),
            },
            other => panic!("socket ended: {other:?}"),
        }
    }
}
