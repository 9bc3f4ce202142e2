//! Attacks on the manager rule: non-managers (on Sotto's own client and on a modified one)
//! adding or removing other users' devices or changing the policy, a modified manager
//! installing a missing or invalid policy, non-managers' proposals sent by reference, adding
//! a device that is not one's own, leaving, and external joins. Every test checks both that
//! the attack is refused with the specific error and that the honest members' state
//! survives it. The harness is in `hostile/mod.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod hostile;

use common::*;
use hostile::*;
use mls_rs::client_builder::MlsConfig;
use mls_rs::error::MlsError;
use mls_rs::{Extension, ExtensionList, MlsMessage};
use mls_rs_codec::{MlsEncode, MlsSize};
use sotto_core::conversation::{Conversation, ConversationError, Event};
use sotto_core::device::{Device, SottoConfig};
use sotto_core::identity::{RootFingerprint, UserRootKey};
use sotto_core::policy::{PolicyError, POLICY_EXTENSION};
use sotto_core::rules::RuleError;

// ---------------------------------------------------------------------------------------
// 1. The honest client's own rules
// ---------------------------------------------------------------------------------------

#[test]
fn honest_non_manager_client_refuses_to_add_remove_or_change_policy() {
    let mut t = Trio::new();
    let before = t.epochs();
    let dave = device(&user("dave"));

    let err =
        t.cb.add_and_remove(&[dave.key_package().unwrap()], &[])
            .unwrap_err();
    assert!(is_rule(&err, RuleError::AddNotAllowed), "{err:?}");

    for victim in ["alice", "mallory"] {
        let idx = index_of(&t.cb, victim);
        let err = t.cb.add_and_remove(&[], &[idx]).unwrap_err();
        assert!(is_rule(&err, RuleError::RemoveNotAllowed), "{err:?}");
    }

    let err = t.cb.set_policy(&policy(&[&t.alice, &t.bob])).unwrap_err();
    assert!(is_rule(&err, RuleError::PolicyChangeNotAllowed), "{err:?}");

    assert!(!t.cb.mls_group().has_pending_commit());
    assert_eq!(t.epochs(), before);
    assert!(!t.cb.policy().is_manager(&fp(&t.bob)));
    t.healthy();
}

// ---------------------------------------------------------------------------------------
// 2, 3. A modified non-manager client
// ---------------------------------------------------------------------------------------

#[test]
fn modified_non_manager_adding_another_users_device_is_rejected_by_honest_members() {
    let mut t = Trio::new();
    let before = t.epochs();
    let dave = device(&user("dave"));

    // Mallory's modified client happily builds the commit...
    let out =
        t.cm.add_and_remove(&[dave.key_package().unwrap()], &[])
            .unwrap();
    // ...which every honest member refuses.
    assert_rejected(&out.commit, &mut [&mut t.ca, &mut t.cb], |e| {
        is_rule(e, RuleError::AddNotAllowed)
    });
    assert_eq!(t.ca.members().len(), 3);

    // Dave's honest client applies the same rule to the Welcome and refuses to join
    // Mallory's fork, where only she could read what he sends.
    let err = dave.join(&out.welcome.unwrap()).unwrap_err();
    assert!(is_rule(&err, RuleError::AddNotAllowed), "{err:?}");

    t.cm.discard_pending_commit();
    assert_eq!(t.epochs(), before);
    t.healthy();
}

#[test]
fn modified_non_manager_removing_another_users_device_is_rejected_by_honest_members() {
    let mut t = Trio::new();
    let before = t.epochs();
    for victim in ["alice", "bob"] {
        let idx = index_of(&t.cm, victim);
        let out = t.cm.add_and_remove(&[], &[idx]).unwrap();
        assert_rejected(&out.commit, &mut [&mut t.ca, &mut t.cb], |e| {
            is_rule(e, RuleError::RemoveNotAllowed)
        });
        t.cm.discard_pending_commit();
    }
    assert_eq!(t.epochs(), before);
    assert_eq!(t.ca.members().len(), 3);
    assert_eq!(t.cb.members().len(), 3);
    t.healthy();
}

#[test]
fn modified_non_manager_changing_the_policy_is_rejected_by_honest_members() {
    let mut t = Trio::new();
    let before = t.epochs();

    // Making herself a manager.
    let out = t.cm.set_policy(&policy(&[&t.alice, &t.mallory])).unwrap();
    assert_rejected(&out.commit, &mut [&mut t.ca, &mut t.cb], |e| {
        is_rule(e, RuleError::PolicyChangeNotAllowed)
    });
    t.cm.discard_pending_commit();

    // Stripping the policy altogether.
    let output =
        t.cm.mls_group_mut()
            .commit_builder()
            .set_group_context_ext(ExtensionList::new())
            .unwrap()
            .build()
            .unwrap();
    let commit = output.commit_message.to_bytes().unwrap();
    assert_rejected(&commit, &mut [&mut t.ca, &mut t.cb], |e| {
        is_rule(e, RuleError::PolicyChangeNotAllowed)
    });
    t.cm.discard_pending_commit();

    assert_eq!(t.epochs(), before);
    for c in [&t.ca, &t.cb] {
        assert_eq!(c.policy(), &policy(&[&t.alice]));
        assert!(!c.policy().is_manager(&fp(&t.mallory)));
    }
    t.healthy();
}

/// Raw policy encoding (version, managers, max TTL, burn-on-read), to build invalid ones.
#[derive(MlsSize, MlsEncode)]
struct RawPolicy {
    version: u8,
    managers: Vec<RootFingerprint>,
    max_ttl_seconds: u32,
    burn_on_read: u8,
}

#[test]
fn modified_manager_cannot_install_a_missing_or_invalid_policy() {
    let alice = user("alice");
    let bob = user("bob");
    let a = rogue_device(&alice);
    let b = device(&bob);
    let mut ca = a.create_conversation(&policy(&[&alice])).unwrap();
    let out = ca.add_and_remove(&[b.key_package().unwrap()], &[]).unwrap();
    ca.merge_pending_commit().unwrap();
    let mut cb = b.join(&out.welcome.unwrap()).unwrap();
    let epoch = cb.epoch();

    let raw = |version, managers, max_ttl_seconds, burn_on_read| {
        let bytes = RawPolicy {
            version,
            managers,
            max_ttl_seconds,
            burn_on_read,
        }
        .mls_encode_to_vec()
        .unwrap();
        let mut list = ExtensionList::new();
        list.set(Extension::new(POLICY_EXTENSION, bytes));
        list
    };
    let cases: Vec<(ExtensionList, PolicyError)> = vec![
        (ExtensionList::new(), PolicyError::Missing),
        (raw(1, vec![fp(&alice)], 0, 1), PolicyError::BadMaxTtl),
        (raw(1, vec![], 60, 1), PolicyError::BadManagers),
        (
            raw(1, vec![fp(&alice), fp(&alice)], 60, 1),
            PolicyError::BadManagers,
        ),
        (
            raw(2, vec![fp(&alice)], 60, 1),
            PolicyError::UnsupportedVersion(2),
        ),
        (raw(1, vec![fp(&alice)], 60, 9), PolicyError::Malformed),
    ];
    for (extensions, expected) in cases {
        let output = ca
            .mls_group_mut()
            .commit_builder()
            .set_group_context_ext(extensions)
            .unwrap()
            .build()
            .unwrap();
        let commit = output.commit_message.to_bytes().unwrap();
        assert_rejected(&commit, &mut [&mut cb], |e| {
            is_rule(e, RuleError::Policy(expected.clone()))
        });
        ca.discard_pending_commit();
    }
    assert_eq!(cb.epoch(), epoch);
    assert_eq!(cb.policy(), &policy(&[&alice]));
    assert_healthy(&mut ca, &mut [&mut cb]);
}

// ---------------------------------------------------------------------------------------
// By-reference proposals
// ---------------------------------------------------------------------------------------

#[test]
fn non_managers_invalid_by_reference_proposal_is_dropped_and_does_not_block_commits() {
    let mut t = Trio::new();
    let alice_idx = index_of(&t.cm, "alice");
    let proposal =
        t.cm.mls_group_mut()
            .propose_remove(alice_idx, Vec::new())
            .unwrap()
            .to_bytes()
            .unwrap();
    assert_eq!(t.ca.process(&proposal, NOW_MS).unwrap(), Event::Proposal);
    assert_eq!(t.cb.process(&proposal, NOW_MS).unwrap(), Event::Proposal);

    // Bob (honest, not a manager) may not commit it: his client drops it and commits anyway.
    let out = t.cb.update().unwrap();
    let summary = t.cb.merge_pending_commit().unwrap();
    assert!(summary.removed.is_empty());
    assert!(expect_commit(&mut t.ca, &out.commit).removed.is_empty());
    assert!(expect_commit(&mut t.cm, &out.commit).removed.is_empty());
    assert_eq!(t.ca.members().len(), 3);
    t.healthy();
}

/// Mallory's by-reference proposals to add Dave, remove Bob and make herself a manager,
/// delivered to Alice and Bob.
fn mallorys_proposals<A: MlsConfig, M: MlsConfig>(
    ca: &mut Conversation<A>,
    cb: &mut Conversation<SottoConfig>,
    cm: &mut Conversation<M>,
    alice: &UserRootKey,
    mallory: &UserRootKey,
    dave: &Device,
) {
    let kp = MlsMessage::from_bytes(&dave.key_package().unwrap()).unwrap();
    let bob_idx = index_of(cm, "bob");
    let ext = policy(&[alice, mallory]).to_extensions().unwrap();
    let group = cm.mls_group_mut();
    let proposals = [
        group.propose_add(kp, Vec::new()).unwrap(),
        group.propose_remove(bob_idx, Vec::new()).unwrap(),
        group
            .propose_group_context_extensions(ext, Vec::new())
            .unwrap(),
    ];
    for p in proposals {
        let p = p.to_bytes().unwrap();
        assert_eq!(ca.process(&p, NOW_MS).unwrap(), Event::Proposal);
        assert_eq!(cb.process(&p, NOW_MS).unwrap(), Event::Proposal);
    }
}

#[test]
fn managers_commit_drops_a_non_managers_by_reference_proposals() {
    let mut t = Trio::new();
    let dave = device(&user("dave"));
    mallorys_proposals(&mut t.ca, &mut t.cb, &mut t.cm, &t.alice, &t.mallory, &dave);

    // Alice (a manager) only means to refresh her keys: her authority must not be lent
    // to Mallory's proposals.
    let out = t.ca.update().unwrap();
    let summary = t.ca.merge_pending_commit().unwrap();
    assert!(
        summary.added.is_empty() && summary.removed.is_empty(),
        "{summary:?}"
    );
    assert!(!summary.policy_changed);
    assert!(out.welcome.is_none());

    let bob_view = expect_commit(&mut t.cb, &out.commit);
    assert!(bob_view.added.is_empty() && bob_view.removed.is_empty() && !bob_view.policy_changed);
    expect_commit(&mut t.cm, &out.commit);
    for c in [&t.ca, &t.cb] {
        assert!(!c.policy().is_manager(&fp(&t.mallory)));
        assert_eq!(c.members().len(), 3);
    }
    t.healthy();
}

#[test]
fn honest_members_reject_a_managers_commit_carrying_a_non_managers_proposals() {
    // Alice is a manager whose modified client commits whatever is pending.
    let (alice, bob, mallory) = (user("alice"), user("bob"), user("mallory"));
    let (a, b, m) = (rogue_device(&alice), device(&bob), rogue_device(&mallory));
    let mut ca = a.create_conversation(&policy(&[&alice])).unwrap();
    let out = ca
        .add_and_remove(&[b.key_package().unwrap(), m.key_package().unwrap()], &[])
        .unwrap();
    ca.merge_pending_commit().unwrap();
    let (mut cb, mut cm) = (
        b.join(out.welcome.as_ref().unwrap()).unwrap(),
        m.join(&out.welcome.unwrap()).unwrap(),
    );
    let epoch = cb.epoch();

    let dave = device(&user("dave"));
    mallorys_proposals(&mut ca, &mut cb, &mut cm, &alice, &mallory, &dave);
    let out = ca.update().unwrap();
    // The add is checked first: it alone sinks the commit.
    assert_rejected(&out.commit, &mut [&mut cb], |e| {
        is_rule(e, RuleError::AddNotAllowed)
    });
    assert_eq!(cb.epoch(), epoch);
    assert_eq!(cb.members().len(), 3);
    assert!(!cb.policy().is_manager(&fp(&mallory)));
}

// ---------------------------------------------------------------------------------------
// 4. Own devices
// ---------------------------------------------------------------------------------------

#[test]
fn non_manager_may_add_own_new_device_which_reads_later_messages() {
    let mut t = Trio::new();
    let bob2 = device(&t.bob);
    let out =
        t.cb.add_and_remove(&[bob2.key_package().unwrap()], &[])
            .unwrap();
    let summary = t.cb.merge_pending_commit().unwrap();
    assert_eq!(summary.added, vec![bob2.identity().clone()]);
    for peer in [&mut t.ca as &mut dyn Peer, &mut t.cm] {
        assert_eq!(
            expect_commit(peer, &out.commit).added,
            vec![bob2.identity().clone()]
        );
    }
    let mut cb2 = bob2.join(&out.welcome.unwrap()).unwrap();
    assert_eq!(t.ca.members().len(), 4);
    assert_healthy(&mut t.ca, &mut [&mut t.cb, &mut cb2, &mut t.cm]);
    assert_healthy(&mut cb2, &mut [&mut t.ca, &mut t.cb, &mut t.cm]);
}

#[test]
fn a_device_of_another_root_key_with_the_same_user_id_is_not_own_device() {
    let mut t = Trio::new();
    // A different root key that also calls itself "bob" (e.g. minted by a hostile server).
    let impostor = device(&user("bob"));
    let before = t.epochs();

    let err =
        t.cb.add_and_remove(&[impostor.key_package().unwrap()], &[])
            .unwrap_err();
    assert!(is_rule(&err, RuleError::AddNotAllowed), "{err:?}");

    // Mallory adding a device of Bob's real root key is just as forbidden.
    let bob2 = device(&t.bob);
    let out =
        t.cm.add_and_remove(&[bob2.key_package().unwrap()], &[])
            .unwrap();
    assert_rejected(&out.commit, &mut [&mut t.ca, &mut t.cb], |e| {
        is_rule(e, RuleError::AddNotAllowed)
    });
    t.cm.discard_pending_commit();
    assert_eq!(t.epochs(), before);
    t.healthy();
}

// ---------------------------------------------------------------------------------------
// 5. Leaving
// ---------------------------------------------------------------------------------------

#[test]
fn member_leaves_through_the_managers_commit() {
    let mut t = Trio::new();
    let bob_identity = identity_of(&t.cb, "bob");
    let proposal = t.cb.propose_leave().unwrap();
    assert_eq!(t.ca.process(&proposal, NOW_MS).unwrap(), Event::Proposal);
    assert_eq!(t.cm.process(&proposal, NOW_MS).unwrap(), Event::Proposal);

    let out = t.ca.update().unwrap();
    let summary = t.ca.merge_pending_commit().unwrap();
    assert_eq!(summary.removed, vec![bob_identity.clone()]);
    assert!(!summary.self_removed);

    let bob_view = expect_commit(&mut t.cb, &out.commit);
    assert!(bob_view.self_removed);
    assert_eq!(
        expect_commit(&mut t.cm, &out.commit).removed,
        vec![bob_identity]
    );

    assert_eq!(t.ca.members().len(), 2);
    let ct = t.ca.say("bob is gone");
    expect_text(&mut t.cm, &ct, "bob is gone");
    let err = t.cb.process(&ct, NOW_MS).unwrap_err();
    assert!(is_mls(&err, MlsError::EpochNotFound), "{err:?}");
}

#[test]
fn non_manager_may_commit_another_members_leave_proposal() {
    let (alice, bob, carol) = (user("alice"), user("bob"), user("carol"));
    let (mut ca, mut others) = honest_group(&alice, &[&bob, &carol]);
    let mut cc = others.pop().unwrap();
    let mut cb = others.pop().unwrap();
    let epoch = ca.epoch();
    let bob_identity = identity_of(&ca, "bob");

    let proposal = cb.propose_leave().unwrap();
    assert_eq!(ca.process(&proposal, NOW_MS).unwrap(), Event::Proposal);
    assert_eq!(cc.process(&proposal, NOW_MS).unwrap(), Event::Proposal);

    // Carol is not a manager, yet her client commits Bob's own request to leave...
    let out = cc.update().unwrap();
    let summary = cc.merge_pending_commit().unwrap();
    assert_eq!(summary.removed, vec![bob_identity.clone()]);

    // ...and the other members accept it.
    let alice_view = expect_commit(&mut ca, &out.commit);
    assert_eq!(alice_view.removed, vec![bob_identity]);
    assert_eq!(alice_view.epoch, epoch + 1);
    assert!(expect_commit(&mut cb, &out.commit).self_removed);
    assert_eq!(ca.members().len(), 2);
    assert_healthy(&mut ca, &mut [&mut cc]);
    assert_healthy(&mut cc, &mut [&mut ca]);
}

// ---------------------------------------------------------------------------------------
// 11. External joins
// ---------------------------------------------------------------------------------------

#[test]
fn external_join_is_refused_by_honest_clients_and_members() {
    let mut t = Trio::new();
    let before = t.epochs();
    // Mallory's modified client publishes a GroupInfo that allows external commits.
    let group_info =
        t.cm.mls_group()
            .group_info_message_allowing_ext_commit(true)
            .unwrap();

    // An honest outsider's own rules refuse to produce the external commit.
    let honest = device(&user("eve"));
    let err = honest
        .mls_client()
        .external_commit_builder()
        .unwrap()
        .build(group_info.clone())
        .err()
        .expect("the honest client built an external commit");
    assert!(is_rule(
        &ConversationError::from_mls(err),
        RuleError::ExternalJoin
    ));

    // A modified outsider produces it; every member refuses it.
    let eve = rogue_device(&user("eve"));
    let (_eve_group, commit) = eve
        .mls_client()
        .external_commit_builder()
        .unwrap()
        .build(group_info)
        .unwrap();
    // An external commit is always an unencrypted PublicMessage: Sotto refuses it unread.
    let bytes = commit.to_bytes().unwrap();
    assert_rejected(&bytes, &mut [&mut t.ca, &mut t.cb], |e| {
        matches!(e, ConversationError::Unencrypted)
    });
    // Underneath, the membership rule refuses it too.
    for group in [t.ca.mls_group_mut(), t.cb.mls_group_mut()] {
        let err = group
            .process_incoming_message(commit.clone())
            .err()
            .unwrap();
        assert!(is_rule(
            &ConversationError::from_mls(err),
            RuleError::ExternalJoin
        ));
    }
    assert_eq!(t.epochs(), before);
    assert_eq!(t.ca.members().len(), 3);
    t.healthy();
}
