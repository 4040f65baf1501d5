//! The broker's hand-off (src/egress/handoff.rs) on arbitrary bytes: never
//! panics, never allocates beyond its bounds, and whatever it accepts
//! passes every rule and encodes back to exactly the bytes it read (one
//! canonical encoding).
#![no_main]

use libfuzzer_sys::fuzz_target;
use safeclaw::egress::handoff;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = handoff::decode(data) {
        assert!(handoff::check(&h).is_ok());
        assert_eq!(&handoff::encode(&h)[..], data);
    }
});
