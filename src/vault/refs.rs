//! Version 4's references (docs/vault-format.md, "Blobs"): a tar stream in
//! which a regular file larger than `blobs::INLINE_MAX` is replaced by an
//! entry of type `REF_TYPE` whose content is the file's size and the ids
//! of its blocks. Both directions are tar-to-tar transforms over bytes, so
//! every archive reader and writer above them (pack, rewrite, unpack,
//! check, the records reader) works unchanged on ordinary tar:
//!
//! - `Dehydrate` (a `Write`), between a tar writer and the payload: cuts
//!   the content of large regular files into blocks, stores the ones the
//!   store lacks, and writes references;
//! - `Rehydrate` (a `Read`), between the payload and a tar reader: turns
//!   each reference back into a regular file whose content it reads,
//!   authenticated, from the store;
//! - `referenced`: the ids a payload references, without reading a blob.
//!
//! Only the 512-byte header blocks are looked at: their type (offset 156)
//! and size; every other byte passes through as it is. The content of a
//! reference is `size (8, big-endian) | id (32)` per block, exactly
//! `ceil(size / BLOCK)` ids, `size <= MAX_FILE`: checked before a block is
//! read, and ids are read one at a time, so nothing is allocated for them.

use std::io::{self, Read, Write};

use zeroize::Zeroizing;

use super::blobs::{self, BLOCK, INLINE_MAX, MAX_FILE};
use super::crypto::BlobId;

/// The tar entry type of a reference: a vendor type (`A`-`Z` are left to
/// implementations by POSIX), which a reader without this module refuses.
pub const REF_TYPE: u8 = b'B';
const TAR_BLOCK: usize = 512;
const TYPE_OFFSET: usize = 156;
const ID_LEN: usize = 32;
/// The size field of a reference is this plus `ID_LEN` per block.
const SIZE_LEN: u64 = 8;

fn padding(len: u64) -> u64 {
    (TAR_BLOCK as u64 - len % TAR_BLOCK as u64) % TAR_BLOCK as u64
}

fn blocks_of(size: u64) -> u64 {
    size.div_ceil(BLOCK as u64)
}

fn malformed(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// The size an entry's header gives its content (none for a zero block).
fn entry_size(header: &[u8; TAR_BLOCK]) -> io::Result<u64> {
    if is_end(header) {
        return Ok(0);
    }
    tar::Header::from_byte_slice(header).entry_size()
}

/// A zero block: the end of the archive for every tar reader, which stops
/// there. What follows is passed through as it is, never resolved, so a
/// reference no reader sees costs nothing (and keeps nothing alive).
fn is_end(header: &[u8; TAR_BLOCK]) -> bool {
    header.iter().all(|b| *b == 0)
}

/// An entry's content with its padding, checked (a base-256 size can be
/// anything up to 2^64 - 1).
fn padded(size: u64) -> io::Result<u64> {
    size.checked_add(padding(size))
        .ok_or_else(|| malformed("an entry larger than any file"))
}

/// Headers a version 4 payload never holds: PAX extensions, which can
/// change the size of the next entry for the tar reader but not for the
/// byte-level transforms here. safeclaw's writers use GNU headers.
fn refuse_pax(header: &[u8; TAR_BLOCK]) -> io::Result<()> {
    match header[TYPE_OFFSET] {
        b'x' | b'g' => Err(malformed("a PAX extension header in a version 4 payload")),
        _ => Ok(()),
    }
}

/// Counts the blocks a payload references, over all its references: at
/// most `blobs::MAX_BLOBS`, so a small payload cannot make a reader read
/// one block a billion times.
#[derive(Default)]
struct Budget(u64);

impl Budget {
    fn spend(&mut self, blocks: u64) -> io::Result<()> {
        self.0 += blocks;
        if self.0 > blobs::MAX_BLOBS as u64 {
            return Err(malformed(
                "a payload referencing more blocks than a vault can hold",
            ));
        }
        Ok(())
    }
}

/// `header` with another type and size, its checksum made again.
fn retyped(header: &[u8; TAR_BLOCK], kind: u8, size: u64) -> [u8; TAR_BLOCK] {
    let mut h = tar::Header::new_old();
    h.as_mut_bytes().copy_from_slice(header);
    h.set_entry_type(tar::EntryType::new(kind));
    h.set_size(size);
    h.set_cksum();
    *h.as_bytes()
}

/// The file size a reference's content starts with, checked against the
/// content's length (`body`, from its header) before anything else.
fn reference_size(body: u64, input: &mut impl Read) -> io::Result<u64> {
    if body < SIZE_LEN || body > SIZE_LEN + ID_LEN as u64 * blocks_of(MAX_FILE) {
        return Err(malformed("a block reference of an impossible length"));
    }
    let mut size = [0u8; SIZE_LEN as usize];
    input.read_exact(&mut size)?;
    let size = u64::from_be_bytes(size);
    if size > MAX_FILE || body != SIZE_LEN + ID_LEN as u64 * blocks_of(size) {
        return Err(malformed("a block reference that does not match its size"));
    }
    Ok(size)
}

/// Reads a header block; None at the end of the input.
fn read_header(input: &mut impl Read) -> io::Result<Option<[u8; TAR_BLOCK]>> {
    let mut header = [0u8; TAR_BLOCK];
    match crate::io_util::read_full(input, &mut header)? {
        0 => Ok(None),
        TAR_BLOCK => Ok(Some(header)),
        _ => Err(io::ErrorKind::UnexpectedEof.into()),
    }
}

fn skip(input: &mut impl Read, len: u64) -> io::Result<()> {
    let copied = io::copy(&mut input.take(len), &mut io::sink())?;
    if copied != len {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

/// Calls `each` with every id a reference in `payload` (a version 4 tar
/// stream) names, reading no blob; the payload is read to its end.
pub fn referenced(mut payload: impl Read, each: &mut dyn FnMut(BlobId)) -> io::Result<()> {
    let mut budget = Budget::default();
    while let Some(header) = read_header(&mut payload)? {
        if is_end(&header) {
            io::copy(&mut payload, &mut io::sink())?;
            break;
        }
        refuse_pax(&header)?;
        let size = entry_size(&header)?;
        if header[TYPE_OFFSET] != REF_TYPE {
            skip(&mut payload, padded(size)?)?;
            continue;
        }
        let file = reference_size(size, &mut payload)?;
        budget.spend(blocks_of(file))?;
        for _ in 0..blocks_of(file) {
            let mut id = [0u8; ID_LEN];
            payload.read_exact(&mut id)?;
            each(id);
        }
        skip(&mut payload, padding(size))?;
    }
    Ok(())
}

enum Reading {
    Header,
    /// Bytes of an ordinary entry's content and padding still to copy.
    Copy(u64),
    /// A reference being read back: file bytes left, of them the ones
    /// whose block was not asked for yet, then the file's padding to write
    /// and the reference's padding to skip.
    Blocks {
        left: u64,
        unasked: u64,
        pad: u64,
        skip: u64,
    },
    /// After the end of the archive: the rest as it is.
    Rest,
    End,
}

/// A version 4 payload as ordinary tar: references become regular files.
pub struct Rehydrate<R> {
    input: R,
    blobs: Fetcher,
    out: Zeroizing<Vec<u8>>,
    pos: usize,
    state: Reading,
    budget: Budget,
    /// Set by an error: what was read no longer lines up, so every later
    /// read fails too.
    failed: bool,
}

impl<R: Read> Rehydrate<R> {
    pub fn new(input: R, blobs: blobs::Reader) -> Self {
        Rehydrate {
            input,
            blobs: Fetcher::new(blobs),
            out: Zeroizing::new(Vec::new()),
            pos: 0,
            state: Reading::Header,
            budget: Budget::default(),
            failed: false,
        }
    }

    /// Fills `out` with what comes next; leaves it empty only at the end.
    fn step(&mut self) -> io::Result<()> {
        self.out.clear();
        self.pos = 0;
        loop {
            match self.state {
                Reading::End => return Ok(()),
                Reading::Header => {
                    let Some(header) = read_header(&mut self.input)? else {
                        self.state = Reading::End;
                        return Ok(());
                    };
                    if is_end(&header) {
                        self.out.extend_from_slice(&header);
                        self.state = Reading::Rest;
                        return Ok(());
                    }
                    refuse_pax(&header)?;
                    let size = entry_size(&header)?;
                    if header[TYPE_OFFSET] == REF_TYPE {
                        let file = reference_size(size, &mut self.input)?;
                        self.budget.spend(blocks_of(file))?;
                        self.out.extend_from_slice(&retyped(
                            &header,
                            tar::EntryType::Regular.as_byte(),
                            file,
                        ));
                        self.state = Reading::Blocks {
                            left: file,
                            unasked: file,
                            pad: padding(file),
                            skip: padding(size),
                        };
                    } else {
                        self.out.extend_from_slice(&header);
                        self.state = Reading::Copy(padded(size)?);
                    }
                    return Ok(());
                }
                Reading::Rest => {
                    self.out.resize(64 * 1024, 0);
                    let n = self.input.read(&mut self.out)?;
                    self.out.truncate(n);
                    if n == 0 {
                        self.state = Reading::End;
                    }
                    return Ok(());
                }
                Reading::Copy(0) => self.state = Reading::Header,
                Reading::Copy(left) => {
                    let want = left.min(64 * 1024) as usize;
                    self.out.resize(want, 0);
                    let n = self.input.read(&mut self.out)?;
                    if n == 0 {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                    self.out.truncate(n);
                    self.state = Reading::Copy(left - n as u64);
                    return Ok(());
                }
                Reading::Blocks {
                    left,
                    mut unasked,
                    pad,
                    skip,
                } if left > 0 => {
                    while unasked > 0 && self.blobs.in_flight < AHEAD {
                        let mut id = [0u8; ID_LEN];
                        self.input.read_exact(&mut id)?;
                        let len = unasked.min(BLOCK as u64);
                        self.blobs.ask(id, len as usize)?;
                        unasked -= len;
                    }
                    self.out = self.blobs.take()?;
                    self.state = Reading::Blocks {
                        left: left - self.out.len() as u64,
                        unasked,
                        pad,
                        skip,
                    };
                    return Ok(());
                }
                Reading::Blocks { pad, skip: s, .. } => {
                    skip(&mut self.input, s)?;
                    self.state = Reading::Header;
                    if pad > 0 {
                        self.out.resize(pad as usize, 0);
                        return Ok(());
                    }
                }
            }
        }
    }
}

/// Blocks asked for ahead of the one being read back.
const AHEAD: usize = 4;

/// Reads blocks ahead, on threads of their own (one per core, two at
/// most), in the order asked: the reader authenticates and decompresses
/// the next blocks while the one before is written or checked.
struct Fetcher {
    /// Until the threads start (at the first block asked for).
    blobs: Option<blobs::Reader>,
    lanes: Vec<Lane>,
    /// Without a thread (a process limit): blocks read on the caller's,
    /// in the order asked.
    inline: Option<(blobs::Reader, std::collections::VecDeque<(BlobId, usize)>)>,
    asked: usize,
    taken: usize,
    in_flight: usize,
}

/// One reading thread: asked in turn, answering in the order asked.
struct Lane {
    ask: std::sync::mpsc::SyncSender<(BlobId, usize)>,
    answer: std::sync::mpsc::Receiver<io::Result<Zeroizing<Vec<u8>>>>,
}

impl Fetcher {
    fn new(blobs: blobs::Reader) -> Self {
        Fetcher {
            blobs: Some(blobs),
            lanes: Vec::new(),
            inline: None,
            asked: 0,
            taken: 0,
            in_flight: 0,
        }
    }

    fn start(&mut self) -> io::Result<()> {
        let Some(first) = self.blobs.take() else {
            return Ok(());
        };
        let count = std::thread::available_parallelism().map_or(1, |n| n.get().min(2));
        for _ in 0..count {
            let mut reader = first.another();
            let (ask, asked) = std::sync::mpsc::sync_channel::<(BlobId, usize)>(AHEAD);
            let (answered, answer) = std::sync::mpsc::sync_channel(AHEAD);
            // Ends when the reader is dropped (no more asks) or gone.
            let spawned = std::thread::Builder::new()
                .name("blob-reader".into())
                .spawn(move || {
                    while let Ok((id, len)) = asked.recv() {
                        if answered.send(reader.read(&id, len)).is_err() {
                            return;
                        }
                    }
                });
            if spawned.is_ok() {
                self.lanes.push(Lane { ask, answer });
            }
        }
        if self.lanes.is_empty() {
            self.inline = Some((first, std::collections::VecDeque::new()));
        }
        Ok(())
    }

    fn ask(&mut self, id: BlobId, len: usize) -> io::Result<()> {
        self.start()?;
        if let Some((_, queue)) = self.inline.as_mut() {
            queue.push_back((id, len));
        } else {
            let lane = &self.lanes[self.asked % self.lanes.len()];
            lane.ask
                .send((id, len))
                .map_err(|_| blobs::thread_failure("a thread that reads blocks stopped"))?;
        }
        self.asked += 1;
        self.in_flight += 1;
        Ok(())
    }

    fn take(&mut self) -> io::Result<Zeroizing<Vec<u8>>> {
        let block = match self.inline.as_mut() {
            Some((reader, queue)) => {
                let (id, len) = queue
                    .pop_front()
                    .ok_or_else(|| blobs::thread_failure("no block was asked for"))?;
                reader.read(&id, len)
            }
            None => {
                let lane = self
                    .lanes
                    .get(self.taken % self.lanes.len().max(1))
                    .ok_or_else(|| blobs::thread_failure("no block was asked for"))?;
                lane.answer
                    .recv()
                    .map_err(|_| blobs::thread_failure("a thread that reads blocks stopped"))?
            }
        };
        self.taken += 1;
        self.in_flight -= 1;
        block
    }
}

impl<R: Read> Read for Rehydrate<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.failed {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the payload failed to read before",
            ));
        }
        if self.pos == self.out.len() {
            if let Err(e) = self.step() {
                self.failed = true;
                return Err(e);
            }
        }
        let n = buf.len().min(self.out.len() - self.pos);
        buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

enum Writing {
    Header,
    /// Bytes of an ordinary entry's content and padding still to pass.
    Pass(u64),
    /// A large file's content: bytes left, then the reference's padding
    /// to write and the file's padding to drop.
    Content {
        left: u64,
        pad: u64,
        drop: u64,
    },
    Drop(u64),
    /// What was given is not a tar stream this writer made (a header it
    /// cannot read): the rest passes through as it is, for the reader to
    /// judge, as it would without references.
    Verbatim,
}

/// Ordinary tar in, a version 4 payload out (to `inner`): regular files
/// over `INLINE_MAX` are stored as blocks in `blobs` and referenced.
pub struct Dehydrate<'a> {
    inner: &'a mut dyn Write,
    blobs: &'a mut blobs::Writer,
    header: [u8; TAR_BLOCK],
    filled: usize,
    block: Zeroizing<Vec<u8>>,
    state: Writing,
}

impl<'a> Dehydrate<'a> {
    pub fn new(inner: &'a mut dyn Write, blobs: &'a mut blobs::Writer) -> Self {
        Dehydrate {
            inner,
            blobs,
            header: [0; TAR_BLOCK],
            filled: 0,
            block: Zeroizing::new(Vec::with_capacity(BLOCK)),
            state: Writing::Header,
        }
    }

    /// Checks that the tar stream ended between entries.
    pub fn finish(self) -> io::Result<()> {
        match (&self.state, self.filled) {
            (Writing::Header, 0) | (Writing::Verbatim, _) => Ok(()),
            (Writing::Header, n) => self.inner.write_all(&self.header[..n]),
            _ => Err(io::Error::other("the archive ended inside an entry")),
        }
    }

    fn header_done(&mut self) -> io::Result<()> {
        self.filled = 0;
        let Ok(size) = entry_size(&self.header) else {
            self.inner.write_all(&self.header)?;
            self.state = Writing::Verbatim;
            return Ok(());
        };
        let regular = self.header[TYPE_OFFSET] == tar::EntryType::Regular.as_byte();
        if !regular || size <= INLINE_MAX {
            self.inner.write_all(&self.header)?;
            self.state = Writing::Pass(padded(size)?);
            return Ok(());
        }
        if size > MAX_FILE {
            return Err(io::Error::other(format!(
                "a file of more than {} GiB cannot be sealed",
                MAX_FILE >> 30
            )));
        }
        let body = SIZE_LEN + ID_LEN as u64 * blocks_of(size);
        self.inner
            .write_all(&retyped(&self.header, REF_TYPE, body))?;
        self.inner.write_all(&size.to_be_bytes())?;
        self.state = Writing::Content {
            left: size,
            pad: padding(body),
            drop: padding(size),
        };
        Ok(())
    }

    /// What comes after a block of a large file: more of it, or the
    /// reference's padding and then the file's, dropped.
    fn content_left(&mut self, left: u64, pad: u64, drop: u64) -> io::Result<Writing> {
        if left > 0 {
            return Ok(Writing::Content { left, pad, drop });
        }
        self.inner.write_all(&[0u8; TAR_BLOCK][..pad as usize])?;
        Ok(Writing::Drop(drop))
    }

    fn block_done(&mut self) -> io::Result<()> {
        let id = self.blobs.keys().id_of(&self.block);
        self.blobs.put(&id, &self.block)?;
        self.block.clear();
        self.inner.write_all(&id)
    }
}

impl Write for Dehydrate<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while !rest.is_empty() {
            match self.state {
                Writing::Header => {
                    let n = rest.len().min(TAR_BLOCK - self.filled);
                    self.header[self.filled..self.filled + n].copy_from_slice(&rest[..n]);
                    self.filled += n;
                    rest = &rest[n..];
                    if self.filled == TAR_BLOCK {
                        self.header_done()?;
                    }
                }
                Writing::Pass(left) => {
                    let n = rest.len().min(left as usize);
                    self.inner.write_all(&rest[..n])?;
                    rest = &rest[n..];
                    self.state = match left - n as u64 {
                        0 => Writing::Header,
                        l => Writing::Pass(l),
                    };
                }
                // A whole block as given: hashed, and stored if new, where
                // it lies (the seal's reads come a block at a time).
                Writing::Content { left, pad, drop }
                    if self.block.is_empty() && rest.len() >= BLOCK && left >= BLOCK as u64 =>
                {
                    let (block, after) = rest.split_at(BLOCK);
                    let id = self.blobs.keys().id_of(block);
                    self.blobs.put(&id, block)?;
                    self.inner.write_all(&id)?;
                    rest = after;
                    self.state = self.content_left(left - BLOCK as u64, pad, drop)?;
                }
                Writing::Content { left, pad, drop } => {
                    let room = BLOCK - self.block.len();
                    let n = rest.len().min(room).min(left as usize);
                    self.block.extend_from_slice(&rest[..n]);
                    rest = &rest[n..];
                    let left = left - n as u64;
                    if self.block.len() == BLOCK || left == 0 {
                        self.block_done()?;
                    }
                    self.state = self.content_left(left, pad, drop)?;
                }
                Writing::Verbatim => {
                    self.inner.write_all(rest)?;
                    rest = &[];
                }
                Writing::Drop(left) => {
                    let n = rest.len().min(left as usize);
                    rest = &rest[n..];
                    self.state = match left - n as u64 {
                        0 => Writing::Header,
                        l => Writing::Drop(l),
                    };
                }
            }
        }
        // An entry whose last bytes were just written is over.
        if let Writing::Drop(0) | Writing::Pass(0) = self.state {
            self.state = Writing::Header;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar of `entries` (name, type, content) with GNU headers, ended.
    fn tar_of(entries: &[(&str, u8, Vec<u8>)], after_end: &[u8]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, content) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::new(*kind));
            h.set_size(content.len() as u64);
            h.set_mode(0o600);
            b.append_data(&mut h, name, &content[..]).unwrap();
        }
        let mut out = b.into_inner().unwrap();
        out.extend_from_slice(after_end);
        out
    }

    fn reference(size: u64, ids: &[[u8; 32]]) -> Vec<u8> {
        let mut body = size.to_be_bytes().to_vec();
        for id in ids {
            body.extend_from_slice(id);
        }
        body
    }

    fn ids_of(payload: &[u8]) -> io::Result<Vec<BlobId>> {
        let mut ids = Vec::new();
        referenced(payload, &mut |id| ids.push(id))?;
        Ok(ids)
    }

    #[test]
    fn references_are_read_as_written_and_checked_against_their_size() {
        let good = tar_of(
            &[(
                "f",
                REF_TYPE,
                reference(BLOCK as u64 + 1, &[[1; 32], [2; 32]]),
            )],
            &[],
        );
        assert_eq!(ids_of(&good).unwrap(), [[1; 32], [2; 32]]);
        // One id short, one too many, a size beyond 1 TiB.
        for bad in [
            reference(BLOCK as u64 + 1, &[[1; 32]]),
            reference(5, &[[1; 32], [2; 32]]),
            reference(MAX_FILE + 1, &[[1; 32]]),
        ] {
            let payload = tar_of(&[("f", REF_TYPE, bad)], &[]);
            assert_eq!(
                ids_of(&payload).unwrap_err().kind(),
                io::ErrorKind::InvalidData
            );
        }
    }

    #[test]
    fn nothing_after_the_end_of_the_archive_is_resolved() {
        let late = tar_of(&[("late", REF_TYPE, reference(10, &[[9; 32]]))], &[]);
        let payload = tar_of(&[("f", REF_TYPE, reference(10, &[[1; 32]]))], &late);
        assert_eq!(ids_of(&payload).unwrap(), [[1; 32]]);
    }

    #[test]
    fn pax_headers_and_impossible_sizes_are_refused_not_panicked_on() {
        let pax = tar_of(&[("p", b'x', b"9 size=0\n".to_vec())], &[]);
        assert_eq!(ids_of(&pax).unwrap_err().kind(), io::ErrorKind::InvalidData);
        // A base-256 size of 2^64 - 1 on an ordinary entry.
        let mut huge = tar_of(&[("h", b'0', Vec::new())], &[]);
        let mut h = tar::Header::new_gnu();
        h.as_mut_bytes().copy_from_slice(&huge[..TAR_BLOCK]);
        h.as_mut_bytes()[124..136].copy_from_slice(&[0xff; 12]);
        h.set_cksum();
        huge[..TAR_BLOCK].copy_from_slice(h.as_bytes());
        assert!(ids_of(&huge).is_err());
    }

    #[test]
    fn a_payload_references_at_most_max_blobs_blocks_in_all() {
        let mut budget = Budget::default();
        budget.spend(blobs::MAX_BLOBS as u64).unwrap();
        assert_eq!(
            budget.spend(1).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }
}
