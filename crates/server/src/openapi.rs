//! The OpenAPI 3.1 document of the HTTP API, served at `GET /openapi.json`.
//!
//! The schemas are the wire types of `sotto-api` (its `openapi` feature derives
//! `utoipa::ToSchema` from the very types the handlers parse and answer with, serde
//! attributes included), so a field cannot change without the document changing too. The
//! operations — method, path, parameters, request body, every status a handler can answer
//! and its security scheme — are described here, one documentation-only function per
//! operation in `operations`, so that the handler modules stay free of annotations.
//!
//! The document cannot drift from the router unnoticed: `tests/openapi.rs` starts a server,
//! sends a request for every documented operation (each must reach a handler, not the "no
//! such route" fallback, and be answered with a status the document lists), and enumerates
//! the router's paths and each path's methods to check that every route is documented.

use std::sync::LazyLock;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use sotto_api::ErrorCode;
use utoipa::openapi::info::LicenseBuilder;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

use crate::http::Failure;

/// Path the document is served at.
pub const PATH: &str = "/openapi.json";

/// Name of the security scheme of session tokens (`Authorization: Bearer <token>`).
pub const SESSION_SCHEME: &str = "session";
/// Name of the security scheme of attachment capabilities
/// (`Authorization: Capability <token>`).
pub const CAPABILITY_SCHEME: &str = "capability";

/// The OpenAPI document as utoipa derives it; [`document`] is what is served.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sotto",
        version = env!("CARGO_PKG_VERSION"),
        description = "The HTTP API of a Sotto server: accounts and devices, device login, \
            KeyPackages, delivery of end-to-end encrypted MLS messages (over HTTP and a \
            WebSocket), contact discovery and encrypted attachments. The server sees only \
            public keys, certificates and ciphertext.\n\n\
            Binary fields are standard, padded base64 (`Bytes`). Every error is a 4xx or \
            5xx answer with an `ApiError` body, `{\"error\", \"message\"}`; a path that is \
            not routed is answered 404 `{\"error\":\"not_found\",\"message\":\"no such route\"}`, \
            and a method a path does not have 405 with an `Allow` header. JSON bodies are \
            limited to 64 KiB unless an operation says otherwise.\n\n\
            The live-delivery WebSocket (`GET /v1/ws`) carries JSON text frames: \
            `ClientFrame` from the client, `ServerFrame` from the server (see the schemas)."
    ),
    servers((url = "/", description = "This server")),
    paths(
        operations::health,
        operations::metrics,
        operations::openapi,
        operations::register_account,
        operations::account,
        operations::register_device,
        operations::revoke_device,
        operations::challenge,
        operations::session,
        operations::me,
        operations::upload_key_packages,
        operations::key_package_pool,
        operations::claim_key_packages,
        operations::send_message,
        operations::inbox,
        operations::ack,
        operations::live,
        operations::discovery_salt,
        operations::publish_contacts,
        operations::lookup_contacts,
        operations::upload_attachment,
        operations::download_attachment,
        operations::delete_attachment,
        operations::password_register_start,
        operations::password_register_finish,
        operations::put_backup,
        operations::password_login_start,
        operations::password_login_finish,
    ),
    components(schemas(sotto_api::ClientFrame, sotto_api::ServerFrame, sotto_api::ErrorCode)),
    modifiers(&Additions),
    tags(
        (name = "operations", description = "Health, metrics and this document"),
        (name = "accounts", description = "Accounts, their root keys and device certificates"),
        (name = "auth", description = "Device login: challenge, signed answer, session token"),
        (name = "key-packages", description = "The KeyPackage pool of each device"),
        (name = "delivery", description = "Sending MLS messages, the inbox, live delivery"),
        (name = "discovery", description = "Opt-in contact discovery by salted hashes"),
        (name = "attachments", description = "Encrypted blobs fetched by capability"),
        (name = "passwords", description = "OPAQUE password login and the sealed root-key backup"),
    )
)]
pub struct ApiDoc;

/// What the derive cannot say: the security schemes and the licence's SPDX identifier.
struct Additions;

impl Modify for Additions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let license = env!("CARGO_PKG_LICENSE");
        openapi.info.license = Some(
            LicenseBuilder::new()
                .name(license)
                .identifier(Some(license))
                .build(),
        );
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            SESSION_SCHEME,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "`Authorization: Bearer <token>` with the token of `POST \
                         /v1/auth/session` (base64url without padding; valid 24 hours).",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            CAPABILITY_SCHEME,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "`Authorization: Capability <token>` with the token `POST /v1/attachments` \
                 answered (base64url without padding). The whole header value, scheme \
                 word included, is the key.",
            ))),
        );
    }
}

/// The document, as served.
///
/// utoipa names the formats of unsigned integers `u-int32` and `u-int64` (its kebab-case
/// spelling of `UInt32`); they are renamed to the registered formats `uint32` and `uint64`
/// here. (Without unsigned formats, `u32` and `u64` would be described as the signed `int32`
/// and `int64`, whose maxima the server exceeds.)
pub fn document() -> Result<serde_json::Value, serde_json::Error> {
    let mut json = serde_json::to_value(ApiDoc::openapi())?;
    registered_formats(&mut json);
    Ok(json)
}

/// Renames every `"format": "u-intN"` in `value` to `"uintN"`.
fn registered_formats(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                match v {
                    serde_json::Value::String(format) if key == "format" => {
                        if let Some(bits) = format.strip_prefix("u-int") {
                            *format = format!("uint{bits}");
                        }
                    }
                    other => registered_formats(other),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(registered_formats),
        _ => {}
    }
}

/// The document as JSON, made once.
static JSON: LazyLock<Option<String>> =
    LazyLock::new(|| document().and_then(|d| serde_json::to_string(&d)).ok());

/// `GET /openapi.json`.
pub async fn serve() -> Response {
    match JSON.as_deref() {
        Some(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        None => Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "the API document could not be serialised",
        )
        .into_response(),
    }
}

/// An opaque binary body (an encrypted attachment).
struct Blob;

impl PartialSchema for Blob {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .content_media_type("application/octet-stream")
            .description(Some("Raw bytes: ciphertext the client encrypted."))
            .into()
    }
}

impl ToSchema for Blob {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("Blob")
    }
}

/// An OpenAPI document, as JSON (this one).
struct OpenApiDocument;

impl PartialSchema for OpenApiDocument {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some("An OpenAPI 3.1 document."))
            .into()
    }
}

impl ToSchema for OpenApiDocument {}

/// The operations, one documentation-only function each: its doc comment is the summary
/// and description, its attribute the rest. Nothing calls them.
#[allow(dead_code)]
mod operations {
    use sotto_api::*;

    use super::{Blob, OpenApiDocument};

    /// Whether the server and its database answer.
    #[utoipa::path(
        get,
        path = "/healthz",
        operation_id = "health",
        tag = "operations",
        responses(
            (status = 200, description = "`{\"status\":\"ok\"}`", body = Health),
            (status = 500, description = "The database does not answer", body = ApiError),
        )
    )]
    fn health() {}

    /// Prometheus metrics.
    ///
    /// Requests by route template, method and status, latency, messages accepted, rows
    /// swept and open WebSocket connections, in the OpenMetrics text format. Labels never
    /// name a user, a device, a conversation or a client.
    #[utoipa::path(
        get,
        path = "/metrics",
        operation_id = "metrics",
        tag = "operations",
        responses(
            (status = 200, description = "The metrics", body = String,
                content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8"),
            (status = 500, description = "The metrics could not be encoded (no body)"),
        )
    )]
    fn metrics() {}

    /// This document.
    #[utoipa::path(
        get,
        path = "/openapi.json",
        operation_id = "openapi",
        tag = "operations",
        responses(
            (status = 200, description = "The OpenAPI 3.1 document of this API", body = OpenApiDocument),
            (status = 500, description = "The document could not be serialised", body = ApiError),
        )
    )]
    fn openapi() {}

    /// Register a user id with the user's root public key.
    ///
    /// The key is an uncompressed P-521 point; the user id is lower-case letters, digits,
    /// `.`, `_` and `-`, starting with a letter or digit, at most 64 characters.
    #[utoipa::path(
        post,
        path = "/v1/accounts",
        operation_id = "register_account",
        tag = "accounts",
        request_body = RegisterAccount,
        responses(
            (status = 201, description = "Registered", body = Account),
            (status = 400, description = "Malformed body, invalid user id or key", body = ApiError),
            (status = 409, description = "The user id is taken", body = ApiError),
            (status = 413, description = "Body over 64 KiB", body = ApiError),
            (status = 500, description = "Storage failure", body = ApiError),
        )
    )]
    fn register_account() {}

    /// An account's root public key and published device certificates.
    #[utoipa::path(
        get,
        path = "/v1/accounts/{username}",
        operation_id = "account",
        tag = "accounts",
        params(
            ("username" = String, Path, description = "The user id",
                pattern = "^[a-z0-9][a-z0-9._-]{0,63}$"),
        ),
        responses(
            (status = 200, description = "The account", body = Account),
            (status = 400, description = "Invalid user id", body = ApiError),
            (status = 404, description = "No such account", body = ApiError),
            (status = 500, description = "Storage failure", body = ApiError),
        )
    )]
    fn account() {}

    /// Publish a device certificate.
    ///
    /// Accepted only if it verifies under the account's root key, so only the holder of
    /// that key can add a device; publishing the same certificate again changes nothing.
    #[utoipa::path(
        post,
        path = "/v1/accounts/{username}/devices",
        operation_id = "register_device",
        tag = "accounts",
        params(
            ("username" = String, Path, description = "The user id",
                pattern = "^[a-z0-9][a-z0-9._-]{0,63}$"),
        ),
        request_body = RegisterDevice,
        responses(
            (status = 201, description = "Published", body = DeviceInfo),
            (status = 200, description = "The same certificate was published before", body = DeviceInfo),
            (status = 400, description = "Malformed body, invalid user id, or a certificate \
                that does not verify under the account's root key", body = ApiError),
            (status = 404, description = "No such account", body = ApiError),
            (status = 409, description = "Another certificate has this device id, or the \
                device id was revoked", body = ApiError),
            (status = 413, description = "Body over 64 KiB", body = ApiError),
            (status = 500, description = "Storage failure", body = ApiError),
        )
    )]
    fn register_device() {}

    /// Revoke a device.
    ///
    /// Allowed with a session of any device of the same user, or without one with
    /// `root_signature`, the root key's signature over
    /// `sotto_core::identity::revocation_message`. The device's sessions, KeyPackages and
    /// mail are deleted, its live connections closed, and its id can never be registered
    /// again. The body is required (`{}` when a session authorises the request).
    #[utoipa::path(
        post,
        path = "/v1/accounts/{username}/devices/{device_id}/revoke",
        operation_id = "revoke_device",
        tag = "accounts",
        params(
            ("username" = String, Path, description = "The user id",
                pattern = "^[a-z0-9][a-z0-9._-]{0,63}$"),
            ("device_id" = String, Path, description = "The device id, 32 lower-case hex digits",
                pattern = "^[0-9a-f]{32}$"),
        ),
        request_body = RevokeDevice,
        security(("session" = []), ()),
        responses(
            (status = 204, description = "Revoked"),
            (status = 400, description = "Malformed body, user id or device id", body = ApiError),
            (status = 401, description = "Neither a session of the user's devices nor a \
                valid root signature", body = ApiError),
            (status = 404, description = "No such account or device", body = ApiError),
            (status = 413, description = "Body over 64 KiB", body = ApiError),
            (status = 500, description = "Storage failure", body = ApiError),
        )
    )]
    fn revoke_device() {}

    /// Ask for a challenge to sign with a device's key.
    ///
    /// 32 random bytes, valid 60 seconds, usable once.
    #[utoipa::path(
        post,
        path = "/v1/auth/challenge",
        operation_id = "challenge",
        tag = "auth",
        request_body = ChallengeRequest,
        responses(
            (status = 200, description = "A fresh challenge", body = Challenge),
            (status = 400, description = "Malformed body, user id or device id", body = ApiError),
            (status = 404, description = "No such device", body = ApiError),
            (status = 413, description = "Body over 64 KiB", body = ApiError),
            (status = 500, description = "Storage failure", body = ApiError),
        )
    )]
    fn challenge() {}

    /// Answer a challenge and receive a session token.
    ///
    /// The signature is the device's MLS signature key over
    /// `sotto_core::auth::auth_message`. Sessions last 24 hours.
    #[utoipa::path(
        post,
        path = "/v1/auth/session",
        operation_id = "session",
        tag = "auth",
        request_body = SessionRequest,
        responses(
            (status = 201, description = "Logged in", body = Session),
            (status = 400, description = "Malformed body, user id, device id or challenge", body = ApiError),
            (status = 401, description = "Unknown, used or expired challenge, unknown device, \
                or a signature that does not answer the challenge", body = ApiError),
            (status = 413, description = "Body over 64 KiB", body = ApiError),
            (status = 500, description = "Storage failure", body = ApiError),
        )
    )]
    fn session() {}

    /// Who the session belongs to.
    #[utoipa::path(
        get,
        path = "/v1/me",
        operation_id = "me",
        tag = "auth",
        security(("session" = [])),
        responses(
            (status = 200, description = "The session's user and device", body = Me),
            (status = 401, description = "No valid session", body = ApiError),
            (status = 500, description = "Storage failure", body = ApiError),
        )
    )]
    fn me() {}

    /// Publish one-time KeyPackages of the session's device, and optionally replace its
    /// last-resort KeyPackage.
    ///
    /// At most 100 per upload and 200 on file per device; each is validated as an MLS add
    /// would and must be of the session's device. The body may be up to 1 MiB.
    #[utoipa::path(
        post,
        path = "/v1/key-packages",
        operation_id = "upload_key_packages",
        tag = "key-packages",
        request_body = UploadKeyPackages,
        security(("session" = [])),
        responses(
            (status = 200, description = "Stored; the pool's status", body = KeyPackagePool),
            (status = 400, description = "Malformed body, a KeyPackage refused, or too many", body = ApiError),
            (status = 401, description = "No valid session", body = ApiError),
            (status = 404, description = "The session's account is gone", body = ApiError),
            (status = 413, description = "Body over 1 MiB", body = ApiError),
            (status = 500, description = "Storage failure", body = ApiError),
        )
    )]
    fn upload_key_packages() {}

    /// The session device's KeyPackage pool.
    ///
    /// Reading it clears the last-resort notice.
    #[utoipa::path(
        get,
        path = "/v1/key-packages",
        operation_id = "key_package_pool",
        tag = "key-packages",
        security(("session" = [])),
        responses(
            (status = 200, description = "The pool's status", body = KeyPackagePool),
            (status = 401, description = "No valid session", body = ApiError),
            (status = 500, description = "Storage failure", body = ApiError),
        )
    )]
    fn key_package_pool() {}

    /// Claim one KeyPackage per device of a user.
    ///
    /// A one-time KeyPackage, deleted as it is served, else the device's last-resort one.
    /// At most 30 claims per requester and target user per hour. No body.
    #[utoipa::path(
        post,
        path = "/v1/accounts/{username}/key-packages/claim",
        operation_id = "claim_key_packages",
        tag = "key-packages",
        params(
            ("username" = String, Path, description = "The target user id",
                pattern = "^[a-z0-9][a-z0-9._-]{0,63}$"),
        ),
        security(("session" = [])),
        responses(
            (status = 200, description = "The KeyPackages, by device id", body = ClaimedKeyPackages),
            (status = 400, description = "Invalid user id", body = ApiError),
            (status = 401, description = "No valid session", body = ApiError),
            (status = 404, description = "No such account", body = ApiError),
            (status = 429, description = "Too many claims for this user this hour", body = ApiError),
            (status = 500, description = "Storage failure", body = ApiError),
        )
    )]
    fn claim_key_packages() {}

    /// Send an MLS message of a conversation to the listed devices.
    ///
    /// The server reads the message's kind and epoch from its MLS header. Only a member
    /// device may post; a commit is accepted only for the conversation's current epoch.
    /// Sending the same message id again is harmless (200, `duplicate`). The body may be
    /// up to 8 MiB.
    #[utoipa::path(
        post,
        path = "/v1/conversations/{conversation}/messages",
        operation_id = "send_message",
        tag = "delivery",
        params(
            ("conversation" = String, Path,
                description = "The conversation (MLS group id), 2 to 128 lower-case hex digits",
                pattern = "^(?:[0-9a-f]{2}){1,64}$"),
        ),
        request_body = SendMessage,
        security(("session" = [])),
        responses(
            (status = 201, description = "Accepted", body = Sent),
            (status = 200, description = "This message id was accepted before", body = Sent),
            (status = 400, description = "Malformed body or ids, not an encrypted MLS message \
                of this conversation, unknown recipients, or too many", body = ApiError),
            (status = 401, description = "No valid session", body = ApiError),
            (status = 403, description = "The session's device is not a member of the \
                conversation", body = ApiError),
            (status = 409, description = "A commit for another than the current epoch: fetch, \
                process, retry", body = ApiError),
            (status = 413, description = "Body over 8 MiB", body = ApiError),
            (status = 500, description = "Storage failure", body = ApiError),
        )
    )]
    fn send_message() {}

    /// Undelivered messages of the session's device, in mailbox order.
    #[utoipa::path(
        get,
        path = "/v1/inbox",
        operation_id = "inbox",
        tag = "delivery",
        params(
            ("after" = Option<u64>, Query,
                description = "Return messages after this cursor (default 0: from the start)"),
            ("limit" = Option<u32>, Query,
                description = "At most this many messages (default and most 500; 0 counts as 1)"),
        ),
        security(("session" = [])),
        responses(
            (status = 200, description = "The messages", body = Inbox),
            (status = 400, description = "Malformed query", body = ApiError),
            (status = 401, description = "No valid session", body = ApiError),
            (status = 500, description = "Storage failure", body = ApiError),
        )
    )]
    fn inbox() {}

    /// Acknowledge processed messages (at most 500 cursors).
    ///
    /// A message's ciphertext is deleted once every recipient device acknowledged it.
    #[utoipa::path(
        post,
        path = "/v1/inbox/ack",
        operation_id = "ack",
        tag = "delivery",
        request_body = Ack,
        security(("session" = [])),
        responses(
            (status = 204, description = "Acknowledged"),
            (status = 400, description = "Malformed body, or too many cursors", body = ApiError),
            (status = 401, description = "No valid session", body = ApiError),
            (status = 413, description = "Body over 64 KiB", body = ApiError),
            (status = 500, description = "Storage failure", body = ApiError),
        )
    )]
    fn ack() {}

    /// Live delivery: upgrade to a WebSocket.
    ///
    /// The session token goes in the `Authorization` header of the upgrade request, never
    /// in the URL. The socket carries JSON text frames: the client sends one `subscribe`
    /// `ClientFrame`, then `ack` frames; the server sends `message` `ServerFrame`s in
    /// cursor order and, before closing for a reason, an `error` frame. Frames are at most
    /// 64 KiB; at most 4 sockets per device.
    #[utoipa::path(
        get,
        path = "/v1/ws",
        operation_id = "live",
        tag = "delivery",
        params(
            ("Connection" = String, Header, description = "`Upgrade`"),
            ("Upgrade" = String, Header, description = "`websocket`"),
            ("Sec-WebSocket-Version" = String, Header, description = "`13`"),
            ("Sec-WebSocket-Key" = String, Header, description = "The WebSocket handshake key"),
        ),
        security(("session" = [])),
        responses(
            (status = 101, description = "Switched to the WebSocket protocol"),
            (status = 400, description = "Not a valid WebSocket upgrade request", body = ApiError),
            (status = 401, description = "No valid session", body = ApiError),
            (status = 426, description = "The connection cannot be upgraded", body = ApiError),
            (status = 429, description = "Too many live connections for this device", body = ApiError),
            (status = 500, description = "Storage failure", body = ApiError),
            (status = 503, description = "The server is shutting down", body = ApiError),
        )
    )]
    fn live() {}

    /// The deployment salt clients hash contact identifiers with (created on first use).
    #[utoipa::path(
        get,
        path = "/v1/discovery/salt",
        operation_id = "discovery_salt",
        tag = "discovery",
        responses(
            (status = 200, description = "The salt", body = DiscoverySalt),
            (status = 500, description = "Storage failure", body = ApiError),
        )
    )]
    fn discovery_salt() {}

    /// Publish the contact hashes of one's own identifiers, replacing any published before.
    ///
    /// At most 16 hashes of 32 bytes; an empty list withdraws them all.
    #[utoipa::path(
        put,
        path = "/v1/discovery",
        operation_id = "publish_contacts",
        tag = "discovery",
        request_body = PublishContacts,
        security(("session" = [])),
        responses(
            (status = 204, description = "Published"),
            (status = 400, description = "Malformed body, a hash not of 32 bytes, or too many", body = ApiError),
            (status = 401, description = "No valid session", body = ApiError),
            (status = 413, description = "Body over 64 KiB", body = ApiError),
            (status = 500, description = "Storage failure", body = ApiError),
        )
    )]
    fn publish_contacts() {}

    /// Which of these contact hashes belong to users.
    ///
    /// At most 1000 hashes per request and 5000 per account per day; the hashes looked up
    /// are not stored.
    #[utoipa::path(
        post,
        path = "/v1/discovery/lookup",
        operation_id = "lookup_contacts",
        tag = "discovery",
        request_body = LookupContacts,
        security(("session" = [])),
        responses(
            (status = 200, description = "The hashes that matched", body = ContactMatches),
            (status = 400, description = "Malformed body, a hash not of 32 bytes, or too many", body = ApiError),
            (status = 401, description = "No valid session", body = ApiError),
            (status = 413, description = "Body over 64 KiB", body = ApiError),
            (status = 429, description = "Over today's look-up allowance", body = ApiError),
            (status = 500, description = "Storage failure", body = ApiError),
        )
    )]
    fn lookup_contacts() {}

    /// Store an encrypted attachment.
    ///
    /// The body is the blob itself (not empty, at most 25 MiB); at most 512 MiB stored per
    /// user. Anyone holding the id and token may fetch or delete it until it expires.
    #[utoipa::path(
        post,
        path = "/v1/attachments",
        operation_id = "upload_attachment",
        tag = "attachments",
        params(
            ("ttl" = Option<u64>, Query,
                description = "Seconds the blob should live (default and most: the server's \
                    retention). No other query parameter is accepted."),
        ),
        request_body(content = Blob, content_type = "application/octet-stream"),
        security(("session" = [])),
        responses(
            (status = 201, description = "Stored", body = AttachmentStored),
            (status = 400, description = "Empty body, or a malformed or unknown query parameter", body = ApiError),
            (status = 401, description = "No valid session", body = ApiError),
            (status = 413, description = "Body over 25 MiB", body = ApiError),
            (status = 429, description = "The user's attachments would exceed 512 MiB", body = ApiError),
            (status = 500, description = "Storage failure", body = ApiError),
        )
    )]
    fn upload_attachment() {}

    /// Fetch an attachment by capability.
    ///
    /// Unknown, expired and wrong-token requests alike are answered 404.
    #[utoipa::path(
        get,
        path = "/v1/attachments/{id}",
        operation_id = "download_attachment",
        tag = "attachments",
        params(
            ("id" = String, Path, description = "The attachment id, 32 lower-case hex digits",
                pattern = "^[0-9a-f]{32}$"),
        ),
        security(("capability" = [])),
        responses(
            (status = 200, description = "The blob", body = Blob, content_type = "application/octet-stream"),
            (status = 400, description = "Malformed id", body = ApiError),
            (status = 401, description = "No capability token", body = ApiError),
            (status = 404, description = "No such attachment for this token", body = ApiError),
            (status = 500, description = "Storage failure", body = ApiError),
        )
    )]
    fn download_attachment() {}

    /// Delete an attachment by capability.
    ///
    /// Unknown, expired and wrong-token requests alike are answered 404.
    #[utoipa::path(
        delete,
        path = "/v1/attachments/{id}",
        operation_id = "delete_attachment",
        tag = "attachments",
        params(
            ("id" = String, Path, description = "The attachment id, 32 lower-case hex digits",
                pattern = "^[0-9a-f]{32}$"),
        ),
        security(("capability" = [])),
        responses(
            (status = 204, description = "Deleted"),
            (status = 400, description = "Malformed id", body = ApiError),
            (status = 401, description = "No capability token", body = ApiError),
            (status = 404, description = "No such attachment for this token", body = ApiError),
            (status = 500, description = "Storage failure", body = ApiError),
        )
    )]
    fn delete_attachment() {}

    /// Start registering (or replacing) the account's OPAQUE password record.
    ///
    /// Only a device of the account itself may; the request is the 32-byte OPAQUE
    /// registration request.
    #[utoipa::path(
        post,
        path = "/v1/password/register/start",
        operation_id = "password_register_start",
        tag = "passwords",
        request_body = PasswordRegistrationStart,
        security(("session" = [])),
        responses(
            (status = 200, description = "The OPAQUE registration response", body = PasswordRegistrationResponse),
            (status = 400, description = "Malformed body or OPAQUE message", body = ApiError),
            (status = 401, description = "No valid session", body = ApiError),
            (status = 403, description = "The username is not the session's user", body = ApiError),
            (status = 413, description = "Body over 8 KiB", body = ApiError),
            (status = 500, description = "Storage failure", body = ApiError),
        )
    )]
    fn password_register_start() {}

    /// Finish registering: store the OPAQUE record and the sealed root-key backup.
    #[utoipa::path(
        post,
        path = "/v1/password/register/finish",
        operation_id = "password_register_finish",
        tag = "passwords",
        request_body = PasswordRegistrationFinish,
        security(("session" = [])),
        responses(
            (status = 204, description = "Stored (replacing any earlier record and backup)"),
            (status = 400, description = "Malformed body, upload or backup", body = ApiError),
            (status = 401, description = "No valid session", body = ApiError),
            (status = 403, description = "The username is not the session's user", body = ApiError),
            (status = 413, description = "Body over 8 KiB", body = ApiError),
            (status = 500, description = "Storage failure", body = ApiError),
        )
    )]
    fn password_register_finish() {}

    /// Replace the sealed root-key backup alone.
    #[utoipa::path(
        put,
        path = "/v1/backup",
        operation_id = "put_backup",
        tag = "passwords",
        request_body = PutBackup,
        security(("session" = [])),
        responses(
            (status = 204, description = "Replaced"),
            (status = 400, description = "Malformed body or backup", body = ApiError),
            (status = 401, description = "No valid session", body = ApiError),
            (status = 404, description = "The account has no password", body = ApiError),
            (status = 413, description = "Body over 8 KiB", body = ApiError),
            (status = 500, description = "Storage failure", body = ApiError),
        )
    )]
    fn put_backup() {}

    /// Start a password login (OPAQUE credential request).
    ///
    /// Unknown users get an answer of the same status and size. Every start counts against
    /// the username's lockout.
    #[utoipa::path(
        post,
        path = "/v1/password/login/start",
        operation_id = "password_login_start",
        tag = "passwords",
        request_body = PasswordLoginStart,
        responses(
            (status = 200, description = "The login id and OPAQUE credential response", body = PasswordLoginStarted),
            (status = 400, description = "Malformed body, user id or OPAQUE message", body = ApiError),
            (status = 413, description = "Body over 8 KiB", body = ApiError),
            (status = 429, description = "Password login for this username is locked", body = ApiError),
            (status = 500, description = "Storage failure", body = ApiError),
        )
    )]
    fn password_login_start() {}

    /// Finish a password login: the sealed root-key backup if the finalization proves the
    /// password.
    #[utoipa::path(
        post,
        path = "/v1/password/login/finish",
        operation_id = "password_login_finish",
        tag = "passwords",
        request_body = PasswordLoginFinish,
        responses(
            (status = 200, description = "The sealed root-key backup", body = PasswordLoginFinished),
            (status = 400, description = "Malformed body", body = ApiError),
            (status = 401, description = "Wrong finalization, or an unknown, used or expired login", body = ApiError),
            (status = 413, description = "Body over 8 KiB", body = ApiError),
            (status = 500, description = "Storage failure", body = ApiError),
        )
    )]
    fn password_login_finish() {}
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn document_serialises_as_openapi_3_1() {
        let json: serde_json::Value = serde_json::from_str(JSON.as_deref().unwrap()).unwrap();
        assert_eq!(json["openapi"], "3.1.0");
        assert_eq!(json["info"]["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(json["servers"][0]["url"], "/");
        let schemes = &json["components"]["securitySchemes"];
        assert_eq!(schemes[SESSION_SCHEME]["scheme"], "bearer");
        assert_eq!(schemes[CAPABILITY_SCHEME]["name"], "Authorization");
        let bytes = &json["components"]["schemas"]["Bytes"];
        assert_eq!(bytes["type"], "string");
        assert_eq!(bytes["format"], "byte");
        assert_eq!(bytes["contentEncoding"], "base64");
        let ack = &json["components"]["schemas"]["Ack"]["properties"]["cursors"]["items"];
        assert_eq!(ack["format"], "uint64");
        assert!(!JSON.as_deref().unwrap().contains("u-int"));
    }
}
