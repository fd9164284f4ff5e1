//! Hostile test plugin `other-world`: a valid component for an unrelated
//! world (`acme:other/greeter@1.0.0`, see `wit/other.wit`); it exports no
//! `payhost:plugin/provider` at all. The host is expected to refuse to load it
//! with a clear error naming the missing interface, not to trap or panic.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ path: "wit", world: "other" });

struct OtherWorld;

impl exports::acme::other::greeter::Guest for OtherWorld {
    fn greet(name: String) -> String {
        format!("hello, {name}")
    }
}

export!(OtherWorld);
