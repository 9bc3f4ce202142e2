//! Real MLS devices talking through a test server: people, conversations, sends, inbox.

use reqwest::StatusCode;
use sotto_api::{
    Ack, Bytes, ClaimedKeyPackages, DeviceAddress, Inbox, MessageKind, SendMessage, WelcomeDelivery,
};
use sotto_core::conversation::Conversation;
use sotto_core::device::{expect_key_package, Device, SottoConfig};
use sotto_core::identity::UserRootKey;
use sotto_core::policy::{BurnOnRead, Policy};

use super::{login, mls_device, registered, TestServer};

pub const NOW_MS: u64 = 1_800_000_000_000;

/// A logged-in user with one MLS device.
pub struct Person {
    pub name: String,
    pub root: UserRootKey,
    pub device: Device,
    pub address: DeviceAddress,
    pub token: String,
}

pub async fn person(server: &TestServer, name: &str) -> Person {
    let (root, new) = registered(server, name).await;
    let token = login(server, name, &new).await;
    let address = DeviceAddress {
        username: name.into(),
        device_id: new.certificate.verify().unwrap().device_id.to_hex(),
    };
    let device = mls_device(&new);
    let kp = device.key_package().unwrap();
    let response = server.upload_key_packages(&token, vec![kp], None).await;
    assert_eq!(response.status(), StatusCode::OK);
    Person {
        name: name.into(),
        root,
        device,
        address,
        token,
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn message_id() -> String {
    hex(&sotto_core::crypto::random_array::<16>().unwrap())
}

/// A message with a fresh id for `recipients`, with no Welcome and no removed devices.
pub fn to(payload: Vec<u8>, recipients: &[&Person]) -> SendMessage {
    SendMessage {
        message_id: message_id(),
        payload: Bytes(payload),
        recipients: recipients.iter().map(|p| p.address.clone()).collect(),
        welcome: None,
        removed: vec![],
    }
}

pub async fn post(
    server: &TestServer,
    from: &Person,
    conversation: &[u8],
    body: &SendMessage,
) -> reqwest::Response {
    let url = server.url(&format!("/v1/conversations/{}/messages", hex(conversation)));
    server
        .http
        .post(url)
        .bearer_auth(&from.token)
        .json(body)
        .send()
        .await
        .unwrap()
}

pub async fn inbox(server: &TestServer, who: &Person) -> Inbox {
    let url = server.url("/v1/inbox?after=0");
    server
        .http
        .get(url)
        .bearer_auth(&who.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

pub async fn ack(server: &TestServer, who: &Person, cursors: Vec<u64>) {
    let url = server.url("/v1/inbox/ack");
    let response = server
        .http
        .post(url)
        .bearer_auth(&who.token)
        .json(&Ack { cursors })
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}

/// alice creates a conversation managed by both and adds bob through the server.
pub async fn conversation(
    server: &TestServer,
    alice: &Person,
    bob: &Person,
) -> (Conversation<SottoConfig>, Conversation<SottoConfig>) {
    let policy = Policy::new(
        vec![
            alice.root.public_key().fingerprint(),
            bob.root.public_key().fingerprint(),
        ],
        3600,
        BurnOnRead::Allowed,
    )
    .unwrap();
    let mut ca = alice.device.create_conversation(&policy).unwrap();
    let url = server.url(&format!("/v1/accounts/{}/key-packages/claim", bob.name));
    let claimed: ClaimedKeyPackages = server
        .http
        .post(url)
        .bearer_auth(&alice.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kp = claimed.key_packages[0].key_package.0.clone();
    expect_key_package(&kp, bob.root.user(), &bob.root.public_key().fingerprint()).unwrap();
    let out = ca.add_and_remove(&[kp], &[]).unwrap();
    let body = SendMessage {
        message_id: message_id(),
        payload: Bytes(out.commit),
        recipients: vec![],
        welcome: Some(WelcomeDelivery {
            payload: Bytes(out.welcome.unwrap()),
            recipients: vec![bob.address.clone()],
        }),
        removed: vec![],
    };
    assert_eq!(
        post(server, alice, ca.id(), &body).await.status(),
        StatusCode::CREATED
    );
    ca.merge_pending_commit().unwrap();
    let got = inbox(server, bob).await;
    assert_eq!(got.messages.len(), 1);
    assert_eq!(got.messages[0].kind, MessageKind::Welcome);
    let cb = bob.device.join(&got.messages[0].payload.0).unwrap();
    ack(server, bob, vec![got.messages[0].cursor]).await;
    (ca, cb)
}
