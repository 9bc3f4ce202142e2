//! One-to-one and group conversations between honest devices.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;
use sotto_core::conversation::Event;

#[test]
fn one_to_one_both_ways() {
    let (alice, bob) = (user("alice"), user("bob"));
    let (a, b) = (device(&alice), device(&bob));
    let mut ca = a.create_conversation(&policy(&[&alice, &bob])).unwrap();
    let out = ca.add_and_remove(&[b.key_package().unwrap()], &[]).unwrap();
    ca.merge_pending_commit().unwrap();
    let mut cb = b.join(&out.welcome.unwrap()).unwrap();
    assert_eq!(ca.epoch(), cb.epoch());

    let (_, ct) = ca.send_text("hello bob", 60, false, NOW_MS).unwrap();
    let Event::Message(m) = cb.process(&ct, NOW_MS).unwrap() else {
        panic!("expected message")
    };
    assert_eq!(m.sender.user.as_str(), "alice");
    assert_eq!(
        m.content.body,
        sotto_core::content::Body::Text("hello bob".into())
    );
    assert_eq!(m.expires_at_ms, NOW_MS + 60_000);

    let (_, ct) = cb.send_text("hi alice", 60, true, NOW_MS).unwrap();
    let Event::Message(m) = ca.process(&ct, NOW_MS).unwrap() else {
        panic!("expected message")
    };
    assert_eq!(m.sender.user.as_str(), "bob");
    assert!(m.content.burn_on_read);
}

#[test]
fn a_manager_adds_and_removes_in_one_commit_and_changes_the_policy() {
    let (alice, bob, carol) = (user("alice"), user("bob"), user("carol"));
    let (a, b, c) = (device(&alice), device(&bob), device(&carol));
    let mut ca = a.create_conversation(&policy(&[&alice])).unwrap();
    let out = ca.add_and_remove(&[b.key_package().unwrap()], &[]).unwrap();
    ca.merge_pending_commit().unwrap();
    let mut cb = b.join(&out.welcome.unwrap()).unwrap();
    let bob_index = ca
        .members()
        .iter()
        .find(|m| m.identity.user.as_str() == "bob")
        .unwrap()
        .index;

    // One commit adds carol and removes bob.
    let out = ca
        .add_and_remove(&[c.key_package().unwrap()], &[bob_index])
        .unwrap();
    let summary = ca.merge_pending_commit().unwrap();
    assert_eq!(summary.added.len(), 1);
    assert_eq!(summary.added[0].user.as_str(), "carol");
    assert_eq!(summary.removed.len(), 1);
    assert_eq!(summary.removed[0].user.as_str(), "bob");
    let Event::Commit(at_bob) = cb.process(&out.commit, NOW_MS).unwrap() else {
        panic!()
    };
    assert!(at_bob.self_removed);
    let mut cc = c.join(&out.welcome.unwrap()).unwrap();
    let users: Vec<String> = cc
        .members()
        .iter()
        .map(|m| m.identity.user.to_string())
        .collect();
    assert_eq!(users.len(), 2);
    assert!(users.contains(&"alice".into()) && users.contains(&"carol".into()));

    // The manager shortens the maximum TTL; carol sees the change and the new limit holds.
    let shorter = sotto_core::policy::Policy::new(
        vec![alice.public_key().fingerprint()],
        30,
        sotto_core::policy::BurnOnRead::Required,
    )
    .unwrap();
    let out = ca.set_policy(&shorter).unwrap();
    ca.merge_pending_commit().unwrap();
    let Event::Commit(seen) = cc.process(&out.commit, NOW_MS).unwrap() else {
        panic!()
    };
    assert!(seen.policy_changed);
    assert_eq!(cc.policy(), &shorter);
    assert!(cc.send_text("too long", 60, true, NOW_MS).is_err());
    assert!(cc.send_text("not burning", 30, false, NOW_MS).is_err());
    let (_, ct) = cc.send_text("ok", 30, true, NOW_MS).unwrap();
    assert!(matches!(
        ca.process(&ct, NOW_MS).unwrap(),
        Event::Message(_)
    ));
}

#[test]
fn call_keys_agree_within_an_epoch() {
    let (_alice, ca, cb) = pair();
    let ka = ca.export_secret(b"sotto call", b"call-1", 32).unwrap();
    let kb = cb.export_secret(b"sotto call", b"call-1", 32).unwrap();
    assert_eq!(ka, kb);
    assert_ne!(ka, ca.export_secret(b"sotto call", b"call-2", 32).unwrap());
}
