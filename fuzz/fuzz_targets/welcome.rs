//! `Device::join` with arbitrary bytes as a Welcome, for a device that has published a
//! KeyPackage and was really invited. The first input byte picks a mode: even, the rest is
//! the Welcome; odd, the rest are edits (see `common::mutate`) of the real Welcome. Nothing
//! but the untouched real Welcome may be accepted, and that one is never tried, so the
//! device's KeyPackage stays unused.
#![no_main]

mod common;

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use sotto_core::device::Device;

struct State {
    bob: Device,
    welcome: Vec<u8>,
}

fn setup() -> State {
    let (alice, bob) = (common::root("alice"), common::root("bob"));
    let (a, b) = (common::device(&alice), common::device(&bob));
    let mut ca = a.create_conversation(&common::policy(&[&alice])).unwrap();
    let out = ca.add_and_remove(&[b.key_package().unwrap()], &[]).unwrap();
    State {
        bob: b,
        welcome: out.welcome.unwrap(),
    }
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    STATE.with(|cell| {
        let mut guard = cell.borrow_mut();
        let state = guard.get_or_insert_with(setup);
        let bytes = if mode % 2 == 0 {
            rest.to_vec()
        } else {
            common::mutate(&state.welcome, rest)
        };
        if bytes == state.welcome {
            return;
        }
        assert!(
            state.bob.join(&bytes).is_err(),
            "Welcome accepted: {}",
            common::hex(&bytes)
        );
    });
});
