//! STREAM (Hoang, Reyhanitabar, Rogaway, Vizár 2015) over AES-256-GCM:
//! chunked authenticated encryption with a counter and a last-chunk flag in
//! the nonce, so truncation, reordering, dropped or duplicated chunks and
//! bit flips are all caught. Memory is one chunk in each direction.

use std::io::{self, Read, Write};

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use zeroize::Zeroizing;

use super::crypto::PayloadKey;

pub const TAG_LEN: usize = 16;

/// Why the payload stream failed. Carried inside `io::Error` (kind
/// `InvalidData`) through zstd and tar, and recovered by `classify`.
#[derive(Debug)]
pub enum StreamError {
    /// Chunk `n` failed authentication: flipped, reordered, dropped or
    /// duplicated data, or truncation.
    Chunk(u64),
    /// The payload ends before any chunk (shorter than one tag).
    Truncated,
}

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StreamError::Chunk(n) => write!(f, "payload chunk {n} failed authentication"),
            StreamError::Truncated => f.write_str("payload is truncated"),
        }
    }
}

impl std::error::Error for StreamError {}

fn nonce(counter: u64, last: bool) -> Nonce<aes_gcm::aead::consts::U12> {
    let mut n = [0u8; 12];
    n[3..11].copy_from_slice(&counter.to_be_bytes());
    n[11] = last as u8;
    *Nonce::from_slice(&n)
}

/// Encrypts everything written to it; `finish` seals the last chunk and must
/// be called (a dropped writer leaves a stream that readers reject).
pub struct StreamWriter<W: Write> {
    inner: W,
    cipher: Aes256Gcm,
    chunk_size: usize,
    buf: Zeroizing<Vec<u8>>,
    counter: u64,
}

impl<W: Write> StreamWriter<W> {
    pub fn new(inner: W, key: &PayloadKey, chunk_size: u32) -> Self {
        let chunk_size = chunk_size as usize;
        StreamWriter {
            inner,
            cipher: key.cipher(),
            chunk_size,
            buf: Zeroizing::new(Vec::with_capacity(chunk_size + TAG_LEN)),
            counter: 0,
        }
    }

    fn seal_chunk(&mut self, last: bool) -> io::Result<()> {
        let tag = self
            .cipher
            .encrypt_in_place_detached(&nonce(self.counter, last), b"", &mut self.buf)
            .map_err(|_| io::Error::other("AES-GCM encryption failed"))?;
        self.buf.extend_from_slice(&tag);
        self.inner.write_all(&self.buf)?;
        self.buf.clear();
        self.counter += 1;
        Ok(())
    }

    /// Seals the last chunk (possibly short or empty) and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.seal_chunk(true)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for StreamWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        // A full buffer is sealed only once more data arrives, because only
        // then is it known not to be the last chunk.
        if self.buf.len() == self.chunk_size && !data.is_empty() {
            self.seal_chunk(false)?;
        }
        let n = data.len().min(self.chunk_size - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Decrypts and authenticates a stream made by `StreamWriter`. Every byte it
/// returns has been authenticated; a failure is an `InvalidData` error
/// carrying a `StreamError`.
pub struct StreamReader<R: Read> {
    inner: R,
    cipher: Aes256Gcm,
    chunk_size: usize,
    /// Ciphertext read ahead: up to one chunk plus one byte, which tells a
    /// full non-last chunk from a full last one.
    buf: Vec<u8>,
    plain: Zeroizing<Vec<u8>>,
    pos: usize,
    counter: u64,
    done: bool,
}

impl<R: Read> StreamReader<R> {
    pub fn new(inner: R, key: &PayloadKey, chunk_size: u32) -> Self {
        let chunk_size = chunk_size as usize;
        StreamReader {
            inner,
            cipher: key.cipher(),
            chunk_size,
            buf: Vec::with_capacity(chunk_size + TAG_LEN + 1),
            plain: Zeroizing::new(Vec::with_capacity(chunk_size)),
            pos: 0,
            counter: 0,
            done: false,
        }
    }

    /// The reader underneath (to read its byte count).
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    fn fail(e: StreamError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }

    fn next_chunk(&mut self) -> io::Result<()> {
        let want = self.chunk_size + TAG_LEN + 1;
        while self.buf.len() < want {
            let start = self.buf.len();
            self.buf.resize(want, 0);
            match self.inner.read(&mut self.buf[start..]) {
                Ok(0) => {
                    self.buf.truncate(start);
                    break;
                }
                Ok(n) => self.buf.truncate(start + n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => self.buf.truncate(start),
                Err(e) => {
                    self.buf.truncate(start);
                    return Err(e);
                }
            }
        }
        let last = self.buf.len() < want;
        let sealed_len = if last { self.buf.len() } else { want - 1 };
        if sealed_len < TAG_LEN {
            return Err(Self::fail(if self.counter == 0 {
                StreamError::Truncated
            } else {
                StreamError::Chunk(self.counter)
            }));
        }
        let text_len = sealed_len - TAG_LEN;
        self.plain.clear();
        self.plain.extend_from_slice(&self.buf[..text_len]);
        let tag = Tag::clone_from_slice(&self.buf[text_len..sealed_len]);
        self.cipher
            .decrypt_in_place_detached(&nonce(self.counter, last), b"", &mut self.plain, &tag)
            .map_err(|_| Self::fail(StreamError::Chunk(self.counter)))?;
        // Only the empty payload has an empty last chunk: anything else is a
        // stream cut at a boundary and re-sealed, which the writer never makes.
        if last && text_len == 0 && self.counter > 0 {
            return Err(Self::fail(StreamError::Chunk(self.counter)));
        }
        self.buf.drain(..sealed_len);
        self.pos = 0;
        self.counter += 1;
        self.done = last;
        Ok(())
    }
}

impl<R: Read> Read for StreamReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.plain.len() {
            if self.done || out.is_empty() {
                return Ok(0);
            }
            self.next_chunk()?;
        }
        let n = out.len().min(self.plain.len() - self.pos);
        out[..n].copy_from_slice(&self.plain[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::crypto::DataKey;

    const C: u32 = 4096;
    const ENC: usize = C as usize + TAG_LEN;

    fn key() -> PayloadKey {
        DataKey::from_bytes([7; 32]).payload_key(&[3; 32], 1, C)
    }

    fn seal(data: &[u8]) -> Vec<u8> {
        let mut w = StreamWriter::new(Vec::new(), &key(), C);
        // Odd write sizes exercise the buffering.
        for piece in data.chunks(1000) {
            w.write_all(piece).unwrap();
        }
        w.finish().unwrap()
    }

    fn open(sealed: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        StreamReader::new(sealed, &key(), C).read_to_end(&mut out)?;
        Ok(out)
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn round_trips_at_and_around_chunk_boundaries() {
        for len in [0, 1, 4095, 4096, 4097, 8192, 3 * 4096 + 5] {
            let d = data(len);
            let sealed = seal(&d);
            let chunks = len.div_ceil(C as usize).max(1);
            assert_eq!(sealed.len(), len + chunks * TAG_LEN, "len {len}");
            assert_eq!(open(&sealed).unwrap(), d, "len {len}");
        }
    }

    #[test]
    fn truncation_anywhere_is_rejected() {
        let sealed = seal(&data(3 * 4096 + 5));
        for cut in [
            0,
            1,
            15,
            16,
            ENC - 1,
            ENC,
            ENC + 1,
            2 * ENC,
            3 * ENC,
            sealed.len() - 1,
        ] {
            assert!(open(&sealed[..cut]).is_err(), "cut at {cut} accepted");
        }
        // Exactly at a boundary of a stream whose length is a multiple of C.
        let sealed = seal(&data(2 * 4096));
        assert!(open(&sealed[..ENC]).is_err());
    }

    #[test]
    fn swapped_dropped_duplicated_and_appended_chunks_are_rejected() {
        let sealed = seal(&data(3 * 4096 + 5));
        let chunk = |i: usize| &sealed[i * ENC..((i + 1) * ENC).min(sealed.len())];
        let swapped = [chunk(1), chunk(0), chunk(2), chunk(3)].concat();
        let dropped = [chunk(0), chunk(2), chunk(3)].concat();
        let duplicated = [chunk(0), chunk(1), chunk(1), chunk(2), chunk(3)].concat();
        let appended = [&sealed[..], b"x"].concat();
        for bad in [swapped, dropped, duplicated, appended] {
            assert!(open(&bad).is_err());
        }
    }

    #[test]
    fn every_bit_flip_is_rejected() {
        let sealed = seal(&data(4096 + 100));
        for i in 0..sealed.len() {
            for bit in [0x01u8, 0x80] {
                let mut bad = sealed.clone();
                bad[i] ^= bit;
                let err = open(&bad).unwrap_err();
                assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            }
        }
    }

    #[test]
    fn a_stream_cut_at_a_boundary_cannot_be_passed_off_as_complete() {
        // A full last chunk followed by nothing must have been sealed as last.
        let sealed = seal(&data(2 * 4096));
        let first_as_last = &sealed[..ENC];
        let err = open(first_as_last).unwrap_err();
        let inner = err.into_inner().unwrap();
        assert!(matches!(
            inner.downcast_ref::<StreamError>(),
            Some(StreamError::Chunk(0))
        ));
    }
}
