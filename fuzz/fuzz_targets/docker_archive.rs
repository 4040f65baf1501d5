//! The docker-archive index (`image load`, any archive given with
//! `--from`) on arbitrary bytes: never panics, bounded by its own caps.
#![no_main]

use libfuzzer_sys::fuzz_target;
use safeclaw::image::docker_archive;

fuzz_target!(|data: &[u8]| {
    let _ = docker_archive::index(data);
});
