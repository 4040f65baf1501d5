//! A pinned skill's bundle (src/skills/bundle.rs) on arbitrary bytes, as
//! the host and the guard read it from the vault's records: never panics,
//! never allocates beyond its bounds, and whatever it accepts passes every
//! rule and encodes back to exactly the bytes it read (one canonical
//! encoding, so the hash of the bytes is the hash of the skill). The
//! front-matter reader takes the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use safeclaw::skills::bundle;

fuzz_target!(|data: &[u8]| {
    let _ = bundle::front_matter_name(data);
    if let Ok(b) = bundle::decode(data) {
        assert!(bundle::check(&b).is_ok());
        assert_eq!(&bundle::encode(&b)[..], data);
        let _ = bundle::front_matter_name(b.skill_md());
    }
});
