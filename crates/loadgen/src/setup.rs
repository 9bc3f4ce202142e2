//! Setting up the run: accounts, devices, sessions, conversations and their ciphertexts.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sotto_api::{
    Bytes, Challenge, ChallengeRequest, DeviceAddress, RegisterAccount, RegisterDevice,
    SendMessage, Session, SessionRequest,
};
use sotto_core::auth::{sign_challenge, CHALLENGE_LEN};
use sotto_core::device::{generate_device_key, Device, NewDevice};
use sotto_core::identity::{DeviceId, UserId, UserRootKey};
use sotto_core::policy::{BurnOnRead, Policy};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::{Context, Error, Options};

/// How long one request may take before it counts as failed.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Stands for the message id in a body template.
const ID_MARK: &str = "@@message-id@@";

/// A logged-in device.
pub(crate) struct Enrolled {
    pub address: DeviceAddress,
    pub token: String,
    root: UserRootKey,
    device: NewDevice,
}

/// One conversation of the run: its sender's session, its recipients and the bodies the
/// sender posts.
pub(crate) struct Conversation {
    /// Lower-case hex MLS group id, as frames carry it.
    pub id_hex: String,
    /// `POST` URL of the conversation's messages.
    pub url: String,
    /// The sending device's session token.
    pub sender_token: String,
    /// Session tokens of the recipient devices.
    pub recipients: Vec<String>,
    /// Send bodies, each split around its message id: `(before, after)`.
    pub bodies: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Conversation {
    /// The body of the `n`th send with message id `id` (32 lower-case hex digits).
    pub fn body(&self, n: u64, id: &str) -> Vec<u8> {
        let len = self.bodies.len().max(1) as u64;
        let Some((before, after)) = self.bodies.get((n % len) as usize) else {
            return Vec::new();
        };
        let mut body = Vec::with_capacity(before.len() + id.len() + after.len());
        body.extend_from_slice(before);
        body.extend_from_slice(id.as_bytes());
        body.extend_from_slice(after);
        body
    }
}

/// Everything set up for the run.
pub(crate) struct World {
    /// The server's base URL.
    pub base: String,
    /// The HTTP client of every device.
    pub http: reqwest::Client,
    /// The conversations.
    pub conversations: Vec<Conversation>,
    /// Run-unique hex, in user names and message ids.
    pub tag: String,
    /// How long the setup took.
    pub setup: Duration,
    /// Size of one MLS ciphertext.
    pub ciphertext_bytes: usize,
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn call<B: Serialize, R: DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
    body: &B,
    expect: StatusCode,
) -> Result<R, Error> {
    let response = http
        .post(url)
        .json(body)
        .send()
        .await
        .context(format!("POST {url}"))?;
    let status = response.status();
    if status != expect {
        let text = response.text().await.unwrap_or_default();
        return Err(Error::new(format!(
            "POST {url}: expected {expect}, got {status}: {text}"
        )));
    }
    response
        .json()
        .await
        .context(format!("POST {url}: unreadable answer"))
}

/// Registers an account `name` with one device and logs the device in.
async fn enrol(http: reqwest::Client, base: String, name: String) -> Result<Enrolled, Error> {
    let user = UserId::new(&name).context(format!("user id {name}"))?;
    let root = UserRootKey::generate(user.clone()).context("root key")?;
    let _: sotto_api::Account = call(
        &http,
        &format!("{base}/v1/accounts"),
        &RegisterAccount {
            username: name.clone(),
            root_public_key: Bytes(root.public_key().as_bytes().to_vec()),
        },
        StatusCode::CREATED,
    )
    .await?;
    let (secret, public) = generate_device_key().context("device key")?;
    let device_id = DeviceId::random().context("device id")?;
    let certificate = root
        .certify_device(device_id, &public, unix_secs())
        .context("device certificate")?;
    let _: sotto_api::DeviceInfo = call(
        &http,
        &format!("{base}/v1/accounts/{name}/devices"),
        &RegisterDevice {
            certificate: Bytes(certificate.to_bytes().context("device certificate")?),
        },
        StatusCode::CREATED,
    )
    .await?;
    let address = DeviceAddress {
        username: name.clone(),
        device_id: device_id.to_hex(),
    };
    let challenge: Challenge = call(
        &http,
        &format!("{base}/v1/auth/challenge"),
        &ChallengeRequest {
            username: name.clone(),
            device_id: address.device_id.clone(),
        },
        StatusCode::OK,
    )
    .await?;
    let answer: &[u8; CHALLENGE_LEN] = challenge
        .challenge
        .0
        .as_slice()
        .try_into()
        .map_err(|_| Error::new("the server's challenge is not 32 bytes"))?;
    let signature = sign_challenge(&secret, answer, &user, &device_id).context("signing")?;
    let session: Session = call(
        &http,
        &format!("{base}/v1/auth/session"),
        &SessionRequest {
            username: name,
            device_id: address.device_id.clone(),
            challenge: challenge.challenge,
            signature: Bytes(signature),
        },
        StatusCode::CREATED,
    )
    .await?;
    Ok(Enrolled {
        address,
        token: session.token,
        root,
        device: NewDevice {
            certificate,
            secret,
        },
    })
}

/// The sender's MLS conversation and `count` send bodies of `text` to `to`.
fn encrypt(
    sender: &Enrolled,
    to: &[DeviceAddress],
    text: &str,
    count: usize,
) -> Result<Prepared, Error> {
    let device = Device::in_memory(NewDevice {
        certificate: sender.device.certificate.clone(),
        secret: sender.device.secret.clone(),
    })
    .context("MLS device")?;
    let policy = Policy::new(
        vec![sender.root.public_key().fingerprint()],
        3600,
        BurnOnRead::Allowed,
    )
    .context("policy")?;
    let mut conversation = device
        .create_conversation(&policy)
        .context("MLS conversation")?;
    let id_hex: String = conversation
        .id()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut bodies = Vec::with_capacity(count);
    let mut ciphertext_bytes = 0;
    for _ in 0..count {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let (_, payload) = conversation
            .send_text(text, 600, false, now_ms)
            .context("encrypting")?;
        ciphertext_bytes = payload.len();
        let body = serde_json::to_string(&SendMessage {
            message_id: ID_MARK.into(),
            payload: Bytes(payload),
            recipients: to.to_vec(),
            welcome: None,
            removed: vec![],
        })
        .context("encoding a send")?;
        let (before, after) = body
            .split_once(ID_MARK)
            .ok_or_else(|| Error::new("cannot template a send body"))?;
        bodies.push((before.as_bytes().to_vec(), after.as_bytes().to_vec()));
    }
    Ok(Prepared {
        id_hex,
        bodies,
        ciphertext_bytes,
    })
}

/// A conversation's id and send bodies.
struct Prepared {
    id_hex: String,
    bodies: Vec<(Vec<u8>, Vec<u8>)>,
    ciphertext_bytes: usize,
}

/// The text of every message: `bytes` bytes of ASCII.
fn text_of(bytes: usize) -> String {
    "Sotto load test message. "
        .chars()
        .cycle()
        .take(bytes)
        .collect()
}

impl World {
    /// Enrols every device and prepares every conversation.
    pub async fn build(options: &Options, base: &str) -> Result<Self, Error> {
        let started = std::time::Instant::now();
        let tag = crate::target::run_tag()?;
        // reqwest has no built-in TLS provider in this workspace; AWS-LC is the process-wide one.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(usize::MAX)
            .tcp_nodelay(true)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .context("HTTP client")?;
        let limit = Arc::new(Semaphore::new(options.setup_concurrency));
        let mut tasks = JoinSet::new();
        let (conversations, group) = (options.conversations, options.group_size);
        for c in 0..conversations {
            for d in 0..group {
                let (http, base, limit) = (http.clone(), base.to_owned(), Arc::clone(&limit));
                let name = format!("load-{tag}-{c}-{d}");
                tasks.spawn(async move {
                    let _permit = limit.acquire_owned().await;
                    (c * group + d, enrol(http, base, name).await)
                });
            }
        }
        let mut enrolled: Vec<Option<Enrolled>> =
            (0..conversations * group).map(|_| None).collect();
        while let Some(joined) = tasks.join_next().await {
            let (i, device) = joined.context("a setup task failed")?;
            let device = device.context("setting up a device")?;
            if let Some(slot) = enrolled.get_mut(i) {
                *slot = Some(device);
            }
        }
        let mut devices = enrolled.into_iter();
        let per_conversation = match options.pool {
            0 => {
                let rate = options.rate.unwrap_or(1.0);
                let total = rate * (options.warmup + options.duration);
                (total / conversations as f64).ceil() as usize + 1
            }
            n => n,
        };
        let text = Arc::new(text_of(options.payload_bytes));
        let mut encryptions = JoinSet::new();
        // Encryption is CPU work: one blocking task per core at a time.
        let cpu = Arc::new(Semaphore::new(crate::target::cores()));
        let mut members = Vec::with_capacity(conversations);
        for c in 0..conversations {
            let mut group_devices = Vec::with_capacity(group);
            for _ in 0..group {
                let device = devices
                    .next()
                    .flatten()
                    .ok_or_else(|| Error::new("a device was not set up"))?;
                group_devices.push(device);
            }
            let sender = group_devices.remove(0);
            let to: Vec<DeviceAddress> = group_devices.iter().map(|d| d.address.clone()).collect();
            let recipients: Vec<String> = group_devices.into_iter().map(|d| d.token).collect();
            let token = sender.token.clone();
            let text = Arc::clone(&text);
            let permit = Arc::clone(&cpu)
                .acquire_owned()
                .await
                .context("setup was cancelled")?;
            encryptions.spawn_blocking(move || {
                let result = encrypt(&sender, &to, &text, per_conversation);
                drop(permit);
                (c, result)
            });
            members.push(Some((token, recipients)));
        }
        let mut prepared: Vec<Option<Prepared>> = (0..conversations).map(|_| None).collect();
        while let Some(joined) = encryptions.join_next().await {
            let (c, result) = joined.context("an encryption task failed")?;
            if let Some(slot) = prepared.get_mut(c) {
                *slot = Some(result?);
            }
        }
        let mut out = Vec::with_capacity(conversations);
        let mut ciphertext_bytes = 0;
        for (prepared, members) in prepared.into_iter().zip(members) {
            let (prepared, (sender_token, recipients)) = prepared
                .zip(members)
                .ok_or_else(|| Error::new("a conversation was not set up"))?;
            let Prepared {
                id_hex,
                bodies,
                ciphertext_bytes: size,
            } = prepared;
            ciphertext_bytes = size;
            out.push(Conversation {
                url: format!("{base}/v1/conversations/{id_hex}/messages"),
                id_hex,
                sender_token,
                recipients,
                bodies,
            });
        }
        Ok(Self {
            base: base.to_owned(),
            http,
            conversations: out,
            tag,
            setup: started.elapsed(),
            ciphertext_bytes,
        })
    }
}
