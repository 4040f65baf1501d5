//! Version 4's references on arbitrary bytes (what a payload decrypts to,
//! authenticated but written by a hostile gateway): never panics, never
//! allocates for a reference's claimed size or block count, and a
//! reference whose blocks are missing is an error, not a hang. The store
//! does not exist, so every block read fails as missing; the tar rules
//! then run on what the references turn back into.
#![no_main]

use libfuzzer_sys::fuzz_target;
use safeclaw::vault::{archive, blobs, crypto::DataKey, refs};

fuzz_target!(|data: &[u8]| {
    let keys = DataKey::from_bytes([7; 32]).blob_keys();
    let mut count = 0u64;
    let _ = refs::referenced(data, &mut |_| count += 1);
    let store = blobs::Reader::new(std::path::Path::new("/nonexistent-safeclaw-fuzz"), keys);
    let rehydrated = refs::Rehydrate::new(data, store);
    let _ = archive::manifest(rehydrated, archive::RecordsDir::Records);
});
