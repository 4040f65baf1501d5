//! The tar rules on arbitrary bytes (what a vault's payload decrypts to,
//! authenticated but written by a hostile gateway): never panics, and the
//! caps of docs/vault-format.md ("Limits", "Records") bound memory and
//! work whatever the names, depth, entry count, extension headers or
//! records (a record's claimed size is checked before it is allocated).
#![no_main]

use libfuzzer_sys::fuzz_target;
use safeclaw::vault::archive;

fuzz_target!(|data: &[u8]| {
    use archive::RecordsDir::{Foreign, Records};
    // Both readings of `.safeclaw`: a version 2 vault's records, and a
    // version 1 vault's entries of the state's own (skipped).
    let _ = archive::manifest(data, Records);
    let _ = archive::manifest(data, Foreign);
    // The prefix reader host commands use for the records.
    let _ = archive::leading_records(data, Records);
    // One file of the state (the egress policy's defaults).
    let _ = archive::find_file(data, std::path::Path::new("openclaw.json"), 4 << 20);
});
