//! The membership rule for proposals sent by reference, and prior-epoch retention.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;
use sotto_core::conversation::{ConversationError, Event};
use sotto_core::device::{expect_key_package, inspect_key_package};

#[test]
fn a_non_members_add_me_proposal_is_refused() {
    let (_alice, ca, mut cb) = pair();
    let mallory = device(&user("mallory"));
    let group_info = ca.mls_group().group_info_message(true).unwrap();
    let proposal = mallory
        .mls_client()
        .external_add_proposal(
            &group_info,
            None,
            vec![],
            Default::default(),
            Default::default(),
            None,
        )
        .unwrap()
        .to_bytes()
        .unwrap();
    let epoch = cb.epoch();
    assert!(matches!(
        cb.process(&proposal, NOW_MS),
        Err(ConversationError::Unencrypted)
    ));
    assert_eq!(cb.epoch(), epoch);
}

#[test]
fn a_manager_never_commits_a_non_managers_proposal_to_add_someone_else() {
    let (_alice, mut ca, mut cb) = pair();
    let carol = device(&user("carol"));
    let kp = mls_rs::MlsMessage::from_bytes(&carol.key_package().unwrap()).unwrap();
    let proposal = cb
        .mls_group_mut()
        .propose_add(kp, vec![])
        .unwrap()
        .to_bytes()
        .unwrap();
    assert!(matches!(ca.process(&proposal, NOW_MS), Ok(Event::Proposal)));
    // The manager's next commit drops bob's proposal instead of adding carol.
    let out = ca.update().unwrap();
    assert!(out.welcome.is_none());
    let summary = ca.merge_pending_commit().unwrap();
    assert!(summary.added.is_empty());
    assert_eq!(ca.members().len(), 2);
    // bob's client, receiving that commit, agrees on the group.
    let Event::Commit(seen) = cb.process(&out.commit, NOW_MS).unwrap() else {
        panic!()
    };
    assert!(seen.added.is_empty());
    assert_eq!(ca.epoch(), cb.epoch());
}

#[test]
fn only_one_past_epoch_can_still_be_decrypted() {
    let (_alice, mut ca, mut cb) = pair();
    let (_, in_epoch_1) = cb.send_text("one", 60, false, NOW_MS).unwrap();
    let (_, also_epoch_1) = cb.send_text("two", 60, false, NOW_MS).unwrap();
    // One commit later, a late message from the previous epoch is still readable.
    let out = ca.update().unwrap();
    ca.merge_pending_commit().unwrap();
    assert!(matches!(
        ca.process(&in_epoch_1, NOW_MS),
        Ok(Event::Message(_))
    ));
    // Two commits later, that epoch's secrets are gone.
    cb.process(&out.commit, NOW_MS).unwrap();
    ca.update().unwrap();
    ca.merge_pending_commit().unwrap();
    assert!(ca.process(&also_epoch_1, NOW_MS).is_err());
}

#[test]
fn inspecting_a_key_package_names_its_owner() {
    let bob = user("bob");
    let kp = device(&bob).key_package().unwrap();
    let who = inspect_key_package(&kp).unwrap();
    assert_eq!(who.user.as_str(), "bob");
    assert_eq!(who.root_fingerprint, bob.public_key().fingerprint());
    assert!(inspect_key_package(&kp[..kp.len() - 1]).is_err());
    // A KeyPackage whose own signature is broken is refused, not only a bad certificate.
    let mut bad_signature = kp.clone();
    let last = bad_signature.len() - 1;
    bad_signature[last] ^= 1;
    assert!(inspect_key_package(&bad_signature).is_err());
    assert!(matches!(
        inspect_key_package(&vec![0u8; 20_000]),
        Err(ConversationError::TooLarge(20_000))
    ));
}

#[test]
fn a_key_package_substituted_by_the_server_is_caught() {
    let bob = user("bob");
    let fake_bob = user("bob"); // same user id, another root key: the server's own
    let pinned = bob.public_key().fingerprint();
    let id = bob.user().clone();
    let real = device(&bob).key_package().unwrap();
    assert_eq!(expect_key_package(&real, &id, &pinned).unwrap().user, id);
    let fake = device(&fake_bob).key_package().unwrap();
    assert!(matches!(
        expect_key_package(&fake, &id, &pinned),
        Err(ConversationError::Identity(m)) if m.contains("another user")
    ));
}

#[test]
fn a_creator_must_manage_the_conversation() {
    let (alice, bob) = (user("alice"), user("bob"));
    assert!(matches!(
        device(&alice).create_conversation(&policy(&[&bob])),
        Err(ConversationError::NotAManager)
    ));
}

#[test]
fn a_welcome_cannot_overwrite_a_stored_conversation() {
    let (alice, bob, mallory) = (user("alice"), user("bob"), user("mallory"));
    let (a, b, m) = (device(&alice), device(&bob), device(&mallory));
    let mut ca = a.create_conversation(&policy(&[&alice])).unwrap();
    let out = ca.add_and_remove(&[b.key_package().unwrap()], &[]).unwrap();
    ca.merge_pending_commit().unwrap();
    let cb = b.join(&out.welcome.unwrap()).unwrap();

    // Mallory makes her own conversation under the same id, as its manager, and adds bob.
    let group = m
        .mls_client()
        .create_group_with_id(
            cb.id().to_vec(),
            policy(&[&mallory]).to_extensions().unwrap(),
            Default::default(),
            None,
        )
        .unwrap();
    let mut group = group;
    let mls_kp = mls_rs::MlsMessage::from_bytes(&b.key_package().unwrap()).unwrap();
    let out = group
        .commit_builder()
        .add_member(mls_kp)
        .unwrap()
        .build()
        .unwrap();
    let welcome = out.welcome_messages[0].to_bytes().unwrap();
    assert!(matches!(
        b.join(&welcome),
        Err(ConversationError::AlreadyMember)
    ));
    // bob's stored conversation is still alice's.
    let reloaded = b.load_conversation(cb.id()).unwrap();
    assert_eq!(reloaded.members().len(), 2);
    assert!(reloaded
        .members()
        .iter()
        .any(|m| m.identity.user.as_str() == "alice"));
}

#[test]
fn a_persisted_conversation_reloads_without_bringing_back_used_keys() {
    let (alice, bob) = (user("alice"), user("bob"));
    let (a, b) = (device(&alice), device(&bob));
    let mut ca = a.create_conversation(&policy(&[&alice])).unwrap();
    let out = ca.add_and_remove(&[b.key_package().unwrap()], &[]).unwrap();
    ca.merge_pending_commit().unwrap();
    let mut cb = b.join(&out.welcome.unwrap()).unwrap();

    let (_, first) = ca.send_text("one", 60, false, NOW_MS).unwrap();
    ca.persist().unwrap();
    assert!(matches!(cb.process(&first, NOW_MS), Ok(Event::Message(_))));
    cb.persist().unwrap();
    drop(cb);

    // After a "restart", the used key stays deleted and new messages still arrive.
    let mut cb = b.load_conversation(ca.id()).unwrap();
    assert!(matches!(
        cb.process(&first, NOW_MS),
        Err(ConversationError::Replayed)
    ));
    let mut ca = a.load_conversation(ca.id()).unwrap();
    let (_, second) = ca.send_text("two", 60, false, NOW_MS).unwrap();
    assert!(matches!(cb.process(&second, NOW_MS), Ok(Event::Message(_))));
}

#[test]
fn proposals_are_small_and_few() {
    let (_alice, mut ca, mut cb) = pair();
    // An oversized proposal (a leave carrying 64 KiB of authenticated data) is refused.
    let me = cb.mls_group().current_member_index();
    let big = vec![0u8; sotto_core::conversation::MAX_PROPOSAL_LEN];
    let framed = cb
        .mls_group_mut()
        .propose_remove(me, big)
        .unwrap()
        .to_bytes()
        .unwrap();
    assert!(matches!(
        ca.process(&framed, NOW_MS),
        Err(ConversationError::TooLarge(_))
    ));
    for _ in 0..sotto_core::conversation::MAX_PENDING_PROPOSALS {
        let p = cb.propose_leave().unwrap();
        assert!(matches!(ca.process(&p, NOW_MS), Ok(Event::Proposal)));
    }
    let p = cb.propose_leave().unwrap();
    assert!(matches!(
        ca.process(&p, NOW_MS),
        Err(ConversationError::TooManyProposals)
    ));
}
