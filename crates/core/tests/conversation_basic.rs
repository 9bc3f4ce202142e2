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
