//! Password login with OPAQUE (RFC 9807): the server stores a record from which it can
//! neither learn the password nor test guesses offline without also holding its
//! [`ServerSetup`], and a login gives both sides a fresh session key.
//!
//! This module fixes Sotto's OPAQUE configuration and wraps the `opaque-ke` crate (4.x)
//! for both sides. Every message crosses the API as bytes of a fixed length (the `*_LEN`
//! constants); every parser checks that length first.
//!
//! # Configuration
//!
//! | parameter | choice |
//! | --- | --- |
//! | OPRF | ristretto255-SHA512 (RFC 9497) |
//! | key exchange | 3DH over ristretto255 with SHA-512 |
//! | KSF | scrypt, `N = 2^15` ([`KSF_LOG_N`]), `r = 8`, `p = 1` (32 MiB), 64-byte output, fixed salt [`KSF_SALT`] |
//! | client identity | the username (the credential identifier), in registration and login |
//! | server identity | [`SERVER_IDENTITY`] (`"sotto"`) |
//! | context | [`CONTEXT`] (`"sotto opaque v1"`) |
//!
//! ristretto255 with SHA-512 is the first configuration RFC 9807 recommends. It is the one
//! place where Sotto's cryptography does not come from AWS-LC, which has no ristretto255 or
//! OPRF: the group arithmetic is `curve25519-dalek` and the hashes are RustCrypto `sha2`,
//! both reached only through `opaque-ke`. The key-stretching function is scrypt from
//! [`crate::crypto::scrypt`] (AWS-LC), and randomness is AWS-LC's system generator, adapted
//! to the `rand` traits `opaque-ke` expects.
//!
//! The KSF gets no salt from OPAQUE: its input is the OPRF output, which is already unique
//! per user and server. [`KSF_SALT`] only separates this use of scrypt from others. The
//! scrypt cost is paid by the *client* at registration and at every login; the server does
//! a few scalar multiplications per login.
//!
//! # Flow
//!
//! Registration (three messages):
//! 1. client: [`ClientRegistration::start`] → request ([`REGISTRATION_REQUEST_LEN`] bytes)
//! 2. server: [`server_registration_start`] → response ([`REGISTRATION_RESPONSE_LEN`])
//! 3. client: [`ClientRegistration::finish`] → upload ([`REGISTRATION_UPLOAD_LEN`]) and
//!    export key; server: [`PasswordFile::from_upload`] → the record it stores.
//!
//! Login (three messages):
//! 1. client: [`ClientLogin::start`] → request ([`CREDENTIAL_REQUEST_LEN`])
//! 2. server: [`server_login_start`] → response ([`CREDENTIAL_RESPONSE_LEN`]) and a
//!    [`ServerLoginState`] to keep until step 3
//! 3. client: [`ClientLogin::finish`] → finalization ([`CREDENTIAL_FINALIZATION_LEN`]),
//!    session key, export key; server: [`ServerLoginState::finish`] → session key.
//!
//! A wrong password is detected by the client in step 3, which then sends nothing. For a
//! username without a record the server answers from a fake record, so the response looks
//! like a real one and the login fails only at the client.
//!
//! ```
//! use sotto_core::password::*;
//!
//! # fn main() -> Result<(), PasswordError> {
//! let setup = ServerSetup::generate()?;
//!
//! let (state, request) = ClientRegistration::start(b"alice", b"hunter2")?;
//! let response = server_registration_start(&setup, &request, b"alice")?;
//! let (upload, export_key) = state.finish(b"hunter2", &response)?;
//! let record = PasswordFile::from_upload(&upload)?;
//!
//! let (client, request) = ClientLogin::start(b"alice", b"hunter2")?;
//! let (server, response) = server_login_start(&setup, Some(&record), &request, b"alice")?;
//! let (finalization, client_key, login_export_key) = client.finish(b"hunter2", &response)?;
//! let server_key = server.finish(&finalization)?;
//! assert_eq!(client_key.as_bytes(), server_key.as_bytes());
//! assert_eq!(export_key.as_bytes(), login_export_key.as_bytes());
//! # Ok(())
//! # }
//! ```

use core::fmt;

use opaque_ke::errors::{InternalError, ProtocolError};
use opaque_ke::generic_array::{ArrayLength, GenericArray};
use opaque_ke::ksf::Ksf;
use opaque_ke::rand::{CryptoRng, RngCore};
use opaque_ke::{
    ClientLoginFinishParameters, ClientLoginFinishResult, ClientRegistrationFinishParameters,
    ClientRegistrationFinishResult, CredentialFinalization, CredentialRequest, CredentialResponse,
    Identifiers, RegistrationRequest, RegistrationResponse, RegistrationUpload,
    ServerLoginParameters,
};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::crypto;

/// scrypt cost parameter of the KSF: `N = 2^15`.
pub const KSF_LOG_N: u8 = 15;
/// scrypt block size of the KSF (with [`KSF_LOG_N`]: 32 MiB of memory).
pub const KSF_R: u32 = 8;
/// scrypt parallelism of the KSF.
pub const KSF_P: u32 = 1;
/// The fixed scrypt salt of the KSF (domain separation only; see the module docs).
pub const KSF_SALT: &[u8] = b"sotto opaque ksf v1";
/// The server identity bound into every registration and login.
pub const SERVER_IDENTITY: &[u8] = b"sotto";
/// The OPAQUE context string, bound into the key-exchange transcript.
pub const CONTEXT: &[u8] = b"sotto opaque v1";
/// The longest password accepted, in bytes.
pub const MAX_PASSWORD_LEN: usize = 4096;
/// The longest username (credential identifier) accepted, in bytes.
pub const MAX_USERNAME_LEN: usize = u16::MAX as usize;

/// Length of a registration request (the blinded password element).
pub const REGISTRATION_REQUEST_LEN: usize = 32;
/// Length of a registration response (evaluated element, server public key).
pub const REGISTRATION_RESPONSE_LEN: usize = 32 + 32;
/// Length of a registration upload (client public key, masking key, envelope nonce and tag).
pub const REGISTRATION_UPLOAD_LEN: usize = 32 + 64 + 32 + 64;
/// Length of a stored [`PasswordFile`] (the same bytes as the upload).
pub const PASSWORD_FILE_LEN: usize = REGISTRATION_UPLOAD_LEN;
/// Length of a credential request (blinded element, client nonce, client ephemeral key).
pub const CREDENTIAL_REQUEST_LEN: usize = 32 + 32 + 32;
/// Length of a credential response (evaluated element, masking nonce, masked response,
/// server nonce, server ephemeral key, server MAC).
pub const CREDENTIAL_RESPONSE_LEN: usize = 32 + 32 + 128 + 32 + 32 + 64;
/// Length of a credential finalization (the client MAC).
pub const CREDENTIAL_FINALIZATION_LEN: usize = 64;
/// Length of a serialised [`ServerLoginState`] (session key and expected client MAC).
pub const SERVER_LOGIN_STATE_LEN: usize = 64 + 64;
/// Length of a serialised [`ServerSetup`] (OPRF seed, server private key, fake-record key).
pub const SERVER_SETUP_LEN: usize = 64 + 32 + 32;
/// Length of a [`SessionKey`].
pub const SESSION_KEY_LEN: usize = 64;
/// Length of an [`ExportKey`].
pub const EXPORT_KEY_LEN: usize = 64;

/// What went wrong in a registration or login.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// A message or stored value does not have its fixed length.
    #[error("{what}: expected {expected} bytes, got {actual}")]
    WrongLength {
        /// Which message or value.
        what: &'static str,
        /// Its fixed length.
        expected: usize,
        /// The length received.
        actual: usize,
    },
    /// A message or stored value has the right length but does not decode (for example, a
    /// group element that is not on the curve or is the identity).
    #[error("{0}: malformed")]
    Malformed(&'static str),
    /// Authentication failed. At the client: wrong password, no record for this username,
    /// a record registered under another username or server key, or an altered response.
    /// At the server: the finalization does not match (altered, or from another login).
    #[error("authentication failed (wrong password, unknown user or altered message)")]
    AuthenticationFailed,
    /// The server answered with the client's own blinded element: a misbehaving server.
    #[error("the server reflected the client's blinded element")]
    Reflected,
    /// The username is empty or longer than [`MAX_USERNAME_LEN`] bytes.
    #[error("username must be 1 to {MAX_USERNAME_LEN} bytes")]
    InvalidUsername,
    /// The password is longer than [`MAX_PASSWORD_LEN`] bytes.
    #[error("password longer than {MAX_PASSWORD_LEN} bytes")]
    PasswordTooLong,
    /// scrypt failed (out of memory).
    #[error("key stretching (scrypt) failed")]
    KeyStretching,
    /// The system random number generator failed.
    #[error("random number generator failure")]
    Random,
    /// Any other failure inside `opaque-ke`; not expected for any input.
    #[error("internal OPAQUE error")]
    Internal,
}

// ---------------------------------------------------------------------------------------
// Configuration: cipher suite, KSF, random number generator.
// ---------------------------------------------------------------------------------------

struct Suite;

impl opaque_ke::CipherSuite for Suite {
    type OprfCs = opaque_ke::Ristretto255;
    type KeyExchange = opaque_ke::TripleDh<opaque_ke::Ristretto255, sha2::Sha512>;
    type Ksf = ScryptKsf;
}

/// scrypt with Sotto's fixed parameters, through [`crypto::scrypt`].
#[derive(Default)]
struct ScryptKsf;

impl Ksf for ScryptKsf {
    fn hash<L: ArrayLength<u8>>(
        &self,
        mut input: GenericArray<u8, L>,
    ) -> Result<GenericArray<u8, L>, InternalError> {
        let mut out = GenericArray::<u8, L>::default();
        let result = crypto::scrypt(&input, KSF_SALT, KSF_LOG_N, KSF_R, KSF_P, &mut out);
        input.as_mut_slice().zeroize();
        result.map_err(|_| InternalError::KsfError)?;
        Ok(out)
    }
}

/// AWS-LC's system random number generator behind the `rand` traits of `opaque-ke`.
///
/// `RngCore::fill_bytes` cannot fail, so a failure is recorded instead and [`with_rng`]
/// discards whatever was computed and returns [`PasswordError::Random`]. The bytes handed
/// out on failure are a non-zero filler (so that rejection loops for zero scalars end);
/// they never leave this module.
struct SystemRng {
    failed: bool,
}

impl RngCore for SystemRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        if crypto::fill_random(dest).is_err() {
            self.failed = true;
            dest.fill(0x5a);
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), opaque_ke::rand::Error> {
        crypto::fill_random(dest).map_err(|_| {
            self.failed = true;
            opaque_ke::rand::Error::from(core::num::NonZeroU32::MAX)
        })
    }
}

impl CryptoRng for SystemRng {}

/// Runs `f` with a fresh [`SystemRng`]; if the generator failed at any point, the result is
/// dropped (secrets in it are zeroized on drop) and [`PasswordError::Random`] returned.
fn with_rng<T>(
    f: impl FnOnce(&mut SystemRng) -> Result<T, PasswordError>,
) -> Result<T, PasswordError> {
    let mut rng = SystemRng { failed: false };
    let result = f(&mut rng);
    if rng.failed {
        return Err(PasswordError::Random);
    }
    result
}

// ---------------------------------------------------------------------------------------
// Helpers: lengths, error mapping, secret copies.
// ---------------------------------------------------------------------------------------

fn check_len(what: &'static str, bytes: &[u8], expected: usize) -> Result<(), PasswordError> {
    if bytes.len() == expected {
        Ok(())
    } else {
        Err(PasswordError::WrongLength {
            what,
            expected,
            actual: bytes.len(),
        })
    }
}

fn check_username(username: &[u8]) -> Result<(), PasswordError> {
    if username.is_empty() || username.len() > MAX_USERNAME_LEN {
        Err(PasswordError::InvalidUsername)
    } else {
        Ok(())
    }
}

fn check_password(password: &[u8]) -> Result<(), PasswordError> {
    if password.len() > MAX_PASSWORD_LEN {
        Err(PasswordError::PasswordTooLong)
    } else {
        Ok(())
    }
}

/// Checks the length of `bytes`, then decodes them; any decoding error is `Malformed(what)`.
fn decode<T>(
    what: &'static str,
    bytes: &[u8],
    expected: usize,
    parse: impl FnOnce(&[u8]) -> Result<T, ProtocolError>,
) -> Result<T, PasswordError> {
    check_len(what, bytes, expected)?;
    parse(bytes).map_err(|_| PasswordError::Malformed(what))
}

/// Maps an error of a protocol step (not of decoding).
fn protocol_error(error: ProtocolError) -> PasswordError {
    match error {
        ProtocolError::InvalidLoginError => PasswordError::AuthenticationFailed,
        ProtocolError::ReflectedValueError => PasswordError::Reflected,
        ProtocolError::LibraryError(InternalError::KsfError) => PasswordError::KeyStretching,
        _ => PasswordError::Internal,
    }
}

/// Copies a 64-byte output of `opaque-ke` into an array and wipes the original.
fn take_64<L: ArrayLength<u8>>(mut value: GenericArray<u8, L>) -> Result<[u8; 64], PasswordError> {
    let out = <[u8; 64]>::try_from(value.as_slice()).map_err(|_| PasswordError::Internal);
    value.as_mut_slice().zeroize();
    out
}

/// Copies a secret serialisation into a zeroizing vector and wipes the original.
fn secret_vec<L: ArrayLength<u8>>(mut value: GenericArray<u8, L>) -> Zeroizing<Vec<u8>> {
    let out = Zeroizing::new(value.to_vec());
    value.as_mut_slice().zeroize();
    out
}

fn identifiers(username: &[u8]) -> Identifiers<'_> {
    Identifiers {
        client: Some(username),
        server: Some(SERVER_IDENTITY),
    }
}

// ---------------------------------------------------------------------------------------
// Keys handed to the caller.
// ---------------------------------------------------------------------------------------

/// The key both sides share after a successful login. Zeroized on drop; `Debug` is redacted.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SessionKey([u8; SESSION_KEY_LEN]);

impl SessionKey {
    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8; SESSION_KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKey(<redacted>)")
    }
}

/// A key only the client can derive, the same at registration and at every login with the
/// same password; the server never sees it (use it, for example, to encrypt client data
/// stored on the server). Zeroized on drop; `Debug` is redacted.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct ExportKey([u8; EXPORT_KEY_LEN]);

impl ExportKey {
    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8; EXPORT_KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for ExportKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ExportKey(<redacted>)")
    }
}

// ---------------------------------------------------------------------------------------
// Server setup.
// ---------------------------------------------------------------------------------------

/// The server's long-term OPAQUE secret: the OPRF seed, the server's key pair and the key of
/// the fake record used for unknown users. Keep it secret and backed up: with it and a
/// [`PasswordFile`], passwords can be guessed offline; losing it invalidates every stored
/// record. Its secrets are zeroized on drop (by `opaque-ke`'s own types); `Debug` is
/// redacted.
pub struct ServerSetup(opaque_ke::ServerSetup<Suite>);

impl ServerSetup {
    /// Generates a fresh setup from the system random number generator.
    pub fn generate() -> Result<Self, PasswordError> {
        with_rng(|rng| Ok(Self(opaque_ke::ServerSetup::new(rng))))
    }

    /// The serialisation ([`SERVER_SETUP_LEN`] bytes). It is the secret: store it encrypted.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        secret_vec(self.0.serialize())
    }

    /// Loads a setup written by [`ServerSetup::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PasswordError> {
        check_len("server setup", bytes, SERVER_SETUP_LEN)?;
        opaque_ke::ServerSetup::deserialize(bytes)
            .map(Self)
            .map_err(|_| PasswordError::Malformed("server setup"))
    }
}

impl fmt::Debug for ServerSetup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerSetup(<redacted>)")
    }
}

// ---------------------------------------------------------------------------------------
// Registration.
// ---------------------------------------------------------------------------------------

/// The client's state between sending a registration request and receiving the response.
/// Holds the OPRF blind: zeroized on drop; `Debug` is redacted.
pub struct ClientRegistration {
    state: opaque_ke::ClientRegistration<Suite>,
    username: Vec<u8>,
}

impl ClientRegistration {
    /// Starts registering `password` for `username` (the credential identifier the server
    /// will use, bound into the record as the client identity). Returns the state to keep
    /// and the request to send ([`REGISTRATION_REQUEST_LEN`] bytes).
    pub fn start(username: &[u8], password: &[u8]) -> Result<(Self, Vec<u8>), PasswordError> {
        check_username(username)?;
        check_password(password)?;
        with_rng(|rng| {
            let started = opaque_ke::ClientRegistration::<Suite>::start(rng, password)
                .map_err(protocol_error)?;
            let state = Self {
                state: started.state,
                username: username.to_vec(),
            };
            Ok((state, started.message.serialize().to_vec()))
        })
    }

    /// Finishes with the server's `response`: runs scrypt once and returns the upload to
    /// send ([`REGISTRATION_UPLOAD_LEN`] bytes) and the export key. `password` must be the
    /// one given to [`ClientRegistration::start`].
    pub fn finish(
        self,
        password: &[u8],
        response: &[u8],
    ) -> Result<(Vec<u8>, ExportKey), PasswordError> {
        check_password(password)?;
        let response = decode(
            "registration response",
            response,
            REGISTRATION_RESPONSE_LEN,
            RegistrationResponse::<Suite>::deserialize,
        )?;
        let params = ClientRegistrationFinishParameters::new(identifiers(&self.username), None);
        with_rng(|rng| {
            let ClientRegistrationFinishResult {
                message,
                export_key,
                ..
            } = self
                .state
                .finish(rng, password, response, params)
                .map_err(protocol_error)?;
            let export_key = ExportKey(take_64(export_key)?);
            Ok((message.serialize().to_vec(), export_key))
        })
    }
}

impl fmt::Debug for ClientRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientRegistration(<redacted>)")
    }
}

/// The server's answer to a registration `request` for the user `credential_identifier`
/// (the username bytes). Returns the response to send ([`REGISTRATION_RESPONSE_LEN`]
/// bytes). The server keeps no state between this and [`PasswordFile::from_upload`]; it
/// must itself make sure that only the account's owner can register (or replace) the
/// record stored under that username.
pub fn server_registration_start(
    setup: &ServerSetup,
    request: &[u8],
    credential_identifier: &[u8],
) -> Result<Vec<u8>, PasswordError> {
    check_username(credential_identifier)?;
    let request = decode(
        "registration request",
        request,
        REGISTRATION_REQUEST_LEN,
        RegistrationRequest::<Suite>::deserialize,
    )?;
    let started =
        opaque_ke::ServerRegistration::<Suite>::start(&setup.0, request, credential_identifier)
            .map_err(protocol_error)?;
    Ok(started.message.serialize().to_vec())
}

/// The record the server stores for a user: the client's public key, the masking key and
/// the envelope. It does not contain the password, but with the [`ServerSetup`] it allows
/// offline guessing (each guess costing one scrypt), so keep it confidential. Zeroized on
/// drop; `Debug` is redacted.
pub struct PasswordFile(opaque_ke::ServerRegistration<Suite>);

impl PasswordFile {
    /// The record from the client's registration upload ([`REGISTRATION_UPLOAD_LEN`]
    /// bytes). Store it under the same credential identifier given to
    /// [`server_registration_start`].
    pub fn from_upload(upload: &[u8]) -> Result<Self, PasswordError> {
        let upload = decode(
            "registration upload",
            upload,
            REGISTRATION_UPLOAD_LEN,
            RegistrationUpload::<Suite>::deserialize,
        )?;
        Ok(Self(opaque_ke::ServerRegistration::finish(upload)))
    }

    /// The stored form ([`PASSWORD_FILE_LEN`] bytes).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        secret_vec(self.0.serialize())
    }

    /// Loads a record written by [`PasswordFile::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PasswordError> {
        decode(
            "password file",
            bytes,
            PASSWORD_FILE_LEN,
            opaque_ke::ServerRegistration::<Suite>::deserialize,
        )
        .map(Self)
    }
}

impl fmt::Debug for PasswordFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordFile(<redacted>)")
    }
}

// ---------------------------------------------------------------------------------------
// Login.
// ---------------------------------------------------------------------------------------

/// The client's state between sending a credential request and receiving the response.
/// Holds the OPRF blind and the ephemeral key: zeroized on drop; `Debug` is redacted.
pub struct ClientLogin {
    state: opaque_ke::ClientLogin<Suite>,
    username: Vec<u8>,
}

impl ClientLogin {
    /// Starts a login as `username` with `password`. Returns the state to keep and the
    /// request to send ([`CREDENTIAL_REQUEST_LEN`] bytes) along with the username.
    pub fn start(username: &[u8], password: &[u8]) -> Result<(Self, Vec<u8>), PasswordError> {
        check_username(username)?;
        check_password(password)?;
        with_rng(|rng| {
            let started =
                opaque_ke::ClientLogin::<Suite>::start(rng, password).map_err(protocol_error)?;
            let state = Self {
                state: started.state,
                username: username.to_vec(),
            };
            Ok((state, started.message.serialize().to_vec()))
        })
    }

    /// Finishes with the server's `response`: runs scrypt once, authenticates the server
    /// and returns the finalization to send ([`CREDENTIAL_FINALIZATION_LEN`] bytes), the
    /// session key and the export key. A wrong password (or unknown user) gives
    /// [`PasswordError::AuthenticationFailed`], and then nothing is to be sent.
    pub fn finish(
        self,
        password: &[u8],
        response: &[u8],
    ) -> Result<(Vec<u8>, SessionKey, ExportKey), PasswordError> {
        check_password(password)?;
        let response = decode(
            "credential response",
            response,
            CREDENTIAL_RESPONSE_LEN,
            CredentialResponse::<Suite>::deserialize,
        )?;
        let params =
            ClientLoginFinishParameters::new(Some(CONTEXT), identifiers(&self.username), None);
        with_rng(|rng| {
            let ClientLoginFinishResult {
                message,
                session_key,
                export_key,
                ..
            } = self
                .state
                .finish(rng, password, response, params)
                .map_err(protocol_error)?;
            let session_key = SessionKey(take_64(session_key)?);
            let export_key = ExportKey(take_64(export_key)?);
            Ok((message.serialize().to_vec(), session_key, export_key))
        })
    }
}

impl fmt::Debug for ClientLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientLogin(<redacted>)")
    }
}

/// The server's answer to a credential `request` from the user `credential_identifier`
/// (the username bytes), with the user's record, or `None` if there is none: then a fake
/// record derived from the setup is used, so that the response has the same length and
/// look as a real one and the login fails at the client. Returns the state to keep until
/// the finalization arrives and the response to send ([`CREDENTIAL_RESPONSE_LEN`] bytes).
///
/// Each call lets the client test one password guess (online), and the server cannot tell
/// a wrong password from an abandoned login: rate-limit calls per username.
pub fn server_login_start(
    setup: &ServerSetup,
    password_file: Option<&PasswordFile>,
    request: &[u8],
    credential_identifier: &[u8],
) -> Result<(ServerLoginState, Vec<u8>), PasswordError> {
    check_username(credential_identifier)?;
    let request = decode(
        "credential request",
        request,
        CREDENTIAL_REQUEST_LEN,
        CredentialRequest::<Suite>::deserialize,
    )?;
    let params = ServerLoginParameters {
        context: Some(CONTEXT),
        identifiers: identifiers(credential_identifier),
    };
    with_rng(|rng| {
        let started = opaque_ke::ServerLogin::start(
            rng,
            &setup.0,
            password_file.map(|file| file.0.clone()),
            request,
            credential_identifier,
            params,
        )
        .map_err(protocol_error)?;
        Ok((
            ServerLoginState(started.state),
            started.message.serialize().to_vec(),
        ))
    })
}

/// The server's state between sending the credential response and receiving the
/// finalization. It contains the session key: keep it on the server (in memory, or stored
/// encrypted), never hand it to the client, give it a short lifetime, and delete it as soon
/// as a finalization arrives, whether [`ServerLoginState::finish`] succeeds or not, so that
/// one login yields at most one session. Zeroized on drop; `Debug` is redacted.
pub struct ServerLoginState(opaque_ke::ServerLogin<Suite>);

impl ServerLoginState {
    /// Checks the client's `finalization` and returns the session key, or
    /// [`PasswordError::AuthenticationFailed`].
    pub fn finish(self, finalization: &[u8]) -> Result<SessionKey, PasswordError> {
        let finalization = decode(
            "credential finalization",
            finalization,
            CREDENTIAL_FINALIZATION_LEN,
            CredentialFinalization::<Suite>::deserialize,
        )?;
        // 3DH ignores the identifiers here (they are already in the expected MAC); the
        // context must still be the one used in `server_login_start`.
        let params = ServerLoginParameters {
            context: Some(CONTEXT),
            identifiers: Identifiers::default(),
        };
        let finished = self
            .0
            .finish(finalization, params)
            .map_err(protocol_error)?;
        Ok(SessionKey(take_64(finished.session_key)?))
    }

    /// The serialisation ([`SERVER_LOGIN_STATE_LEN`] bytes). Secret: see the type's docs.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        secret_vec(self.0.serialize())
    }

    /// Loads a state written by [`ServerLoginState::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PasswordError> {
        decode(
            "server login state",
            bytes,
            SERVER_LOGIN_STATE_LEN,
            opaque_ke::ServerLogin::<Suite>::deserialize,
        )
        .map(Self)
    }
}

impl fmt::Debug for ServerLoginState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerLoginState(<redacted>)")
    }
}

#[cfg(test)]
mod tests;
