//! The compiled-component cache.
//!
//! Compiling a component with Cranelift takes hundreds of milliseconds; a
//! second start of the host should not pay that again. Compiled artifacts are
//! stored as `<sha256>.cwasm`, where the hash covers the component's bytes and
//! the engine's compatibility hash (wasmtime version, target, every setting
//! that affects code generation). A changed plugin or a changed engine
//! configuration therefore misses the cache instead of loading stale code.
//!
//! Loading precompiled code is `unsafe` in wasmtime because the bytes are
//! trusted as machine code. Entries are only ever written by this module,
//! atomically (temp file + rename), under a directory the operator chose; an
//! entry that fails to deserialize is treated as a miss and rewritten.

use std::hash::{Hash, Hasher};
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

    pub fn key(engine: &Engine, bytes: &[u8]) -> String {
        let mut hasher = ShaHasher(Sha256::new());
        hasher.write(bytes);
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let digest = hasher.0.finalize();
        digest.iter().map(|b| format!("{b:02x}")).collect()
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
        let entry = dir.join(format!("{}.cwasm", Self::key(engine, bytes)));
        if entry.exists() {
            // SAFETY: entries are written only by `store` below from the output
            // of `Component::serialize` for a key that covers the source bytes
            // and the engine configuration; see the module docs.
            match unsafe { Component::deserialize_file(engine, &entry) } {
                Ok(component) => return Ok((component, CacheOutcome::Hit)),
                Err(err) => tracing::warn!(
                    "ignoring unreadable compiled-plugin cache entry {}: {err:#}",
                    entry.display()
                ),
            }
        }
        let component = Component::new(engine, bytes)?;
        let outcome = match store(&entry, &component) {
            Ok(()) => CacheOutcome::Stored,
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

fn store(entry: &Path, component: &Component) -> anyhow::Result<()> {
    let dir = entry.parent().expect("cache entries live in a directory");
    std::fs::create_dir_all(dir)?;
    let serialized = component.serialize()?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        entry.file_name().unwrap().to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&tmp, serialized)?;
    std::fs::rename(&tmp, entry)?;
    Ok(())
}
