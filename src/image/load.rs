//! A docker-archive streamed into the engine and checked: the engine's
//! image under every name the archive gives is the archive's (`identity`).

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use bollard::query_parameters::ImportImageOptionsBuilder;
use bollard::Docker;
use futures_util::StreamExt;

use super::docker_archive::{self, ArchiveIndex};
use super::identity::{self, Identity};
use super::image_id;
use super::pin::{Pin, Record};
use crate::error::{Class, Error, Result};
use crate::printer::Printer;
use crate::runtime::spec::EngineKind;

/// Loads the pinned archive and records what the engine holds it as.
pub async fn load_pinned(
    docker: &Docker,
    kind: EngineKind,
    pin: &Pin,
    printer: &Printer,
) -> Result<(Record, Loaded)> {
    // Where the record goes is checked first: no load that cannot be recorded.
    crate::paths::private_home()?;
    let loaded = load_archive(docker, kind, pin.archive(), printer).await?;
    let [repo_tag] = <[String; 1]>::try_from(loaded.index.repo_tags.clone()).map_err(|tags| {
        Error::damaged(format!(
            "the pinned archive {} names {} images; the Nix image names exactly one",
            pin.archive().display(),
            tags.len()
        ))
    })?;
    let mut record = Record {
        store_path: pin.store_path.to_path_string(),
        repo_tag,
        config_digest: loaded.index.config_digest.clone(),
        manifest_digests: Vec::new(),
    };
    // Manifest digests checked by earlier loads (into another engine) stay
    // true: they name this same config.
    if let Some(earlier) = pin
        .read_record()
        .filter(|r| r.config_digest == record.config_digest)
    {
        record.manifest_digests = earlier.manifest_digests;
    }
    if let Identity::Manifest(digest) = &loaded.identity {
        record.add_manifest_digest(digest);
    }
    pin.write_record(&record)?;
    Ok((record, loaded))
}

/// An archive in the engine, checked.
pub struct Loaded {
    pub index: ArchiveIndex,
    /// The engine's ID for the image (`identity` says what it is).
    pub image_id: String,
    pub identity: Identity,
    /// Where the manifest the ID names was read: "archive" (predicted from
    /// it), "engine" (an export, a second pass over the image), or None
    /// when the ID is the config digest.
    pub manifest_from: Option<&'static str>,
}

/// Streams a docker-archive (plain or gzip) into the engine while indexing
/// the same bytes, then checks that the engine's image under every
/// reference the archive names is the one whose config was streamed.
pub async fn load_archive(
    docker: &Docker,
    kind: EngineKind,
    path: &Path,
    printer: &Printer,
) -> Result<Loaded> {
    let file = std::fs::File::open(path).map_err(|e| Error::io("opening", path, e))?;
    let size = file
        .metadata()
        .map_err(|e| Error::io("reading", path, e))?
        .len();
    let bar = printer.bar(size, "loading");
    let counted = Counted {
        inner: BufReader::with_capacity(1 << 16, file),
        bar: bar.clone(),
    };
    // Podman 4's compatible load takes a plain docker-archive only (gzip:
    // "payload does not match any of the supported image formats"): it is
    // sent decompressed. The indexer reads either.
    let podman = matches!(kind, EngineKind::Podman { .. });
    let mut counted = counted;
    let gzip = counted
        .inner
        .fill_buf()
        .map_err(|e| Error::io("reading", path, e))?
        .starts_with(&docker_archive::GZIP_MAGIC);
    let mut file: Box<dyn Read + Send> = if podman && gzip {
        // Podman spools the upload to disk before anything is checked: a
        // gzip bomb must not fill it.
        let most = size
            .saturating_mul(GUNZIP_MAX_RATIO)
            .saturating_add(GUNZIP_ALLOWANCE);
        Box::new(Bounded {
            inner: flate2::bufread::MultiGzDecoder::new(BufReader::new(counted)),
            left: most,
            most,
        })
    } else {
        Box::new(counted)
    };
    // The indexer reads what the engine is sent, through a bounded channel:
    // memory stays at a few MiB whatever the archive's size.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
    let indexer = std::thread::spawn(move || index_stream(ChannelReader::new(rx)));
    let chunks = futures_util::stream::iter(std::iter::from_fn(move || {
        // Ctrl-C aborts the upload; the engine discards a partial load.
        if crate::interrupt::requested() {
            return Some(Err(crate::interrupt::io_error()));
        }
        let mut buf = vec![0u8; 1 << 20];
        match file.read(&mut buf) {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                // A finished or failed indexer stops listening; its verdict
                // is read after the load.
                let _ = tx.send(buf.clone());
                Some(Ok(bytes::Bytes::from(buf)))
            }
            Err(e) => Some(Err(e)),
        }
    }));
    let loaded = async {
        let mut stream = docker.import_image_stream(
            ImportImageOptionsBuilder::new().quiet(true).build(),
            chunks,
            None,
        );
        while let Some(item) = stream.next().await {
            item.map_err(|e| {
                Error::new(Class::Engine, format!("loading {}: {e}", path.display()))
            })?;
        }
        Ok::<_, Error>(())
    }
    .await;
    bar.finish_and_clear();
    let index = indexer
        .join()
        .map_err(|_| Error::failure("the archive indexer panicked"))?;
    crate::interrupt::check()?;
    // The archive's own fault explains an engine refusal better than the
    // engine does.
    let index = index.map_err(|why| {
        Error::damaged(format!(
            "{} is not a usable image archive: {why}",
            path.display()
        ))
    })?;
    loaded?;
    check_loaded(docker, path, index).await
}

/// How much larger than its file a gzipped archive may grow when it is
/// decompressed for Podman: image layers compress 2 to 5 times.
const GUNZIP_MAX_RATIO: u64 = 32;
const GUNZIP_ALLOWANCE: u64 = 1 << 30;

/// A reader that fails once more than `most` bytes came out of `inner`.
struct Bounded<R> {
    inner: R,
    left: u64,
    most: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.left = self.left.checked_sub(n as u64).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("the archive decompresses to more than {} bytes", self.most),
            )
        })?;
        Ok(n)
    }
}

/// A reader that moves the progress bar by what it reads from the file.
struct Counted<R> {
    inner: R,
    bar: indicatif::ProgressBar,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

/// After a load, the engine's image under every reference the archive
/// names (naming none, under its config digest) must be the archive's, and
/// the same image under all of them.
async fn check_loaded(docker: &Docker, path: &Path, index: ArchiveIndex) -> Result<Loaded> {
    let untagged = index.repo_tags.is_empty();
    let names = if untagged {
        std::slice::from_ref(&index.config_digest)
    } else {
        &index.repo_tags[..]
    };
    let mut found: Option<(String, Identity, Option<&'static str>)> = None;
    for name in names {
        let Some(id) = image_id(docker, name).await else {
            let err = Error::new(
                Class::Engine,
                format!(
                    "the engine accepted {} but holds no image {name}",
                    path.display()
                ),
            );
            // The containerd store does not look images up by config digest.
            return Err(if untagged {
                err.with_hint(
                    "the archive names no image (no RepoTags); an engine whose image IDs are not \
                     config digests (the containerd image store) cannot find it: save or build it \
                     with a name",
                )
            } else {
                err
            });
        };
        if let Some((first, ..)) = &found {
            if *first == id {
                continue;
            }
            return Err(Error::new(
                Class::Engine,
                format!(
                    "after loading {}, {name} is {id}, another image than {first}",
                    path.display()
                ),
            ));
        }
        // An ID that is the config digest needs nothing more; any other
        // names a manifest: the one predicted from the archive when that is
        // it (no second pass over the image), else the engine's own copy.
        let predicted = index
            .containerd_manifest
            .as_ref()
            .filter(|m| identity::digest_of(m) == id);
        let (root, manifest_from) = match predicted {
            _ if id == index.config_digest => (None, None),
            Some(manifest) => (Some(manifest.clone()), Some("archive")),
            None => (root_blob(docker, name, &id).await?, Some("engine")),
        };
        let identity =
            identity::verify(&id, &index.config_digest, root.as_deref()).map_err(|why| {
                Error::new(
                    Class::Engine,
                    format!(
                        "after loading {}, {name} is not its image: {why}",
                        path.display()
                    ),
                )
            })?;
        found = Some((id, identity, manifest_from));
    }
    let (image_id, identity, manifest_from) =
        found.ok_or_else(|| Error::failure("no image reference to check"))?;
    Ok(Loaded {
        index,
        image_id,
        identity,
        manifest_from,
    })
}

/// The blob whose digest is `id` in an export of `reference` (`docker
/// save`): on the containerd store, the image's manifest. The export is
/// read only until that blob has been seen (its entries are in name order,
/// so on average half of it).
async fn root_blob(docker: &Docker, reference: &str, id: &str) -> Result<Option<Vec<u8>>> {
    let failed = |why: String| {
        Error::new(
            Class::Engine,
            format!("exporting {reference} to check what the engine holds: {why}"),
        )
    };
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
    let wanted = id.to_string();
    let finder = std::thread::spawn(move || identity::find_blob(ChannelReader::new(rx), &wanted));
    let mut export = docker.export_image(reference);
    while let Some(chunk) = export.next().await {
        crate::interrupt::check()?;
        let chunk = chunk.map_err(|e| failed(e.to_string()))?;
        // A finder that is done stops listening: the rest is not needed.
        if tx.send(chunk.to_vec()).is_err() {
            break;
        }
    }
    drop(tx);
    finder
        .join()
        .map_err(|_| Error::failure("the export reader panicked"))?
        .map_err(failed)
}

/// Indexes a plain or gzip-compressed archive (nixpkgs' buildLayeredImage
/// writes gzip; `docker save` and streamLayeredImage plain tar).
fn index_stream<R: Read>(reader: R) -> std::result::Result<ArchiveIndex, String> {
    let mut reader = BufReader::with_capacity(1 << 16, reader);
    let head = reader.fill_buf().map_err(|e| format!("reading: {e}"))?;
    let gzip = head.starts_with(&docker_archive::GZIP_MAGIC);
    let result = if gzip {
        docker_archive::index(flate2::bufread::MultiGzDecoder::new(&mut reader))
    } else {
        docker_archive::index(&mut reader)
    };
    // Drain, so the sender never blocks on a full channel.
    let _ = std::io::copy(&mut reader, &mut std::io::sink());
    result
}

/// Bytes from another thread's chunks, for the synchronous tar readers.
struct ChannelReader {
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    buf: Vec<u8>,
    at: usize,
}

impl ChannelReader {
    fn new(rx: std::sync::mpsc::Receiver<Vec<u8>>) -> Self {
        ChannelReader {
            rx,
            buf: Vec::new(),
            at: 0,
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.buf.len() {
            match self.rx.recv() {
                Ok(next) => {
                    self.buf = next;
                    self.at = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len() - self.at);
        out[..n].copy_from_slice(&self.buf[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bounded_reader_fails_past_its_bound_and_not_before() {
        let mut within = Bounded {
            inner: &[7u8; 100][..],
            left: 100,
            most: 100,
        };
        let mut out = Vec::new();
        within.read_to_end(&mut out).unwrap();
        assert_eq!(out.len(), 100);
        let mut past = Bounded {
            inner: &[7u8; 101][..],
            left: 100,
            most: 100,
        };
        let err = past.read_to_end(&mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("more than 100 bytes"), "{err}");
    }
}
