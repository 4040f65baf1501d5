//! `Read` helpers shared by the vault and legacy readers.

use std::io::{self, Read};

/// Fills `buf` as far as the reader allows; less than `buf.len()` only at
/// the end of the input.
pub fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
