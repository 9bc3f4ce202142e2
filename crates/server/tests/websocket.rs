//! Live delivery over a real WebSocket between real MLS devices: messages arrive as they
//! are posted (the client never polls), the backlog first and in order, acknowledgements
//! delete ciphertext, a reconnect resumes after its cursor, hostile frames are refused, and
//! neither shutdown nor revocation leaves a socket open.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use sotto_api::{ApiError, ClientFrame, ErrorCode, InboxMessage, MessageKind, ServerFrame};
use sotto_core::content::Body;
use sotto_core::conversation::{Conversation, Event};
use sotto_core::device::{NewDevice, SottoConfig};
use tokio::time::{timeout, timeout_at, Instant};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// Opens a socket for `who` and subscribes after `after`.
async fn subscribed(server: &TestServer, who: &Person, after: u64) -> Socket {
    let mut socket = open(server, Some(&who.token)).await.unwrap();
    send(&mut socket, &ClientFrame::Subscribe { after }).await;
    socket
}

/// Reads until the server closes: its error frame, if any, and the close code.
async fn closed(socket: &mut Socket) -> (Option<ApiError>, Option<CloseCode>) {
    closed_within(socket, GUARD).await
}

async fn closed_within(
    socket: &mut Socket,
    limit: Duration,
) -> (Option<ApiError>, Option<CloseCode>) {
    let mut error = None;
    let deadline = Instant::now() + limit;
    loop {
        let frame = timeout_at(deadline, socket.next())
            .await
            .expect("not closed in time");
        match frame {
            Some(Ok(Message::Text(text))) => match serde_json::from_str(&text).unwrap() {
                ServerFrame::Error(e) => error = Some(e),
                ServerFrame::Message(_) => {}
            },
            Some(Ok(Message::Close(frame))) => return (error, frame.map(|f| f.code)),
            Some(Ok(_)) => {}
            None | Some(Err(_)) => return (error, None),
        }
    }
}

/// Posts `text` from alice's side to bob.
async fn say(server: &TestServer, alice: &Person, bob: &Person, ca: &mut Conv, text: &str) {
    let (_, ct) = ca.send_text(text, 600, false, NOW_MS).unwrap();
    let response = post(server, alice, ca.id(), &to(ct, &[bob])).await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

type Conv = Conversation<SottoConfig>;

fn read(cb: &mut Conv, message: &InboxMessage) -> String {
    let Event::Message(m) = cb.process(&message.payload.0, NOW_MS).unwrap() else {
        panic!("not an application message")
    };
    match &m.content.body {
        Body::Text(text) => text.clone(),
        other => panic!("not text: {other:?}"),
    }
}

async fn pair(server: &TestServer) -> (Person, Person, Conv, Conv) {
    let (alice, bob) = (person(server, "alice").await, person(server, "bob").await);
    let (ca, cb) = conversation(server, &alice, &bob).await;
    (alice, bob, ca, cb)
}

async fn a_message_posted_over_http_arrives_on_the_open_socket(db: Db) {
    let server = TestServer::start(db.clone()).await;
    let (alice, bob) = (person(&server, "alice").await, person(&server, "bob").await);
    let mut socket = subscribed(&server, &bob, 0).await;
    // The subscription is in place (and found nothing) before anything is posted.
    assert!(sync(&mut socket).await.is_empty());

    // The helper fetches and acknowledges the Welcome that adds bob over HTTP, racing the
    // socket: the socket sends it only if it read the mailbox before the ack deleted it.
    let (mut ca, mut cb) = conversation(&server, &alice, &bob).await;
    let raced = sync(&mut socket).await;
    assert!(raced.len() <= 1 && raced.iter().all(|m| m.kind == MessageKind::Welcome));
    say(&server, &alice, &bob, &mut ca, "live one").await;
    let first = next_message(&mut socket).await;
    assert_eq!(read(&mut cb, &first), "live one");
    say(&server, &alice, &bob, &mut ca, "live two").await;
    let second = next_message(&mut socket).await;
    assert!(second.cursor > first.cursor);
    assert_eq!(read(&mut cb, &second), "live two");
    // Nothing came twice.
    assert!(sync(&mut socket).await.is_empty());
    // The open socket is counted (by no label but the metric's name).
    let metrics = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert!(metrics
        .text()
        .await
        .unwrap()
        .contains("sotto_live_connections 1"));
}

async fn the_backlog_arrives_first_and_in_order_then_live_messages(db: Db) {
    let server = TestServer::start(db.clone()).await;
    let (alice, bob, mut ca, mut cb) = pair(&server).await;
    // More than one page of the store.
    let backlog: Vec<String> = (0..20).map(|i| format!("backlog {i}")).collect();
    for text in &backlog {
        say(&server, &alice, &bob, &mut ca, text).await;
    }
    let mut socket = subscribed(&server, &bob, 0).await;
    let mut last = 0;
    for text in &backlog {
        let m = next_message(&mut socket).await;
        assert!(m.cursor > last, "in cursor order");
        last = m.cursor;
        assert_eq!(&read(&mut cb, &m), text);
    }
    say(&server, &alice, &bob, &mut ca, "and now live").await;
    let m = next_message(&mut socket).await;
    assert!(m.cursor > last);
    assert_eq!(read(&mut cb, &m), "and now live");
    assert!(sync(&mut socket).await.is_empty());
}

async fn acknowledging_over_the_socket_deletes_the_ciphertext(db: Db) {
    let server = TestServer::start(db.clone()).await;
    let (alice, bob, mut ca, mut cb) = pair(&server).await;
    let mut socket = subscribed(&server, &bob, 0).await;
    say(&server, &alice, &bob, &mut ca, "burn after reading").await;
    let m = next_message(&mut socket).await;
    read(&mut cb, &m);
    assert_eq!(server.stored.count("SELECT COUNT(*) FROM log").await, 1);
    send(
        &mut socket,
        &ClientFrame::Ack {
            cursors: vec![m.cursor],
        },
    )
    .await;
    sync(&mut socket).await;
    assert_eq!(server.stored.count("SELECT COUNT(*) FROM log").await, 0);
    assert!(inbox(&server, &bob).await.messages.is_empty());
}

async fn a_reconnecting_client_gets_only_what_came_after_its_cursor(db: Db) {
    let server = TestServer::start(db.clone()).await;
    let (alice, bob, mut ca, mut cb) = pair(&server).await;
    let mut socket = subscribed(&server, &bob, 0).await;
    for text in ["one", "two", "three"] {
        say(&server, &alice, &bob, &mut ca, text).await;
    }
    let got = [
        next_message(&mut socket).await,
        next_message(&mut socket).await,
        next_message(&mut socket).await,
    ];
    // bob processes "one" and "two", acknowledges only "one", and drops the connection.
    assert_eq!(read(&mut cb, &got[0]), "one");
    assert_eq!(read(&mut cb, &got[1]), "two");
    send(
        &mut socket,
        &ClientFrame::Ack {
            cursors: vec![got[0].cursor],
        },
    )
    .await;
    sync(&mut socket).await;
    socket.close(None).await.unwrap();
    say(&server, &alice, &bob, &mut ca, "four").await;

    let mut socket = subscribed(&server, &bob, got[1].cursor).await;
    let again = next_message(&mut socket).await;
    assert_eq!(again.cursor, got[2].cursor, "\"three\" was never processed");
    assert_eq!(read(&mut cb, &again), "three");
    assert_eq!(read(&mut cb, &next_message(&mut socket).await), "four");
    assert!(sync(&mut socket).await.is_empty(), "nothing twice");
}

async fn a_socket_needs_a_session(db: Db) {
    let server = TestServer::start(db.clone()).await;
    let (_, bob, _, _) = pair(&server).await;
    for token in [None, Some("bm90IGEgdG9rZW4")] {
        match open(&server, token).await {
            Err(WsError::Http(response)) => {
                assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
                let body: ApiError =
                    serde_json::from_slice(response.body().as_ref().unwrap()).unwrap();
                assert_eq!(body.error, ErrorCode::Unauthorized);
            }
            other => panic!("expected 401, got {other:?}"),
        }
    }
    // A plain GET with a session is not an upgrade: a JSON 4xx, not a 5xx.
    let response = server
        .http
        .get(server.url("/v1/ws"))
        .bearer_auth(&bob.token)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error());
    response.json::<ApiError>().await.unwrap();
    // A device may hold only a few sockets at once.
    let mut sockets = Vec::new();
    for _ in 0..sotto_server::hub::MAX_CONNECTIONS_PER_DEVICE {
        sockets.push(open(&server, Some(&bob.token)).await.unwrap());
    }
    match open(&server, Some(&bob.token)).await {
        Err(WsError::Http(response)) => {
            assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS)
        }
        other => panic!("expected 429, got {other:?}"),
    }
}

async fn hostile_frames_get_an_error_frame_and_a_close(db: Db) {
    let server = TestServer::start(db.clone()).await;
    let (alice, bob, mut ca, mut cb) = pair(&server).await;
    let too_many = serde_json::to_string(&ClientFrame::Ack {
        cursors: (0..501).collect(),
    })
    .unwrap();
    let subscribe = serde_json::to_string(&ClientFrame::Subscribe { after: 0 }).unwrap();
    let cases: Vec<(&str, Vec<Message>, CloseCode)> = vec![
        (
            "binary",
            vec![Message::Binary(vec![1, 2, 3].into())],
            CloseCode::Unsupported,
        ),
        ("not JSON", vec![Message::text("{nope")], CloseCode::Policy),
        (
            "unknown type",
            vec![Message::text(r#"{"type":"shout","after":0}"#)],
            CloseCode::Policy,
        ),
        (
            "unknown field",
            vec![Message::text(r#"{"type":"ack","cursors":[],"all":true}"#)],
            CloseCode::Policy,
        ),
        (
            "oversized",
            vec![Message::text("x".repeat(100 * 1024))],
            CloseCode::Policy,
        ),
        (
            "too many cursors",
            vec![Message::text(too_many)],
            CloseCode::Policy,
        ),
        (
            "subscribing twice",
            vec![Message::text(subscribe.clone()), Message::text(subscribe)],
            CloseCode::Policy,
        ),
    ];
    for (what, frames, code) in cases {
        let mut socket = open(&server, Some(&bob.token)).await.unwrap();
        for frame in frames {
            socket.send(frame).await.unwrap();
        }
        let (error, close) = closed(&mut socket).await;
        let error = error.unwrap_or_else(|| panic!("{what}: no error frame"));
        assert_eq!(error.error, ErrorCode::BadRequest, "{what}");
        assert_eq!(close, Some(code), "{what}: {}", error.message);
    }
    // The server is unharmed and a well-behaved client still gets its mail.
    let health = server
        .http
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let mut socket = subscribed(&server, &bob, 0).await;
    say(&server, &alice, &bob, &mut ca, "still here").await;
    assert_eq!(
        read(&mut cb, &next_message(&mut socket).await),
        "still here"
    );
}

async fn the_server_shuts_down_promptly_with_a_socket_open(db: Db) {
    let server = TestServer::start(db.clone()).await;
    let (_, bob, _, _) = pair(&server).await;
    let mut socket = subscribed(&server, &bob, 0).await;
    sync(&mut socket).await;
    let started = Instant::now();
    timeout(GUARD, server.stop())
        .await
        .expect("the server did not shut down");
    assert!(
        started.elapsed() < sotto_server::hub::CLOSE_GRACE,
        "shutdown waited for the grace period: the socket did not close"
    );
    let (error, code) = closed(&mut socket).await;
    assert!(error.is_none());
    assert_eq!(code, Some(CloseCode::Away));
}

async fn a_device_revoked_while_connected_loses_its_socket(db: Db) {
    let server = TestServer::start(db.clone()).await;
    let (root, phone) = registered(&server, "alice").await;
    let laptop = NewDevice::generate(&root, 2).unwrap();
    server
        .add_device("alice", laptop.certificate.to_bytes().unwrap())
        .await;
    let phone_token = login(&server, "alice", &phone).await;
    let laptop_token = login(&server, "alice", &laptop).await;
    let mut socket = open(&server, Some(&phone_token)).await.unwrap();
    send(&mut socket, &ClientFrame::Subscribe { after: 0 }).await;
    sync(&mut socket).await;

    let phone_id = phone.certificate.verify().unwrap().device_id.to_hex();
    let url = server.url(&format!("/v1/accounts/alice/devices/{phone_id}/revoke"));
    let response = server
        .http
        .post(url)
        .bearer_auth(&laptop_token)
        .json(&sotto_api::RevokeDevice::default())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    // At once, not at the next periodic check of the session.
    let (error, code) = closed_within(&mut socket, sotto_server::ws::PING_INTERVAL / 2).await;
    assert_eq!(error.unwrap().error, ErrorCode::Unauthorized);
    assert_eq!(code, Some(CloseCode::Policy));
    // The laptop's own socket is unaffected.
    let mut socket = open(&server, Some(&laptop_token)).await.unwrap();
    send(&mut socket, &ClientFrame::Subscribe { after: 0 }).await;
    assert!(sync(&mut socket).await.is_empty());
}

/// Two server processes on one PostgreSQL database: a message accepted by one reaches a
/// socket held open on the other, woken through the database, not by polling.
async fn a_message_sent_through_another_server_wakes_the_socket(db: Db) {
    if matches!(db, Db::Sqlite) {
        return; // one SQLite database belongs to one process
    }
    let server = TestServer::start(db.clone()).await;
    let other = TestServer::start_on(server.stored.alias()).await;
    let (alice, bob, mut ca, mut cb) = pair(&server).await;
    let mut socket = subscribed(&server, &bob, 0).await;
    assert!(sync(&mut socket).await.is_empty());
    say(&other, &alice, &bob, &mut ca, "through the other one").await;
    let message = next_message(&mut socket).await;
    assert_eq!(read(&mut cb, &message), "through the other one");
    other.stop().await;
}

on_both_backends!(
    a_message_sent_through_another_server_wakes_the_socket,
    a_message_posted_over_http_arrives_on_the_open_socket,
    the_backlog_arrives_first_and_in_order_then_live_messages,
    acknowledging_over_the_socket_deletes_the_ciphertext,
    a_reconnecting_client_gets_only_what_came_after_its_cursor,
    a_socket_needs_a_session,
    hostile_frames_get_an_error_frame_and_a_close,
    the_server_shuts_down_promptly_with_a_socket_open,
    a_device_revoked_while_connected_loses_its_socket,
);
