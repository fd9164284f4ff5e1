//! The compiled-component cache.
//!
//! Compiling a component with Cranelift takes hundreds of milliseconds; a
//! second start of the host should not pay that again. Loading precompiled
//! code is `unsafe` in wasmtime because the bytes are trusted as machine code,
//! so an entry is only loaded when everything below holds. Whoever can put a
//! file there runs code in the host.
//!
//! - The directory is private: created `0700` (with any missing parents), and
//!   an existing one must belong to this user and be writable by no one else.
//!   Otherwise the cache is not used (logged) and the plugin is compiled.
//! - An entry is `<key>.cwasm`, where the key is the SHA-256 of the source
//!   component's bytes and the engine's compatibility hash (wasmtime version,
//!   target, every setting that affects code generation), so a changed
//!   plugin or engine misses instead of loading stale code.
//! - An entry is opened without following a symbolic link (`O_NOFOLLOW`, and
//!   `O_NONBLOCK` so a FIFO cannot hang the open), and used only if the open
//!   file is a regular file that belongs to this user and is writable by no
//!   one else.
//! - An entry starts with a header that binds it to its source: a magic line,
//!   the SHA-256 of the source bytes and the SHA-256 of the engine's
//!   compatibility hash. Both are checked before the rest is deserialised, so
//!   an entry copied or renamed from another plugin is refused, not run.
//! - Entries are written atomically: to a temp file with an unpredictable
//!   name, created exclusively (`O_EXCL`, mode `0600`) in the cache directory,
//!   then renamed over the entry. A rename replaces a symbolic link at the
//!   entry's name instead of writing through it.
//!
//! An entry that fails any check is logged, ignored and replaced by a fresh
//! compilation. Hits and stores are logged at debug level.

use std::fs::OpenOptions;
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where compiled components live, or nowhere (`--no-cache`).
#[derive(Debug, Clone)]
pub struct ComponentCache {
    dir: Option<PathBuf>,
}

/// How a component was obtained, reported by `payhost plugin info` and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded precompiled code from the cache.
    Hit,
    /// Compiled now and stored for next time.
    Stored,
    /// Compiled now; caching is off or the store failed (logged).
    Compiled,
}

/// First bytes of every entry; the version changes with the header layout.
const MAGIC: &[u8; 16] = b"payhost-cwasm 1\n";
/// Magic, SHA-256 of the source, SHA-256 of the engine compatibility hash.
const HEADER_LEN: usize = MAGIC.len() + 32 + 32;

/// Permission bits that let the group or others write.
const WRITABLE_BY_OTHERS: u32 = 0o022;

/// What an entry is for: its source's digest and its engine's.
struct Binding {
    source: [u8; 32],
    engine: [u8; 32],
}

impl Binding {
    fn new(engine: &Engine, bytes: &[u8]) -> Self {
        let mut hasher = ShaHasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Self {
            source: Sha256::digest(bytes).into(),
            engine: hasher.0.finalize().into(),
        }
    }

    /// The entry's file name: both digests hashed together, in hex.
    fn file_name(&self) -> String {
        let mut key = Sha256::new();
        key.update(self.source);
        key.update(self.engine);
        let hex: String = key.finalize().iter().map(|b| format!("{b:02x}")).collect();
        format!("{hex}.cwasm")
    }

    fn header(&self) -> Vec<u8> {
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&self.source);
        header.extend_from_slice(&self.engine);
        header
    }

    /// The serialized component after the header, if the header is ours.
    fn check<'a>(&self, entry: &'a [u8]) -> Result<&'a [u8], String> {
        if entry.len() < HEADER_LEN || &entry[..MAGIC.len()] != MAGIC {
            return Err("it lacks the payhost cache header".into());
        }
        let (source, rest) = entry[MAGIC.len()..].split_at(32);
        let (engine, code) = rest.split_at(32);
        if source != self.source {
            return Err("it was compiled from other bytes than this plugin's".into());
        }
        if engine != self.engine {
            return Err("it was compiled for another engine configuration".into());
        }
        Ok(code)
    }
}

/// Feeds `Hash` output into SHA-256 so the engine's compatibility hash can be
/// folded into the key.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        0 // unused: we read the digest, not a u64
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

impl ComponentCache {
    /// The directory from the caller, else `$XDG_CACHE_HOME/payhost`, else
    /// `$HOME/.cache/payhost`.
    pub fn new(dir: Option<PathBuf>) -> Self {
        let dir = dir.or_else(|| {
            std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
                .map(|base| base.join("payhost"))
        });
        Self { dir }
    }

    pub fn disabled() -> Self {
        Self { dir: None }
    }

    /// Returns the compiled component for `bytes`, from the cache when possible.
    pub fn load(
        &self,
        engine: &Engine,
        bytes: &[u8],
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let Some(dir) = &self.dir else {
            return Ok((Component::new(engine, bytes)?, CacheOutcome::Compiled));
        };
        if let Err(why) = private_dir(dir) {
            tracing::warn!(
                "not using the compiled-plugin cache {}: {why}",
                dir.display()
            );
            return Ok((Component::new(engine, bytes)?, CacheOutcome::Compiled));
        }
        let binding = Binding::new(engine, bytes);
        let entry = dir.join(binding.file_name());
        match read_entry(&entry) {
            Ok(None) => {}
            Ok(Some(data)) => match binding.check(&data) {
                Ok(code) => {
                    // SAFETY: `code` comes from a regular file that this user
                    // owns and no one else can write, in a directory with the
                    // same guarantees, and its header binds it to exactly
                    // these source bytes and this engine configuration; only
                    // `store` below writes such files, from the output of
                    // `Component::serialize`. See the module docs.
                    match unsafe { Component::deserialize(engine, code) } {
                        Ok(component) => {
                            tracing::debug!(
                                "compiled plugin loaded from cache {}",
                                entry.display()
                            );
                            return Ok((component, CacheOutcome::Hit));
                        }
                        Err(err) => ignore(&entry, &format!("{err:#}")),
                    }
                }
                Err(why) => ignore(&entry, &why),
            },
            Err(why) => ignore(&entry, &why),
        }
        let component = Component::new(engine, bytes)?;
        let outcome = match store(dir, &entry, &binding, &component) {
            Ok(()) => {
                tracing::debug!("compiled plugin stored in cache {}", entry.display());
                CacheOutcome::Stored
            }
            Err(err) => {
                tracing::warn!(
                    "could not write compiled-plugin cache entry {}: {err:#}",
                    entry.display()
                );
                CacheOutcome::Compiled
            }
        };
        Ok((component, outcome))
    }
}

fn ignore(entry: &Path, why: &str) {
    tracing::warn!(
        "ignoring compiled-plugin cache entry {}: {why}; compiling the plugin instead",
        entry.display()
    );
}

fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Creates `dir` (mode 0700, parents too) or checks that the existing one is
/// ours and writable by no one else.
fn private_dir(dir: &Path) -> Result<(), String> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("cannot create it: {e}"))?;
    let meta = std::fs::metadata(dir).map_err(|e| format!("cannot inspect it: {e}"))?;
    if !meta.is_dir() {
        return Err("it is not a directory".into());
    }
    owned_and_private(&meta)
}

fn owned_and_private(meta: &std::fs::Metadata) -> Result<(), String> {
    if meta.uid() != euid() {
        return Err(format!(
            "it belongs to user {}, not to this user ({})",
            meta.uid(),
            euid()
        ));
    }
    if meta.mode() & WRITABLE_BY_OTHERS != 0 {
        return Err(format!(
            "other users can write to it (mode {:o})",
            meta.mode() & 0o7777
        ));
    }
    Ok(())
}

/// The entry's bytes; `None` when there is no entry; an error saying why an
/// entry that exists cannot be trusted.
fn read_entry(entry: &Path) -> Result<Option<Vec<u8>>, String> {
    let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits() as i32)
        .open(entry)
    {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        // ELOOP: the final component is a symbolic link.
        Err(err) if err.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
            return Err("it is a symbolic link".into());
        }
        Err(err) => return Err(format!("cannot open it: {err}")),
    };
    // Checked on the open file, so it cannot be swapped after the check.
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot inspect it: {e}"))?;
    if !meta.is_file() {
        return Err("it is not a regular file".into());
    }
    owned_and_private(&meta)?;
    let mut data = Vec::with_capacity(meta.len() as usize);
    (&file)
        .read_to_end(&mut data)
        .map_err(|e| format!("cannot read it: {e}"))?;
    Ok(Some(data))
}

/// Writes the entry atomically: an exclusive temp file with a random name in
/// `dir`, then a rename over `entry`.
fn store(dir: &Path, entry: &Path, binding: &Binding, component: &Component) -> anyhow::Result<()> {
    let serialized = component.serialize()?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".payhost-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(&binding.header())?;
    tmp.write_all(&serialized)?;
    tmp.as_file().sync_all()?;
    tmp.persist(entry).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding() -> Binding {
        Binding {
            source: [1; 32],
            engine: [2; 32],
        }
    }

    #[test]
    fn an_entry_is_accepted_only_for_its_own_source_and_engine() {
        let mut entry = binding().header();
        entry.extend_from_slice(b"code");
        assert_eq!(binding().check(&entry).unwrap(), b"code");

        let other_source = Binding {
            source: [3; 32],
            ..binding()
        };
        let err = other_source.check(&entry).unwrap_err();
        assert!(err.contains("other bytes"), "{err}");

        let other_engine = Binding {
            engine: [3; 32],
            ..binding()
        };
        let err = other_engine.check(&entry).unwrap_err();
        assert!(err.contains("another engine"), "{err}");

        let err = binding().check(b"\x7fELF not ours").unwrap_err();
        assert!(err.contains("header"), "{err}");
    }

    #[test]
    fn the_file_name_covers_source_and_engine() {
        let name = binding().file_name();
        assert_eq!(name.len(), 64 + ".cwasm".len());
        let other = Binding {
            engine: [3; 32],
            ..binding()
        };
        assert_ne!(name, other.file_name());
    }

    #[test]
    fn a_missing_entry_is_a_miss_and_a_fifo_is_refused_without_hanging() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_entry(&dir.path().join("none.cwasm")), Ok(None));
        let fifo = dir.path().join("fifo.cwasm");
        rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, rustix::fs::Mode::RUSR).unwrap();
        let err = read_entry(&fifo).unwrap_err();
        assert!(err.contains("not a regular file"), "{err}");
    }

    #[test]
    fn a_new_directory_is_private_and_a_shared_one_is_refused() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("a/b");
        private_dir(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);

        let shared = base.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        let err = private_dir(&shared).unwrap_err();
        assert!(err.contains("other users can write"), "{err}");
    }
}
