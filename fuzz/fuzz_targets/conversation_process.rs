//! `Conversation::process` on a real two-member conversation (Alice and Bob), from Bob's
//! side. The first input byte picks a mode:
//!
//! * `0`: the rest of the input is the message.
//! * `1`: the next byte picks a template (application messages from Alice, a commit Alice
//!   then discarded, a KeyPackage), the rest are edits of it (see `common::mutate`). An
//!   altered message must be refused.
//! * `2`: Alice's device encrypts the rest as an application message, bypassing
//!   `Conversation::send`'s checks (a hostile member): Bob must accept exactly valid
//!   content naming Alice's device, within policy.
//! * `3`: as 2, but the rest is first decoded as content and its sender set to Alice's
//!   device, so that the receiver's policy and duplicate checks are reached.
//!
//! Bob's epoch never changes (no authentic commit is ever processed), so the state carried
//! between inputs is only replay windows and ratchet positions.
#![no_main]

mod common;

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use sotto_core::content::{Content, ContentError};
use sotto_core::conversation::{Conversation, ConversationError, Event};
use sotto_core::device::SottoConfig;
use sotto_core::identity::DeviceId;

struct State {
    alice: Conversation<SottoConfig>,
    bob: Conversation<SottoConfig>,
    alice_device: DeviceId,
    templates: Vec<Vec<u8>>,
}

fn setup() -> State {
    let (alice, bob) = (common::root("alice"), common::root("bob"));
    let (a, b) = (common::device(&alice), common::device(&bob));
    let mut ca = a
        .create_conversation(&common::policy(&[&alice, &bob]))
        .unwrap();
    let out = ca.add_and_remove(&[b.key_package().unwrap()], &[]).unwrap();
    ca.merge_pending_commit().unwrap();
    let cb = b.join(&out.welcome.unwrap()).unwrap();
    let mut templates = Vec::new();
    for i in 0..3 {
        let (_, ct) = ca
            .send_text(&format!("message {i}"), 60, i == 1, common::NOW_MS)
            .unwrap();
        templates.push(ct);
    }
    templates.push(ca.update().unwrap().commit);
    ca.discard_pending_commit();
    templates.push(
        common::device(&common::root("carol"))
            .key_package()
            .unwrap(),
    );
    State {
        alice: ca,
        bob: cb,
        alice_device: a.identity().device_id,
        templates,
    }
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

/// Alice encrypts `plaintext` without any of `send`'s checks; Bob processes it.
fn from_alice(state: &mut State, plaintext: &[u8]) {
    let ct = state
        .alice
        .mls_group_mut()
        .encrypt_application_message(plaintext, Vec::new())
        .unwrap()
        .to_bytes()
        .unwrap();
    match state.bob.process(&ct, common::NOW_MS) {
        Ok(Event::Message(m)) => {
            assert_eq!(m.content.sender_user, "alice");
            assert_eq!(m.content.sender_device, state.alice_device);
            assert!((1..=86_400).contains(&m.content.ttl_seconds));
            assert_eq!(m.sender.device_id, state.alice_device);
            common::assert_content_canonical(plaintext, &m.content);
        }
        Ok(other) => panic!("unexpected event {other:?}"),
        Err(ConversationError::Content(ContentError::Decode(_))) => {
            assert!(Content::from_bytes(plaintext).is_err());
        }
        Err(
            ConversationError::SenderMismatch { .. }
            | ConversationError::Policy(_)
            | ConversationError::Duplicate,
        ) => {}
        Err(other) => panic!("unexpected error {other:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    STATE.with(|cell| {
        let mut guard = cell.borrow_mut();
        let state = guard.get_or_insert_with(setup);
        match mode % 4 {
            0 => {
                let result = state.bob.process(rest, common::NOW_MS);
                assert!(result.is_err(), "accepted: {}", common::hex(rest));
            }
            1 => {
                let Some((&which, edits)) = rest.split_first() else {
                    return;
                };
                let template = &state.templates[usize::from(which) % state.templates.len()];
                let bytes = common::mutate(template, edits);
                if bytes == *template {
                    return; // authentic: processing it would move Bob's state
                }
                let result = state.bob.process(&bytes, common::NOW_MS);
                assert!(
                    result.is_err(),
                    "altered message accepted: {}",
                    common::hex(&bytes)
                );
            }
            2 => from_alice(state, rest),
            _ => {
                let Ok(mut content) = Content::from_bytes(rest) else {
                    return;
                };
                content.sender_user = "alice".into();
                content.sender_device = state.alice_device;
                if let Ok(bytes) = content.to_bytes() {
                    from_alice(state, &bytes);
                }
            }
        }
    });
});
