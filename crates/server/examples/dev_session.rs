//! Development aid: registers a fresh throw-away user with one device on a running server,
//! logs the device in, and prints the session token — for trying the API by hand or
//! fuzzing it with the OpenAPI document (see docs/development.md).
//!
//! ```sh
//! cargo run -p sotto-server --example dev_session -- http://127.0.0.1:8480
//! ```

use sotto_api::{
    Bytes, Challenge, ChallengeRequest, RegisterAccount, RegisterDevice, Session, SessionRequest,
};
use sotto_core::auth::sign_challenge;
use sotto_core::device::NewDevice;
use sotto_core::identity::{UserId, UserRootKey};

type Error = Box<dyn std::error::Error>;

/// Posts `body` as JSON and parses the answer, which must be a success.
async fn post<B: serde::Serialize, R: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: String,
    body: &B,
) -> Result<R, Error> {
    let response = http.post(&url).json(body).send().await?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("{url}: {status}: {}", response.text().await?).into());
    }
    Ok(response.json().await?)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let base = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:8480".to_owned());
    let base = base.trim_end_matches('/');
    // reqwest has no built-in TLS provider here; AWS-LC is the process-wide one.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let http = reqwest::Client::new();

    let suffix: String = sotto_core::crypto::random_array::<6>()?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let user = UserId::new(&format!("dev-{suffix}"))?;
    let root = UserRootKey::generate(user.clone())?;
    let _: sotto_api::Account = post(
        &http,
        format!("{base}/v1/accounts"),
        &RegisterAccount {
            username: user.to_string(),
            root_public_key: Bytes(root.public_key().as_bytes().to_vec()),
        },
    )
    .await?;

    let device = NewDevice::generate(&root, 1)?;
    let _: sotto_api::DeviceInfo = post(
        &http,
        format!("{base}/v1/accounts/{user}/devices"),
        &RegisterDevice {
            certificate: Bytes(device.certificate.to_bytes()?),
        },
    )
    .await?;

    let who = device.certificate.verify()?;
    let device_id = who.device_id.to_hex();
    let challenge: Challenge = post(
        &http,
        format!("{base}/v1/auth/challenge"),
        &ChallengeRequest {
            username: user.to_string(),
            device_id: device_id.clone(),
        },
    )
    .await?;
    let bytes: &[u8; 32] = challenge
        .challenge
        .0
        .as_slice()
        .try_into()
        .map_err(|_| "the server's challenge is not 32 bytes")?;
    let signature = sign_challenge(&device.secret, bytes, &who.user, &who.device_id)?;
    let session: Session = post(
        &http,
        format!("{base}/v1/auth/session"),
        &SessionRequest {
            username: user.to_string(),
            device_id,
            challenge: challenge.challenge,
            signature: Bytes(signature),
        },
    )
    .await?;
    println!("{}", session.token);
    Ok(())
}
