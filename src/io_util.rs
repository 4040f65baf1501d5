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

/// The whole of the regular file at `path`, refused (before more is read)
/// when it holds more than `max` bytes.
pub fn read_bounded(path: &std::path::Path, max: u64) -> crate::error::Result<Vec<u8>> {
    use crate::error::Error;
    let file = crate::private_fs::open_regular(path)?;
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io("reading", path, e))?;
    if bytes.len() as u64 > max {
        return Err(Error::usage(format!(
            "{} is larger than {max} bytes",
            path.display()
        )));
    }
    Ok(bytes)
}
