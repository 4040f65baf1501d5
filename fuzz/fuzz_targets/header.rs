//! The header parser on arbitrary bytes: never panics, never allocates
//! beyond its bounds, and whatever it accepts serialises back to exactly
//! the bytes it read (so the MAC covers one canonical encoding).
#![no_main]

use libfuzzer_sys::fuzz_target;
use safeclaw::vault::format;

fuzz_target!(|data: &[u8]| {
    let _ = format::header_len(data);
    if let Ok(parsed) = format::parse(data) {
        let again = format::serialize_mac_input(&parsed.header).expect("accepted headers serialise");
        assert_eq!(again, parsed.mac_input);
        assert_eq!(parsed.len, data.len());
        for slot in &parsed.header.slots {
            if let format::Slot::Password(s) = slot {
                assert!(s.kdf.check().is_ok());
            }
        }
    }
});
