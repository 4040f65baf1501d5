//! The guide's `secrets.enc` (`vault migrate`) on arbitrary bytes: the
//! openssl header (binary or base64), then, as if the password were right,
//! CBC, gzip and the tar transcode that migrate runs: never panics.
#![no_main]

use std::io::{self, Read};

use libfuzzer_sys::fuzz_target;
use safeclaw::legacy;
use safeclaw::vault::archive;

fuzz_target!(|data: &[u8]| {
    let Ok(Ok(opened)) = legacy::open(io::Cursor::new(data.to_vec())) else {
        return;
    };
    // The cheapest derivation (one MD5 round), so the fuzzer spends its
    // time past it; the seeds are encrypted this way with the password
    // "fuzz", so they decrypt to a real tar.gz.
    let settings = legacy::Settings {
        kdf: legacy::Kdf::BytesToKey,
        md: legacy::Md::Md5,
    };
    let key = legacy::derive(b"fuzz", &opened.salt, settings);
    let plain = flate2::read::GzDecoder::new(legacy::CbcReader::new(opened.ciphertext, &key));
    let mut plain = plain.take(1 << 20);
    let _ = archive::transcode(&mut plain, &mut io::sink());
});
