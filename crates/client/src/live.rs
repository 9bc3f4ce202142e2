//! Live delivery over the server's WebSocket: messages are processed as they arrive and
//! acknowledged on the same socket.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use sotto_api::{ClientFrame, InboxMessage, ServerFrame};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::client::Client;
use crate::error::{ClientError, Result};
use crate::model::SyncReport;

/// Largest frame accepted from the server.
const MAX_FRAME: usize = 8 << 20;

/// An open live connection of one client.
pub struct Live {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl core::fmt::Debug for Live {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Live")
    }
}

impl Client {
    /// Syncs, then opens the WebSocket and subscribes after the last processed message.
    pub async fn connect_live(&mut self) -> Result<(Live, SyncReport)> {
        let report = self.sync().await?;
        let token = self.token().await?;
        let url = self.api.websocket_url();
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| ClientError::Invalid(format!("bad WebSocket address {url}: {e}")))?;
        let bearer = format!("Bearer {token}")
            .parse()
            .map_err(|_| ClientError::Protocol("the session token is not a valid header".into()))?;
        request.headers_mut().insert("authorization", bearer);
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(Some(MAX_FRAME))
            .max_frame_size(Some(MAX_FRAME));
        let connector = tokio_tungstenite::Connector::Rustls(self.api.tls());
        let (socket, _) = tokio_tungstenite::connect_async_tls_with_config(
            request,
            Some(config),
            false,
            Some(connector),
        )
        .await
        .map_err(|e| ClientError::Unreachable {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        let mut live = Live { socket };
        live.send(&ClientFrame::Subscribe {
            after: self.profile.cursor,
        })
        .await?;
        Ok((live, report))
    }

    /// Waits up to `wait` for messages on `live`; processes and acknowledges what came.
    /// Returns `None` if nothing came in time.
    pub async fn next_live(
        &mut self,
        live: &mut Live,
        wait: Duration,
    ) -> Result<Option<SyncReport>> {
        let mut report = SyncReport::default();
        let mut delivered = Default::default();
        let Ok(frame) = tokio::time::timeout(wait, live.socket.next()).await else {
            return Ok(None);
        };
        let mut entries = Vec::new();
        let mut frame = frame;
        loop {
            match frame {
                Some(Ok(Frame::Text(text))) => entries.push(decode_frame(&text)?),
                Some(Ok(Frame::Ping(_) | Frame::Pong(_))) => {}
                Some(Ok(Frame::Close(_))) | None => {
                    return Err(ClientError::Unreachable {
                        url: self.api.base().to_owned(),
                        reason: "the live connection closed".into(),
                    })
                }
                Some(Ok(_)) => return Err(ClientError::Protocol("unexpected live frame".into())),
                Some(Err(e)) => {
                    return Err(ClientError::Unreachable {
                        url: self.api.base().to_owned(),
                        reason: e.to_string(),
                    })
                }
            }
            // Take whatever else already arrived, without waiting.
            match tokio::time::timeout(Duration::ZERO, live.socket.next()).await {
                Ok(next) => frame = next,
                Err(_) => break,
            }
        }
        // Entries at or before the cursor were processed already (a replaying server).
        let cursor = self.profile.cursor;
        entries.retain(|m| m.cursor > cursor);
        if entries.is_empty() {
            return Ok(Some(report));
        }
        // A commit of this device in doubt comes first: what follows it needs its epoch.
        self.settle_commits_in_doubt().await?;
        let cursors = self
            .process_entries(entries, &mut report, &mut delivered)
            .await?;
        live.send(&ClientFrame::Ack { cursors }).await?;
        for (id, ids) in delivered {
            let _ = self
                .send_receipt(&id, sotto_core::content::ReceiptKind::Delivered, &ids)
                .await;
        }
        Ok(Some(report))
    }
}

/// Decodes a text frame from the server: a mailbox entry, or the error the server closes
/// the socket with (a [`ClientError::Server`] with status 0); anything else is a
/// [`ClientError::Protocol`]. Public for the fuzz targets and property tests.
#[doc(hidden)]
pub fn decode_frame(text: &str) -> Result<InboxMessage> {
    match serde_json::from_str::<ServerFrame>(text) {
        Ok(ServerFrame::Message(m)) => Ok(m),
        Ok(ServerFrame::Error(e)) => Err(ClientError::Server {
            status: 0,
            code: Some(e.error),
            message: e.message,
        }),
        Err(e) => Err(ClientError::Protocol(format!("bad live frame: {e}"))),
    }
}

impl Live {
    async fn send(&mut self, frame: &ClientFrame) -> Result<()> {
        let text =
            serde_json::to_string(frame).map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.socket
            .send(Frame::text(text))
            .await
            .map_err(|e| ClientError::Unreachable {
                url: String::new(),
                reason: e.to_string(),
            })
    }
}
