//! A walk through Sotto's protocol core, in one process and without a server:
//! two users register root keys, certify devices, open a conversation on MLS suite 0x0005,
//! exchange messages, compare safety numbers, and a non-manager's attempt to add someone
//! is refused.
//!
//! Run with `cargo run -p sotto-core --example demo`.

use std::error::Error;
use std::time::{SystemTime, UNIX_EPOCH};

use sotto_core::content::Body;
use sotto_core::conversation::Event;
use sotto_core::device::{Device, NewDevice};
use sotto_core::identity::{UserId, UserRootKey};
use sotto_core::policy::{BurnOnRead, Policy};
use sotto_core::safety::safety_number;

fn main() -> Result<(), Box<dyn Error>> {
    let now_ms = u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis())?;
    let now = now_ms / 1000;

    let alice = UserRootKey::generate(UserId::new("alice")?)?;
    let bob = UserRootKey::generate(UserId::new("bob")?)?;
    let carol = UserRootKey::generate(UserId::new("carol")?)?;
    let alice_phone = Device::in_memory(NewDevice::generate(&alice, now)?)?;
    let bob_laptop = Device::in_memory(NewDevice::generate(&bob, now)?)?;
    let carol_phone = Device::in_memory(NewDevice::generate(&carol, now)?)?;
    println!("alice, bob and carol each made a root key and certified one device");

    let policy = Policy::new(
        vec![alice.public_key().fingerprint()],
        3600,
        BurnOnRead::Allowed,
    )?;
    let mut at_alice = alice_phone.create_conversation(&policy)?;
    let out = at_alice.add_and_remove(&[bob_laptop.key_package()?], &[])?;
    at_alice.merge_pending_commit()?;
    let mut at_bob = bob_laptop.join(&out.welcome.ok_or("no welcome")?)?;
    println!(
        "alice (manager) created a conversation and added bob; epoch {}",
        at_bob.epoch()
    );

    let (_, ciphertext) = at_alice.send_text(
        "Lunch at noon? This message lives one hour.",
        3600,
        false,
        now_ms,
    )?;
    println!("alice sends {} bytes of ciphertext", ciphertext.len());
    if let Event::Message(m) = at_bob.process(&ciphertext, now_ms)? {
        if let Body::Text(text) = &m.content.body {
            println!(
                "bob reads from {}: {text:?} (expires in {} s)",
                m.sender.user,
                (m.expires_at_ms - now_ms) / 1000
            );
        }
    }
    match at_bob.process(&ciphertext, now_ms) {
        Err(e) => println!("the server replays it to bob: refused ({e})"),
        Ok(_) => return Err("a replay was accepted".into()),
    }
    match at_alice.send_text("too long-lived", 7200, false, now_ms) {
        Err(e) => println!("alice tries a two-hour TTL: refused ({e})"),
        Ok(_) => return Err("a TTL above the policy was accepted".into()),
    }
    match at_bob.add_and_remove(&[carol_phone.key_package()?], &[]) {
        Err(e) => println!("bob (not a manager) tries to add carol: refused ({e})"),
        Ok(_) => return Err("a non-manager add was accepted".into()),
    }

    let at_a = safety_number(
        "alice",
        alice.public_key().as_bytes(),
        "bob",
        bob.public_key().as_bytes(),
    )?;
    let at_b = safety_number(
        "bob",
        bob.public_key().as_bytes(),
        "alice",
        alice.public_key().as_bytes(),
    )?;
    println!("safety number at alice: {at_a}");
    println!("safety number at bob:   {at_b}");
    println!("they match: {}", at_a.matches(&at_b.to_string()));
    Ok(())
}
