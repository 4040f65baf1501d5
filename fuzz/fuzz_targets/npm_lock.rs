//! An npm lock (src/image/lock.rs) on arbitrary bytes, as safeclaw reads
//! one npm wrote or one stored in the cache: `Lock::check` never panics
//! and stays within its size cap; whatever it accepts names versions of
//! the one shape allowed into paths and tags, and is accepted together
//! with the package.json safeclaw writes for those versions.
#![no_main]

use libfuzzer_sys::fuzz_target;
use safeclaw::image::lock::{self, Lock};

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = Lock::check(data) {
        assert!(lock::check_version(&v.openclaw).is_ok());
        assert!(lock::check_version(&v.node).is_ok());
        let manifest = lock::manifest_for(&v.openclaw, &v.node);
        let lock = Lock::from_bytes(manifest.as_bytes(), data).unwrap();
        assert_eq!(lock.versions(), &v);
        assert_eq!(lock.default_tag(), format!("safeclaw/openclaw:{}", v.openclaw));
    }
});
