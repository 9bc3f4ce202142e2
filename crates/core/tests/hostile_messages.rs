//! Attacks on messages: replayed messages and commits, duplicate message ids, TTLs and
//! burn-on-read flags outside the policy, content claiming another sender, unencrypted
//! handshakes, reading the past (devices added later, epochs beyond the one retained),
//! removed members still committing or sending, and exporter secrets after a removal.
//! Every test checks both that the attack is refused with the specific error and that the
//! honest members' state survives it. The harness is in `hostile/mod.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod hostile;

use common::*;
use hostile::*;
use mls_rs::client_builder::MlsConfig;
use mls_rs::error::MlsError;
use mls_rs::mls_rules::{CommitOptions, DefaultMlsRules};
use mls_rs::MlsMessage;
use sotto_core::content::{Body, Content};
use sotto_core::conversation::{Conversation, ConversationError, Event};
use sotto_core::policy::{BurnOnRead, Policy, PolicyError};

// ---------------------------------------------------------------------------------------
// 7. Replays
// ---------------------------------------------------------------------------------------

#[test]
fn replayed_application_message_is_rejected_and_never_delivered_twice() {
    let mut t = Trio::new();
    let ct = t.ca.say("once");
    expect_text(&mut t.cb, &ct, "once");
    assert!(matches!(
        t.cb.process(&ct, NOW_MS),
        Err(ConversationError::Replayed)
    ));

    // Even behind Sotto's ciphertext window, MLS deleted the message key after first use.
    let err =
        t.cb.mls_group_mut()
            .process_incoming_message(MlsMessage::from_bytes(&ct).unwrap())
            .unwrap_err();
    assert!(matches!(
        ConversationError::from_mls(err),
        ConversationError::Replayed
    ));

    // The replay is still refused after the conversation moved to a new epoch.
    let out = t.ca.update().unwrap();
    t.ca.merge_pending_commit().unwrap();
    expect_commit(&mut t.cb, &out.commit);
    expect_commit(&mut t.cm, &out.commit);
    assert!(matches!(
        t.cb.process(&ct, NOW_MS),
        Err(ConversationError::Replayed)
    ));
    t.healthy();
}

#[test]
fn replayed_commit_is_rejected_and_leaves_state_unchanged() {
    let mut t = Trio::new();
    let dave = device(&user("dave"));
    let out =
        t.ca.add_and_remove(&[dave.key_package().unwrap()], &[])
            .unwrap();
    t.ca.merge_pending_commit().unwrap();
    expect_commit(&mut t.cb, &out.commit);
    expect_commit(&mut t.cm, &out.commit);
    let mut cd = dave.join(&out.welcome.unwrap()).unwrap();
    let epoch = t.ca.epoch();

    assert_rejected(&out.commit, &mut [&mut t.cb, &mut t.cm], |e| {
        matches!(e, ConversationError::Replayed)
    });
    // The committer and the device the commit added never saw it as a message, so they
    // get past the ciphertext window; MLS refuses it as from an old epoch.
    assert_rejected(&out.commit, &mut [&mut t.ca, &mut cd], |e| {
        is_mls(e, MlsError::InvalidEpoch)
    });
    // The same holds for Bob below Sotto's window.
    let err =
        t.cb.mls_group_mut()
            .process_incoming_message(MlsMessage::from_bytes(&out.commit).unwrap())
            .unwrap_err();
    assert!(matches!(err, MlsError::InvalidEpoch), "{err:?}");

    assert_eq!(t.epochs(), [epoch; 3]);
    assert_eq!(t.ca.members().len(), 4);
    assert_healthy(&mut t.ca, &mut [&mut t.cb, &mut t.cm, &mut cd]);
}

// ---------------------------------------------------------------------------------------
// 8. Policy on messages
// ---------------------------------------------------------------------------------------

fn mallory_content(t: &Trio, ttl: u32, burn: bool) -> Content {
    let me = identity_of(&t.cm, "mallory");
    Content::new(
        "mallory",
        me.device_id,
        NOW_MS,
        ttl,
        burn,
        Body::Text("x".into()),
    )
    .unwrap()
}

#[test]
fn ttl_above_the_policy_maximum_is_refused_by_sender_and_receivers() {
    let mut t = Trio::with_policy(|a| Policy::new(vec![fp(a)], 60, BurnOnRead::Allowed).unwrap());
    let before = t.epochs();
    for ttl in [61, 0, u32::MAX] {
        let err = t.ca.send_text("too long", ttl, false, NOW_MS).unwrap_err();
        assert!(
            matches!(err, ConversationError::Policy(PolicyError::TtlOutOfRange { ttl: x, max: 60 }) if x == ttl),
            "{err:?}"
        );
        let content = mallory_content(&t, ttl, false);
        let err = t.cm.send(&content).unwrap_err();
        assert!(matches!(err, ConversationError::Policy(_)), "{err:?}");

        let ct = send_raw(&mut t.cm, &content);
        assert_rejected(
            &ct,
            &mut [&mut t.ca, &mut t.cb],
            |e| matches!(e, ConversationError::Policy(PolicyError::TtlOutOfRange { ttl: x, max: 60 }) if *x == ttl),
        );
    }
    // At the limit, it is fine.
    let content = mallory_content(&t, 60, false);
    let ct = send_raw(&mut t.cm, &content);
    expect_text(&mut t.ca, &ct, "x");
    expect_text(&mut t.cb, &ct, "x");
    assert_eq!(t.epochs(), before);
    t.healthy();
}

#[test]
fn burn_on_read_required_is_enforced_by_sender_and_receivers() {
    let mut t =
        Trio::with_policy(|a| Policy::new(vec![fp(a)], 86_400, BurnOnRead::Required).unwrap());
    let before = t.epochs();
    let err = t.ca.send_text("keep me", 60, false, NOW_MS).unwrap_err();
    assert!(
        matches!(
            err,
            ConversationError::Policy(PolicyError::BurnOnReadRequired)
        ),
        "{err:?}"
    );

    let content = mallory_content(&t, 60, false);
    let ct = send_raw(&mut t.cm, &content);
    assert_rejected(&ct, &mut [&mut t.ca, &mut t.cb], |e| {
        matches!(
            e,
            ConversationError::Policy(PolicyError::BurnOnReadRequired)
        )
    });

    let content = mallory_content(&t, 60, true);
    let ct = send_raw(&mut t.cm, &content);
    for peer in [&mut t.ca as &mut dyn Peer, &mut t.cb] {
        match peer.recv(&ct) {
            Ok(Event::Message(m)) => assert!(m.content.burn_on_read),
            other => panic!("{other:?}"),
        }
    }
    let (_, ct) = t.ca.send_text("burn me", 60, true, NOW_MS).unwrap();
    expect_text(&mut t.cb, &ct, "burn me");
    assert_eq!(t.epochs(), before);
}

// ---------------------------------------------------------------------------------------
// 9, 10. Spoofed senders, duplicate ids
// ---------------------------------------------------------------------------------------

#[test]
fn content_claiming_another_sender_is_rejected() {
    let mut t = Trio::new();
    let before = t.epochs();
    let alice_dev = identity_of(&t.ca, "alice").device_id;
    let bob_dev = identity_of(&t.ca, "bob").device_id;
    let mallory_dev = identity_of(&t.ca, "mallory").device_id;

    let spoofs = [
        ("alice", alice_dev),   // wholly Alice
        ("alice", mallory_dev), // Alice's name on Mallory's device
        ("mallory", bob_dev),   // Mallory's name on Bob's device
    ];
    for (claimed_user, claimed_device) in spoofs {
        let content = Content::new(
            claimed_user,
            claimed_device,
            NOW_MS,
            60,
            false,
            Body::Text("hi".into()),
        )
        .unwrap();
        // Sotto's own send refuses...
        assert!(matches!(
            t.cm.send(&content),
            Err(ConversationError::SenderMismatch { .. })
        ));
        // ...and receivers refuse what a modified client sends.
        let ct = send_raw(&mut t.cm, &content);
        assert_rejected(&ct, &mut [&mut t.ca, &mut t.cb], |e| {
            // Another device of the sender's own user is named by device.
            matches!(e, ConversationError::SenderMismatch { claimed, actual }
                if claimed.split(' ').next() == Some(claimed_user)
                    && actual.split(' ').next() == Some("mallory")
                    && (claimed_user != "mallory"
                        || claimed.contains(&claimed_device.to_hex())))
        });
    }
    assert_eq!(t.epochs(), before);
    t.healthy();
}

#[test]
fn second_message_with_the_same_id_is_rejected_as_duplicate() {
    let mut t = Trio::new();
    let bob_dev = identity_of(&t.cb, "bob").device_id;
    let content =
        Content::new("bob", bob_dev, NOW_MS, 60, false, Body::Text("once".into())).unwrap();
    let first = t.cb.send(&content).unwrap();
    // Bob's own client refuses to send the same id twice; a modified client does it anyway.
    assert!(matches!(
        t.cb.send(&content),
        Err(ConversationError::Duplicate)
    ));
    let second = send_raw(&mut t.cb, &content);
    assert_ne!(first, second, "each encryption is a distinct ciphertext");
    for peer in [&mut t.ca as &mut dyn Peer, &mut t.cm] {
        expect_text(peer, &first, "once");
    }
    assert_rejected(&second, &mut [&mut t.ca, &mut t.cm], |e| {
        matches!(e, ConversationError::Duplicate)
    });

    // Mallory re-using the id of Alice's message under her own name is refused by those
    // who received Alice's message.
    let ct = t.ca.say("original");
    let Event::Message(m) = t.cb.process(&ct, NOW_MS).unwrap() else {
        panic!()
    };
    expect_text(&mut t.cm, &ct, "original");
    let mut copy = mallory_content(&t, 60, false);
    copy.id = m.content.id;
    let ct = send_raw(&mut t.cm, &copy);
    assert_rejected(&ct, &mut [&mut t.cb], |e| {
        matches!(e, ConversationError::Duplicate)
    });
    t.healthy();
}

#[test]
fn sender_rejects_a_members_message_reusing_its_own_message_id() {
    let mut t = Trio::new();
    let (id, ct) = t.ca.send_text("mine", 60, false, NOW_MS).unwrap();
    expect_text(&mut t.cb, &ct, "mine");
    expect_text(&mut t.cm, &ct, "mine");
    let mut copy = mallory_content(&t, 60, false);
    copy.id = id;
    let ct = send_raw(&mut t.cm, &copy);
    // Bob refuses it; Alice, whose id it is, must not be the one member who accepts it.
    assert_rejected(&ct, &mut [&mut t.cb, &mut t.ca], |e| {
        matches!(e, ConversationError::Duplicate)
    });
}

// ---------------------------------------------------------------------------------------
// 11. Unencrypted handshakes
// ---------------------------------------------------------------------------------------

#[test]
fn unencrypted_handshake_from_a_member_is_refused() {
    // Mallory's modified client sends its handshakes as PublicMessages, readable by the server.
    let plaintext =
        DefaultMlsRules::new().with_commit_options(CommitOptions::new().with_path_required(true));
    let mut t = Trio::build(|a| policy(&[a]), |root| rogue_device_with(root, plaintext));
    let before = t.epochs();

    let proposal = t.cm.mls_group_mut().propose_update(Vec::new()).unwrap();
    assert_eq!(proposal.wire_format(), mls_rs::WireFormat::PublicMessage);
    let proposal = proposal.to_bytes().unwrap();
    assert_rejected(&proposal, &mut [&mut t.ca, &mut t.cb], |e| {
        matches!(e, ConversationError::Unencrypted)
    });
    t.cm.mls_group_mut().clear_proposal_cache();

    // An otherwise legitimate commit (a key update) is refused as well.
    let out = t.cm.update().unwrap();
    assert_rejected(&out.commit, &mut [&mut t.ca, &mut t.cb], |e| {
        matches!(e, ConversationError::Unencrypted)
    });
    t.cm.discard_pending_commit();
    assert_eq!(t.epochs(), before);
    t.healthy();
}

// ---------------------------------------------------------------------------------------
// 12. No reading the past
// ---------------------------------------------------------------------------------------

#[test]
fn device_added_later_cannot_read_earlier_messages() {
    let mut t = Trio::new();
    let old = t.ca.say("before dave");
    let dave = device(&user("dave"));
    let out =
        t.ca.add_and_remove(&[dave.key_package().unwrap()], &[])
            .unwrap();
    t.ca.merge_pending_commit().unwrap();
    expect_commit(&mut t.cb, &out.commit);
    let mut cd = dave.join(&out.welcome.unwrap()).unwrap();

    let epoch = cd.epoch();
    let err = cd.process(&old, NOW_MS).unwrap_err();
    assert!(is_mls(&err, MlsError::EpochNotFound), "{err:?}");
    assert_eq!(cd.epoch(), epoch);

    // Bob, who was a member then, still reads it one epoch late.
    expect_text(&mut t.cb, &old, "before dave");
    let ct = t.ca.say("after dave");
    expect_text(&mut cd, &ct, "after dave");
}

#[test]
fn messages_two_epochs_old_are_no_longer_readable() {
    let mut t = Trio::new();
    let old = t.ca.say("two epochs ago");
    for _ in 0..2 {
        let out = t.ca.update().unwrap();
        t.ca.merge_pending_commit().unwrap();
        expect_commit(&mut t.cb, &out.commit);
    }
    assert!(
        t.cb.process(&old, NOW_MS).is_err(),
        "epoch secrets two epochs old were kept"
    );
}

#[test]
fn removed_member_can_neither_commit_nor_send() {
    let mut t = Trio::new();
    let idx = index_of(&t.ca, "mallory");
    let out = t.ca.add_and_remove(&[], &[idx]).unwrap();
    t.ca.merge_pending_commit().unwrap();
    expect_commit(&mut t.cb, &out.commit);
    let epoch = t.ca.epoch();

    // Mallory ignores her removal. A commit from her old epoch goes nowhere.
    let rogue = t.cm.update().unwrap();
    assert_rejected(&rogue.commit, &mut [&mut t.ca, &mut t.cb], |e| {
        is_mls(e, MlsError::InvalidEpoch)
    });
    t.cm.discard_pending_commit();
    assert_eq!(t.ca.epoch(), epoch);

    // A message in her old epoch decrypts with the retained prior epoch, but its sender is
    // no longer in the conversation, so it is refused rather than misattributed.
    let ct = t.cm.say("sent before I noticed");
    assert_rejected(&ct, &mut [&mut t.ca, &mut t.cb], |e| {
        is_mls(e, MlsError::MemberNotFound)
    });
    assert_healthy(&mut t.ca, &mut [&mut t.cb]);
}

// ---------------------------------------------------------------------------------------
// 14. Exporter secrets
// ---------------------------------------------------------------------------------------

fn call_key<C: MlsConfig>(c: &Conversation<C>) -> Vec<u8> {
    c.export_secret(b"sotto call", b"call-1", 32)
        .unwrap()
        .to_vec()
}

#[test]
fn exporter_secret_is_shared_per_epoch_and_lost_by_a_removed_member() {
    let mut t = Trio::new();
    let (ea, eb, em) = (call_key(&t.ca), call_key(&t.cb), call_key(&t.cm));
    assert_eq!(ea, eb);
    assert_eq!(ea, em);
    assert_ne!(
        t.ca.export_secret(b"sotto call", b"call-2", 32)
            .unwrap()
            .to_vec(),
        ea
    );

    // Alice removes Mallory.
    let idx = index_of(&t.ca, "mallory");
    let out = t.ca.add_and_remove(&[], &[idx]).unwrap();
    t.ca.merge_pending_commit().unwrap();
    expect_commit(&mut t.cb, &out.commit);
    assert!(expect_commit(&mut t.cm, &out.commit).self_removed);

    let new_a = call_key(&t.ca);
    assert_eq!(new_a, call_key(&t.cb));
    assert_ne!(new_a, ea, "the exporter must change with the epoch");
    // Whatever Mallory's client can still export, it is not the new call key.
    if let Ok(m) = t.cm.export_secret(b"sotto call", b"call-1", 32) {
        assert_ne!(m.to_vec(), new_a);
    }
    assert_healthy(&mut t.ca, &mut [&mut t.cb]);
}
