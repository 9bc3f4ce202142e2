//! Setting up the run: accounts, devices, sessions, conversations and their ciphertexts.

use std::collections::HashMap;
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
    /// `POST` URL of the conversation's messages.
    pub url: String,
    /// The sending device's session token.
    pub sender_token: String,
    /// How many devices receive each message.
    pub recipients: usize,
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

/// A device that holds a WebSocket: it receives the messages of one or more
/// conversations.
pub(crate) struct Receiver {
    /// The device's session token.
    pub token: String,
    /// The conversations it receives: index in [`World::conversations`], by lower-case
    /// hex id (what frames carry).
    pub conversations: HashMap<String, usize>,
}

/// Everything set up for the run.
pub(crate) struct World {
    /// The server's base URL.
    pub base: String,
    /// The HTTP client of every device.
    pub http: reqwest::Client,
    /// The conversations.
    pub conversations: Vec<Conversation>,
    /// The devices that receive, each on a WebSocket of its own.
    pub receivers: Vec<Receiver>,
    /// Devices enrolled (senders and receivers; a device may be both).
    pub devices: usize,
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

/// Who sends and who receives in which conversation.
struct Layout {
    conversations: usize,
    group: usize,
    /// Every device sends in one conversation and receives in `group - 1` others.
    ring: bool,
}

impl Layout {
    /// Devices to enrol.
    fn devices(&self) -> usize {
        if self.ring {
            self.conversations
        } else {
            self.conversations * self.group
        }
    }

    /// Conversation `c`'s sending device and its receiving devices (indexes of devices).
    fn members(&self, c: usize) -> (usize, Vec<usize>) {
        if self.ring {
            let n = self.conversations.max(1);
            (c, (1..self.group).map(|k| (c + k) % n).collect())
        } else {
            let first = c * self.group;
            (first, (1..self.group).map(|k| first + k).collect())
        }
    }
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
        let layout = Layout {
            conversations,
            group,
            ring: options.ring,
        };
        let devices = layout.devices();
        for i in 0..devices {
            let (http, base, limit) = (http.clone(), base.to_owned(), Arc::clone(&limit));
            let name = format!("load-{tag}-{i}");
            tasks.spawn(async move {
                let _permit = limit.acquire_owned().await;
                (i, enrol(http, base, name).await)
            });
        }
        let mut enrolled: Vec<Option<Enrolled>> = (0..devices).map(|_| None).collect();
        while let Some(joined) = tasks.join_next().await {
            let (i, device) = joined.context("a setup task failed")?;
            let device = device.context("setting up a device")?;
            if let Some(slot) = enrolled.get_mut(i) {
                *slot = Some(device);
            }
        }
        if enrolled.iter().any(Option::is_none) {
            return Err(Error::new("a device was not set up"));
        }
        let addresses: Vec<DeviceAddress> = enrolled
            .iter()
            .flatten()
            .map(|d| d.address.clone())
            .collect();
        let tokens: Vec<String> = enrolled.iter().flatten().map(|d| d.token.clone()).collect();
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
        let mut sender_tokens = Vec::with_capacity(conversations);
        for c in 0..conversations {
            let (s, recipients) = layout.members(c);
            let sender = enrolled
                .get_mut(s)
                .and_then(Option::take)
                .ok_or_else(|| Error::new("a sending device was not set up"))?;
            let to = recipients
                .iter()
                .map(|&r| addresses.get(r).cloned())
                .collect::<Option<Vec<DeviceAddress>>>()
                .ok_or_else(|| Error::new("a receiving device was not set up"))?;
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
            sender_tokens.push(tokens.get(s).cloned().unwrap_or_default());
        }
        let mut prepared: Vec<Option<Prepared>> = (0..conversations).map(|_| None).collect();
        while let Some(joined) = encryptions.join_next().await {
            let (c, result) = joined.context("an encryption task failed")?;
            if let Some(slot) = prepared.get_mut(c) {
                *slot = Some(result?);
            }
        }
        let mut out = Vec::with_capacity(conversations);
        let mut receivers: Vec<Receiver> = Vec::new();
        // Receiver index of each device that receives anything.
        let mut receiver_of: Vec<Option<usize>> = vec![None; devices];
        let mut ciphertext_bytes = 0;
        for (c, (prepared, sender_token)) in prepared.into_iter().zip(sender_tokens).enumerate() {
            let Prepared {
                id_hex,
                bodies,
                ciphertext_bytes: size,
            } = prepared.ok_or_else(|| Error::new("a conversation was not set up"))?;
            ciphertext_bytes = size;
            let (_, recipients) = layout.members(c);
            for &r in &recipients {
                let slot = receiver_of
                    .get_mut(r)
                    .ok_or_else(|| Error::new("a receiving device was not set up"))?;
                let index = *slot.get_or_insert_with(|| {
                    receivers.push(Receiver {
                        token: tokens.get(r).cloned().unwrap_or_default(),
                        conversations: HashMap::new(),
                    });
                    receivers.len() - 1
                });
                if let Some(receiver) = receivers.get_mut(index) {
                    receiver.conversations.insert(id_hex.clone(), c);
                }
            }
            out.push(Conversation {
                url: format!("{base}/v1/conversations/{id_hex}/messages"),
                sender_token,
                recipients: recipients.len(),
                bodies,
            });
        }
        Ok(Self {
            base: base.to_owned(),
            http,
            conversations: out,
            receivers,
            devices,
            tag,
            setup: started.elapsed(),
            ciphertext_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ring_uses_each_device_once_as_sender_and_group_minus_one_times_as_recipient() {
        let ring = Layout {
            conversations: 5,
            group: 3,
            ring: true,
        };
        assert_eq!(ring.devices(), 5);
        assert_eq!(ring.members(0), (0, vec![1, 2]));
        assert_eq!(ring.members(4), (4, vec![0, 1]));
        let mut received = vec![0; 5];
        for c in 0..5 {
            for r in ring.members(c).1 {
                received[r] += 1;
            }
        }
        assert_eq!(received, vec![2; 5]);
        let separate = Layout {
            conversations: 2,
            group: 3,
            ring: false,
        };
        assert_eq!(separate.devices(), 6);
        assert_eq!(separate.members(1), (3, vec![4, 5]));
    }
}
