#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use proptest::prelude::*;

const PASSWORD: &[u8] = b"correct horse battery staple";

fn register(setup: &ServerSetup, username: &[u8], password: &[u8]) -> (PasswordFile, ExportKey) {
    let (state, request) = ClientRegistration::start(username, password).unwrap();
    let response = server_registration_start(setup, &request, username).unwrap();
    let (upload, export_key) = state.finish(password, &response).unwrap();
    (PasswordFile::from_upload(&upload).unwrap(), export_key)
}

/// A login where the server looks the user up as `server_user` and the client logs in as
/// `client_user`. Returns the client's result, and the server's state (to check that a
/// failed client never produced a finalization the server would accept).
fn login(
    setup: &ServerSetup,
    file: Option<&PasswordFile>,
    server_user: &[u8],
    client_user: &[u8],
    password: &[u8],
) -> (ClientResult, ServerLoginState) {
    let (client, request) = ClientLogin::start(client_user, password).unwrap();
    let (server, response) = server_login_start(setup, file, &request, server_user).unwrap();
    assert_eq!(response.len(), CREDENTIAL_RESPONSE_LEN);
    (client.finish(password, &response), server)
}

/// What [`ClientLogin::finish`] returns.
type ClientResult = Result<(Vec<u8>, SessionKey, ExportKey), PasswordError>;

fn flip(bytes: &[u8], index: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[index] ^= 0x01;
    out
}

#[test]
fn round_trip_gives_equal_session_keys_and_the_registration_export_key() {
    // The setup and the record go through their stored forms, as on a real server.
    let setup = ServerSetup::from_bytes(&ServerSetup::generate().unwrap().to_bytes()).unwrap();
    let (state, request) = ClientRegistration::start(b"alice", PASSWORD).unwrap();
    assert_eq!(request.len(), REGISTRATION_REQUEST_LEN);
    let response = server_registration_start(&setup, &request, b"alice").unwrap();
    assert_eq!(response.len(), REGISTRATION_RESPONSE_LEN);
    let (upload, registration_export_key) = state.finish(PASSWORD, &response).unwrap();
    assert_eq!(upload.len(), REGISTRATION_UPLOAD_LEN);
    let stored = PasswordFile::from_upload(&upload).unwrap().to_bytes();
    assert_eq!(stored.len(), PASSWORD_FILE_LEN);
    let file = PasswordFile::from_bytes(&stored).unwrap();

    let (client, request) = ClientLogin::start(b"alice", PASSWORD).unwrap();
    assert_eq!(request.len(), CREDENTIAL_REQUEST_LEN);
    let (server, response) = server_login_start(&setup, Some(&file), &request, b"alice").unwrap();
    assert_eq!(response.len(), CREDENTIAL_RESPONSE_LEN);
    // The server keeps its state between two requests.
    let kept = server.to_bytes();
    assert_eq!(kept.len(), SERVER_LOGIN_STATE_LEN);
    let server = ServerLoginState::from_bytes(&kept).unwrap();

    let (finalization, client_key, export_key) = client.finish(PASSWORD, &response).unwrap();
    assert_eq!(finalization.len(), CREDENTIAL_FINALIZATION_LEN);
    let server_key = server.finish(&finalization).unwrap();
    assert_eq!(client_key.as_bytes(), server_key.as_bytes());
    assert_eq!(export_key.as_bytes(), registration_export_key.as_bytes());
    assert_ne!(client_key.as_bytes(), export_key.as_bytes());
    assert_eq!(setup.to_bytes().len(), SERVER_SETUP_LEN);
}

#[test]
fn each_login_has_a_fresh_session_key() {
    let setup = ServerSetup::generate().unwrap();
    let (file, _) = register(&setup, b"alice", PASSWORD);
    let (first, _) = login(&setup, Some(&file), b"alice", b"alice", PASSWORD);
    let (second, _) = login(&setup, Some(&file), b"alice", b"alice", PASSWORD);
    assert_ne!(first.unwrap().1.as_bytes(), second.unwrap().1.as_bytes());
}

#[test]
fn wrong_password_fails_at_the_client_and_the_server_accepts_no_finalization() {
    let setup = ServerSetup::generate().unwrap();
    let (file, _) = register(&setup, b"alice", PASSWORD);
    let (result, server) = login(&setup, Some(&file), b"alice", b"alice", b"wrong password");
    assert_eq!(result.unwrap_err(), PasswordError::AuthenticationFailed);
    // The client has nothing to send; whatever an attacker sends instead is refused.
    let forged = [0u8; CREDENTIAL_FINALIZATION_LEN];
    assert_eq!(
        server.finish(&forged).unwrap_err(),
        PasswordError::AuthenticationFailed
    );
}

#[test]
fn a_record_only_serves_the_username_it_was_registered_under() {
    let setup = ServerSetup::generate().unwrap();
    let (alice_file, _) = register(&setup, b"alice", PASSWORD);

    // Alice's record served for "bob" (a server bug, or a swapped row): the OPRF key and
    // the bound identity both differ.
    let (result, _) = login(&setup, Some(&alice_file), b"bob", b"bob", PASSWORD);
    assert_eq!(result.unwrap_err(), PasswordError::AuthenticationFailed);

    // Same OPRF key (the server looks up "alice") and the right password, but the client
    // claims to be "bob": only the identity bound in the envelope differs.
    let (result, _) = login(&setup, Some(&alice_file), b"alice", b"bob", PASSWORD);
    assert_eq!(result.unwrap_err(), PasswordError::AuthenticationFailed);

    // The client says "alice" but the server derives the OPRF key for "bob".
    let (result, _) = login(&setup, Some(&alice_file), b"bob", b"alice", PASSWORD);
    assert_eq!(result.unwrap_err(), PasswordError::AuthenticationFailed);

    let (result, _) = login(&setup, Some(&alice_file), b"alice", b"alice", PASSWORD);
    assert!(result.is_ok());
}

#[test]
fn unknown_user_gets_a_response_like_a_real_one_and_fails() {
    let setup = ServerSetup::generate().unwrap();
    let (file, _) = register(&setup, b"alice", PASSWORD);

    let (_, request) = ClientLogin::start(b"alice", PASSWORD).unwrap();
    let (_, real) = server_login_start(&setup, Some(&file), &request, b"alice").unwrap();
    let (_, fake) = server_login_start(&setup, None, &request, b"mallory").unwrap();
    assert_eq!(real.len(), fake.len());

    let (result, server) = login(&setup, None, b"mallory", b"mallory", PASSWORD);
    assert_eq!(result.unwrap_err(), PasswordError::AuthenticationFailed);
    assert_eq!(
        server
            .finish(&[7u8; CREDENTIAL_FINALIZATION_LEN])
            .unwrap_err(),
        PasswordError::AuthenticationFailed
    );
}

#[test]
fn a_record_does_not_work_with_another_server_setup() {
    let setup = ServerSetup::generate().unwrap();
    let (file, _) = register(&setup, b"alice", PASSWORD);
    let other = ServerSetup::generate().unwrap();
    let (result, _) = login(&other, Some(&file), b"alice", b"alice", PASSWORD);
    assert_eq!(result.unwrap_err(), PasswordError::AuthenticationFailed);
}

#[test]
fn stored_record_and_upload_do_not_contain_the_password() {
    let setup = ServerSetup::generate().unwrap();
    let (state, request) = ClientRegistration::start(b"alice", PASSWORD).unwrap();
    assert!(!request.windows(PASSWORD.len()).any(|w| w == PASSWORD));
    let response = server_registration_start(&setup, &request, b"alice").unwrap();
    let (upload, _) = state.finish(PASSWORD, &response).unwrap();
    let stored = PasswordFile::from_upload(&upload).unwrap().to_bytes();
    for bytes in [&upload[..], &stored[..]] {
        // Not the whole password, nor any 4-byte piece of it.
        for piece in PASSWORD.windows(4) {
            assert!(!bytes.windows(4).any(|w| w == piece));
        }
    }
}

#[test]
fn wrong_lengths_are_typed_errors() {
    let setup = ServerSetup::generate().unwrap();
    let (file, _) = register(&setup, b"alice", PASSWORD);

    type Check<'a> = (
        &'static str,
        usize,
        Box<dyn Fn(&[u8]) -> Option<PasswordError> + 'a>,
    );
    let checks: Vec<Check> = vec![
        (
            "server setup",
            SERVER_SETUP_LEN,
            Box::new(|b| ServerSetup::from_bytes(b).err()),
        ),
        (
            "registration request",
            REGISTRATION_REQUEST_LEN,
            Box::new(|b| server_registration_start(&setup, b, b"alice").err()),
        ),
        (
            "registration response",
            REGISTRATION_RESPONSE_LEN,
            Box::new(|b| {
                let (state, _) = ClientRegistration::start(b"alice", PASSWORD).unwrap();
                state.finish(PASSWORD, b).err()
            }),
        ),
        (
            "registration upload",
            REGISTRATION_UPLOAD_LEN,
            Box::new(|b| PasswordFile::from_upload(b).err()),
        ),
        (
            "password file",
            PASSWORD_FILE_LEN,
            Box::new(|b| PasswordFile::from_bytes(b).err()),
        ),
        (
            "credential request",
            CREDENTIAL_REQUEST_LEN,
            Box::new(|b| server_login_start(&setup, Some(&file), b, b"alice").err()),
        ),
        (
            "credential response",
            CREDENTIAL_RESPONSE_LEN,
            Box::new(|b| {
                let (client, _) = ClientLogin::start(b"alice", PASSWORD).unwrap();
                client.finish(PASSWORD, b).err()
            }),
        ),
        (
            "credential finalization",
            CREDENTIAL_FINALIZATION_LEN,
            Box::new(|b| {
                let (_, request) = ClientLogin::start(b"alice", PASSWORD).unwrap();
                let (server, _) =
                    server_login_start(&setup, Some(&file), &request, b"alice").unwrap();
                server.finish(b).err()
            }),
        ),
        (
            "server login state",
            SERVER_LOGIN_STATE_LEN,
            Box::new(|b| ServerLoginState::from_bytes(b).err()),
        ),
    ];
    for (what, expected, check) in &checks {
        for actual in [0, expected - 1, expected + 1, 2 * expected] {
            assert_eq!(
                check(&vec![0u8; actual]),
                Some(PasswordError::WrongLength {
                    what,
                    expected: *expected,
                    actual
                }),
                "{what}, {actual} bytes"
            );
        }
    }
}

#[test]
fn tampered_messages_are_typed_errors() {
    let setup = ServerSetup::generate().unwrap();
    let (file, _) = register(&setup, b"alice", PASSWORD);

    // Registration upload: the client key is checked when decoding; the other fields can
    // only be caught at login.
    let (state, request) = ClientRegistration::start(b"alice", PASSWORD).unwrap();
    let response = server_registration_start(&setup, &request, b"alice").unwrap();
    let (upload, _) = state.finish(PASSWORD, &response).unwrap();
    for index in [0, 40, 100, 150, 191] {
        match PasswordFile::from_upload(&flip(&upload, index)) {
            Err(e) => assert_eq!(e, PasswordError::Malformed("registration upload")),
            Ok(bad) => {
                let (result, _) = login(&setup, Some(&bad), b"alice", b"alice", PASSWORD);
                assert_eq!(result.unwrap_err(), PasswordError::AuthenticationFailed);
            }
        }
    }

    // Registration response: the evaluated element and the server key.
    for index in [0, 31, 32, 63] {
        let (state, request) = ClientRegistration::start(b"alice", PASSWORD).unwrap();
        let response = server_registration_start(&setup, &request, b"alice").unwrap();
        let result = state.finish(PASSWORD, &flip(&response, index));
        match result {
            Err(PasswordError::Malformed("registration response")) => {}
            // A flipped element that still decodes gives a record no login can open.
            Ok((upload, _)) => {
                let bad = PasswordFile::from_upload(&upload).unwrap();
                let (result, _) = login(&setup, Some(&bad), b"alice", b"alice", PASSWORD);
                assert_eq!(result.unwrap_err(), PasswordError::AuthenticationFailed);
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    // Credential request: the server may not notice, the client does.
    for index in [0, 40, 70, 95] {
        let (client, request) = ClientLogin::start(b"alice", PASSWORD).unwrap();
        match server_login_start(&setup, Some(&file), &flip(&request, index), b"alice") {
            Err(e) => assert_eq!(e, PasswordError::Malformed("credential request")),
            Ok((_, response)) => assert_eq!(
                client.finish(PASSWORD, &response).unwrap_err(),
                PasswordError::AuthenticationFailed
            ),
        }
    }

    // Credential response: one flip in each field.
    for index in [0, 40, 70, 130, 200, 230, 260, 319] {
        let (client, request) = ClientLogin::start(b"alice", PASSWORD).unwrap();
        let (_, response) = server_login_start(&setup, Some(&file), &request, b"alice").unwrap();
        let error = client
            .finish(PASSWORD, &flip(&response, index))
            .unwrap_err();
        assert!(
            matches!(
                error,
                PasswordError::AuthenticationFailed
                    | PasswordError::Malformed("credential response")
            ),
            "byte {index}: {error:?}"
        );
    }

    // Credential finalization: every byte is covered by the MAC.
    let (client, request) = ClientLogin::start(b"alice", PASSWORD).unwrap();
    let (server, response) = server_login_start(&setup, Some(&file), &request, b"alice").unwrap();
    let (finalization, client_key, _) = client.finish(PASSWORD, &response).unwrap();
    let kept = server.to_bytes();
    for index in 0..CREDENTIAL_FINALIZATION_LEN {
        let server = ServerLoginState::from_bytes(&kept).unwrap();
        assert_eq!(
            server.finish(&flip(&finalization, index)).unwrap_err(),
            PasswordError::AuthenticationFailed
        );
    }
    let server = ServerLoginState::from_bytes(&kept).unwrap();
    assert_eq!(
        server.finish(&finalization).unwrap().as_bytes(),
        client_key.as_bytes()
    );
}

#[test]
fn a_server_reflecting_the_blinded_element_is_detected() {
    let setup = ServerSetup::generate().unwrap();
    let (file, _) = register(&setup, b"alice", PASSWORD);

    let (state, request) = ClientRegistration::start(b"alice", PASSWORD).unwrap();
    let mut response = server_registration_start(&setup, &request, b"alice").unwrap();
    response[..32].copy_from_slice(&request);
    assert_eq!(
        state.finish(PASSWORD, &response).unwrap_err(),
        PasswordError::Reflected
    );

    let (client, request) = ClientLogin::start(b"alice", PASSWORD).unwrap();
    let (_, mut response) = server_login_start(&setup, Some(&file), &request, b"alice").unwrap();
    response[..32].copy_from_slice(&request[..32]);
    assert_eq!(
        client.finish(PASSWORD, &response).unwrap_err(),
        PasswordError::Reflected
    );
}

#[test]
fn usernames_and_passwords_are_bounded() {
    let setup = ServerSetup::generate().unwrap();
    let long_name = vec![b'a'; MAX_USERNAME_LEN + 1];
    let long_password = vec![b'p'; MAX_PASSWORD_LEN + 1];
    for name in [&b""[..], &long_name] {
        assert_eq!(
            ClientRegistration::start(name, PASSWORD).unwrap_err(),
            PasswordError::InvalidUsername
        );
        assert_eq!(
            ClientLogin::start(name, PASSWORD).unwrap_err(),
            PasswordError::InvalidUsername
        );
        assert_eq!(
            server_registration_start(&setup, &[0; REGISTRATION_REQUEST_LEN], name).unwrap_err(),
            PasswordError::InvalidUsername
        );
        assert_eq!(
            server_login_start(&setup, None, &[0; CREDENTIAL_REQUEST_LEN], name).unwrap_err(),
            PasswordError::InvalidUsername
        );
    }
    assert_eq!(
        ClientRegistration::start(b"alice", &long_password).unwrap_err(),
        PasswordError::PasswordTooLong
    );
    assert_eq!(
        ClientLogin::start(b"alice", &long_password).unwrap_err(),
        PasswordError::PasswordTooLong
    );
    // The longest password and an empty one both work.
    for password in [&vec![b'p'; MAX_PASSWORD_LEN][..], b""] {
        let (file, _) = register(&setup, b"alice", password);
        let (result, _) = login(&setup, Some(&file), b"alice", b"alice", password);
        assert!(result.is_ok());
    }
}

#[test]
fn the_ksf_is_scrypt_with_the_fixed_parameters() {
    let input = GenericArray::<u8, opaque_ke::generic_array::typenum::U64>::from([9u8; 64]);
    let out = ScryptKsf.hash(input).unwrap();
    let mut expected = [0u8; 64];
    crypto::scrypt(&[9u8; 64], b"sotto opaque ksf v1", 15, 8, 1, &mut expected).unwrap();
    assert_eq!(out.as_slice(), &expected[..]);
}

#[test]
fn debug_output_is_redacted() {
    let setup = ServerSetup::generate().unwrap();
    let (registration, request) = ClientRegistration::start(b"alice", PASSWORD).unwrap();
    let response = server_registration_start(&setup, &request, b"alice").unwrap();
    assert_eq!(
        format!("{registration:?}"),
        "ClientRegistration(<redacted>)"
    );
    let (upload, registration_export_key) = registration.finish(PASSWORD, &response).unwrap();
    let file = PasswordFile::from_upload(&upload).unwrap();
    let (client, request) = ClientLogin::start(b"alice", PASSWORD).unwrap();
    let (server, response) = server_login_start(&setup, Some(&file), &request, b"alice").unwrap();
    let debug_client = format!("{client:?}");
    let debug_server = format!("{server:?}");
    let server_state = server.to_bytes();
    let (finalization, session_key, export_key) = client.finish(PASSWORD, &response).unwrap();
    let server_key = server.finish(&finalization).unwrap();

    let snapshot = [
        format!("{setup:?}"),
        format!("{file:?}"),
        debug_client,
        debug_server,
        format!("{session_key:?}"),
        format!("{server_key:?}"),
        format!("{export_key:?}"),
        format!("{registration_export_key:?}"),
    ];
    assert_eq!(
        snapshot,
        [
            "ServerSetup(<redacted>)",
            "PasswordFile(<redacted>)",
            "ClientLogin(<redacted>)",
            "ServerLoginState(<redacted>)",
            "SessionKey(<redacted>)",
            "SessionKey(<redacted>)",
            "ExportKey(<redacted>)",
            "ExportKey(<redacted>)",
        ]
    );
    // No secret byte string shows up in any of them, in hex or as a list of numbers.
    let secrets: [&[u8]; 5] = [
        session_key.as_bytes(),
        export_key.as_bytes(),
        &server_state,
        &setup.to_bytes(),
        &file.to_bytes(),
    ];
    for text in &snapshot {
        for secret in secrets {
            assert!(!text.contains(&hex::encode(&secret[..8])));
            let numbers = format!("{:?}", &secret[..4]);
            assert!(!text.contains(numbers.trim_matches(['[', ']'])));
        }
    }
    let error = format!("{:?}", PasswordError::AuthenticationFailed);
    assert_eq!(error, "AuthenticationFailed");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_bytes_never_panic_a_parser(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = ServerSetup::from_bytes(&bytes);
        let _ = PasswordFile::from_upload(&bytes);
        let _ = PasswordFile::from_bytes(&bytes);
        let _ = ServerLoginState::from_bytes(&bytes);
    }

    #[test]
    fn random_fixed_length_values_are_typed_errors_or_values(
        setup_bytes in proptest::array::uniform32(any::<u8>()),
        file_bytes in proptest::collection::vec(any::<u8>(), PASSWORD_FILE_LEN),
        state_bytes in proptest::collection::vec(any::<u8>(), SERVER_LOGIN_STATE_LEN),
    ) {
        let mut setup = setup_bytes.repeat(4);
        setup.truncate(SERVER_SETUP_LEN);
        match ServerSetup::from_bytes(&setup) {
            Ok(_) | Err(PasswordError::Malformed("server setup")) => {}
            Err(e) => prop_assert!(false, "{e:?}"),
        }
        match PasswordFile::from_bytes(&file_bytes) {
            Ok(_) | Err(PasswordError::Malformed("password file")) => {}
            Err(e) => prop_assert!(false, "{e:?}"),
        }
        // Any 128 bytes are a state; a random one authenticates nothing.
        let state = ServerLoginState::from_bytes(&state_bytes).unwrap();
        prop_assert_eq!(
            state.finish(&[0u8; CREDENTIAL_FINALIZATION_LEN]).unwrap_err(),
            PasswordError::AuthenticationFailed
        );
    }

    #[test]
    fn random_messages_to_the_server_are_typed_errors(
        registration in proptest::collection::vec(any::<u8>(), REGISTRATION_REQUEST_LEN),
        login in proptest::collection::vec(any::<u8>(), CREDENTIAL_REQUEST_LEN),
        finalization in proptest::collection::vec(any::<u8>(), CREDENTIAL_FINALIZATION_LEN),
    ) {
        let setup = ServerSetup::generate().unwrap();
        match server_registration_start(&setup, &registration, b"alice") {
            Ok(r) => prop_assert_eq!(r.len(), REGISTRATION_RESPONSE_LEN),
            Err(e) => prop_assert_eq!(e, PasswordError::Malformed("registration request")),
        }
        match server_login_start(&setup, None, &login, b"alice") {
            Ok((server, response)) => {
                prop_assert_eq!(response.len(), CREDENTIAL_RESPONSE_LEN);
                prop_assert_eq!(
                    server.finish(&finalization).unwrap_err(),
                    PasswordError::AuthenticationFailed
                );
            }
            Err(e) => prop_assert_eq!(e, PasswordError::Malformed("credential request")),
        }
    }

    #[test]
    fn random_responses_to_the_client_are_typed_errors(
        registration in proptest::collection::vec(any::<u8>(), REGISTRATION_RESPONSE_LEN),
        login in proptest::collection::vec(any::<u8>(), CREDENTIAL_RESPONSE_LEN),
    ) {
        let (state, _) = ClientRegistration::start(b"alice", PASSWORD).unwrap();
        match state.finish(PASSWORD, &registration) {
            // Two random 32-byte strings both decoding as group elements is rare, but a
            // registration against an unknown server key is then a valid outcome.
            Ok((upload, _)) => prop_assert_eq!(upload.len(), REGISTRATION_UPLOAD_LEN),
            Err(e) => prop_assert_eq!(e, PasswordError::Malformed("registration response")),
        }
        let (client, _) = ClientLogin::start(b"alice", PASSWORD).unwrap();
        let error = client.finish(PASSWORD, &login).unwrap_err();
        prop_assert!(matches!(
            error,
            PasswordError::Malformed("credential response") | PasswordError::AuthenticationFailed
        ), "{:?}", error);
    }
}
