//! Live plugin upgrade: which version of each provider's plugin is current,
//! how a new version becomes current, and how threads pick it up.
//!
//! [`LiveProviders`] holds the current [`Providers`] behind an `ArcSwap` and
//! a generation number. Threads that own plugin instances (the flow threads'
//! `ScriptHost`s, `payhost serve`'s webhook threads) remember the generation
//! they built their instances from and compare it between calls: one atomic
//! load per job or delivery, no lock. When it moved, they take the new
//! `Providers` and instantiate again (a flow thread rebuilds its Rhai
//! engine too, since a new version may bring a new schema). Work already
//! running finishes on the instance it started on.
//!
//! [`Upgrader`] turns candidate bytes into a new current version, or
//! refuses them with the reason: load (contract, names, auth and retry
//! declarations), the conformance checks of `payhost plugin check` (none of
//! them uses the network), the same provider name as the version it
//! replaces, then the operator's settings applied again (`configure`) with
//! a fresh provider policy and HTTP executor ([`Dispatcher::build`]). Only
//! then is it swapped in. Nothing half-built is ever visible.
//!
//! [`PluginWatch`] is the thread that looks for new versions: every
//! [`POLL`] it looks at each plugin file (size, modification time, inode;
//! SIGHUP makes it read the files whatever they look like) and, with a
//! Redis fleet, at the provider's current hash ([`crate::fleet`]), whose
//! bytes it verifies against the hash before loading. Both are edge
//! triggered: a file is tried again when it changes, a published hash when
//! another is published, so a refused version is logged once, not every
//! second, and the file and the fleet do not fight (the last change wins).
//! Every upgrade and every refusal is one line on stderr naming the source.
//! The watcher is the only writer of [`LiveProviders`].
//!
//! A replaced version's HTTP executor is not closed: flows still running on
//! it may send through it, and it goes when the last of them drops it.
//! Watched are the files the host loaded (each file of a `--plugin`
//! directory); a file added to the directory later is not a new provider.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::host::HostConfig;
use crate::http::OutcomeSink;
use crate::plugin::{Plugin, content_hash};
use crate::script_api::{Dispatcher, Providers};

/// How often the watcher looks for a new version.
pub const POLL: Duration = Duration::from_secs(1);

/// The current version of every provider, and a generation number that
/// moves on each upgrade.
pub struct LiveProviders {
    generation: AtomicU64,
    current: ArcSwap<Providers>,
}

impl LiveProviders {
    pub fn new(providers: Providers) -> Arc<LiveProviders> {
        Arc::new(LiveProviders {
            generation: AtomicU64::new(0),
            current: ArcSwap::from_pointee(providers),
        })
    }

    /// Moves on every upgrade. Read it before [`LiveProviders::current`]: a
    /// swap in between then shows as a newer generation next time.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The providers new work should use.
    pub fn current(&self) -> Providers {
        Providers::clone(&self.current.load())
    }

    /// Makes `dispatcher` provider `index`'s current version. Only the
    /// watcher calls this, so read-modify-write needs no lock.
    fn replace(&self, index: usize, dispatcher: Dispatcher) -> anyhow::Result<()> {
        let mut list: Vec<Dispatcher> = self.current().iter().cloned().collect();
        list[index] = dispatcher;
        self.current.store(Arc::new(Providers::new(list)?));
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }
}

/// What building a new version of a provider needs: the host's config (the
/// sandbox, cache, settings and connection of each provider) and where
/// its executor delivers outcomes.
pub struct Upgrader {
    pub(crate) live: Arc<LiveProviders>,
    pub(crate) config: HostConfig,
    pub(crate) runtime: tokio::runtime::Handle,
    pub(crate) sink: Arc<dyn OutcomeSink>,
}

/// What an upgrade attempt did.
#[derive(Debug, PartialEq, Eq)]
pub enum Upgraded {
    /// Those bytes are the current version already.
    Unchanged,
    Switched {
        from: Arc<str>,
        to: Arc<str>,
    },
}

impl Upgrader {
    /// Loads, checks and swaps in `bytes` as provider `index`'s version;
    /// `from` names their source in messages. On `Err` nothing changed.
    pub fn upgrade(&self, index: usize, bytes: &[u8], from: &Path) -> Result<Upgraded, String> {
        let old = self.live.current().get(index).clone();
        if old.plugin.hash().as_ref() == content_hash(bytes).as_str() {
            return Ok(Upgraded::Unchanged);
        }
        let plugin =
            Plugin::from_bytes(from, bytes, self.config.sandbox.clone(), &self.config.cache)
                .map_err(|e| e.problem)?
                .with_metrics(self.config.metrics.clone());
        let report = crate::check::run(|| Ok(plugin.clone()), &self.config.provider.settings);
        // The plugin's default base URL is not used when the operator gave
        // one for this provider, so its check does not count then.
        let base_url_given = self.config.provider.base_url.is_some()
            || self
                .config
                .provider
                .base_urls
                .iter()
                .any(|(name, _)| name == plugin.name());
        if let Some(failed) = report
            .checks
            .iter()
            .find(|c| !(c.passed || (base_url_given && c.name == "default base URL")))
        {
            return Err(format!("check `{}` failed: {}", failed.name, failed.detail));
        }
        if plugin.name() != old.plugin.name() {
            return Err(format!(
                "it is provider `{}`, not `{}`: an upgrade may not change the provider name",
                plugin.name(),
                old.plugin.name()
            ));
        }
        let count = self.live.current().len();
        let provider = self
            .config
            .provider_config(&plugin, count)
            .map_err(|e| format!("{e:#}"))?;
        let dispatcher =
            Dispatcher::build(&plugin, &provider, self.runtime.clone(), self.sink.clone())
                .map_err(|e| format!("{e:#}"))?;
        let to = dispatcher.plugin.hash().clone();
        self.live
            .replace(index, dispatcher)
            .map_err(|e| format!("{e:#}"))?;
        Ok(Upgraded::Switched {
            from: old.plugin.hash().clone(),
            to,
        })
    }

    /// [`Upgrader::upgrade`], with its one line on stderr.
    fn upgrade_and_log(&self, index: usize, bytes: &[u8], from: &Path, forced: bool) {
        let provider = self.live.current().get(index).plugin.name().to_string();
        match self.upgrade(index, bytes, from) {
            Ok(Upgraded::Switched { from: old, to }) => crate::say!(
                "payhost: plugin `{provider}` upgraded to {to} from {} (was {old})",
                from.display()
            ),
            Ok(Upgraded::Unchanged) if forced => crate::say!(
                "payhost: plugin `{provider}` unchanged: {} is the running version",
                from.display()
            ),
            Ok(Upgraded::Unchanged) => {}
            Err(why) => {
                let running = self.live.current().get(index).plugin.hash().clone();
                crate::say!(
                    "payhost: plugin upgrade refused: {}: {}; provider `{provider}` keeps running {running}",
                    from.display(),
                    one_line(&why)
                );
            }
        }
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The watcher thread; it stops when this is dropped (within [`POLL`]).
pub struct PluginWatch {
    _wake: crossbeam_channel::Sender<()>,
}

/// A plugin file as last seen.
#[derive(PartialEq, Eq, Clone, Copy)]
struct Stamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    inode: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some(Stamp {
        len: meta.len(),
        modified: meta.modified().ok(),
        inode,
    })
}

/// Starts watching the plugin files (and, with `fleet`, the Redis at that
/// URL) for new versions; SIGHUP makes it read the files at once.
pub fn watch(upgrader: Upgrader, fleet: Option<&str>) -> anyhow::Result<PluginWatch> {
    let (wake_tx, wake_rx) = crossbeam_channel::unbounded::<()>();
    #[cfg(unix)]
    {
        let _enter = upgrader.runtime.enter();
        let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        let wake = wake_tx.clone();
        upgrader.runtime.spawn(async move {
            while hangup.recv().await.is_some() {
                if wake.send(()).is_err() {
                    break;
                }
            }
        });
    }
    let fleet = match fleet {
        Some(url) => Some(
            upgrader
                .runtime
                .block_on(crate::queue::redis::connect(url))?,
        ),
        None => None,
    };
    let providers = upgrader.live.current();
    let files: Vec<(PathBuf, Option<Stamp>)> = providers
        .iter()
        .map(|d| (d.plugin.path().to_path_buf(), stamp(d.plugin.path())))
        .collect();
    let names: Vec<String> = providers
        .iter()
        .map(|d| d.plugin.name().to_string())
        .collect();
    std::thread::Builder::new()
        .name("payhost-plugin-watch".into())
        .spawn(move || watch_loop(upgrader, wake_rx, files, names, fleet))?;
    Ok(PluginWatch { _wake: wake_tx })
}

fn watch_loop(
    upgrader: Upgrader,
    wake: crossbeam_channel::Receiver<()>,
    mut files: Vec<(PathBuf, Option<Stamp>)>,
    names: Vec<String>,
    mut fleet: Option<redis::aio::ConnectionManager>,
) {
    // The last current hash seen in Redis per provider: a new one is tried
    // once (the first one seen too, so a worker joins the fleet's version).
    let mut fleet_seen: Vec<Option<String>> = vec![None; names.len()];
    loop {
        let forced = match wake.recv_timeout(POLL) {
            Ok(()) => true,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => false,
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
        };
        for (index, name) in names.iter().enumerate() {
            if let Some(conn) = fleet.as_mut() {
                poll_fleet(&upgrader, conn, index, name, &mut fleet_seen[index]);
            }
            let (path, last) = &mut files[index];
            let now = stamp(path);
            // A file missing for a moment (replaced by rename) is looked at
            // again next time.
            if now.is_none() || (!forced && now == *last) {
                continue;
            }
            *last = now;
            match std::fs::read(&*path) {
                Ok(bytes) => upgrader.upgrade_and_log(index, &bytes, path, forced),
                Err(e) => crate::say!(
                    "payhost: plugin upgrade refused: {}: cannot read the file: {e}",
                    path.display()
                ),
            }
        }
    }
}

fn poll_fleet(
    upgrader: &Upgrader,
    conn: &mut redis::aio::ConnectionManager,
    index: usize,
    provider: &str,
    seen: &mut Option<String>,
) {
    let runtime = &upgrader.runtime;
    let hash = match runtime.block_on(crate::fleet::current(conn, provider)) {
        Ok(Some(hash)) => hash,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!("cannot read the fleet's current plugin for `{provider}`: {e}");
            return;
        }
    };
    if seen.as_deref() == Some(hash.as_str()) {
        return;
    }
    let key = crate::queue::keys::plugin_blob(provider, &hash);
    let bytes = match runtime.block_on(crate::fleet::fetch(conn, provider, &hash)) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => {
            *seen = Some(hash);
            crate::say!("payhost: plugin upgrade refused: {key}: no such key");
            return;
        }
        Err(e) => {
            // A connection error: try again next time.
            tracing::warn!("cannot read {key}: {e}");
            return;
        }
    };
    *seen = Some(hash.clone());
    let path = PathBuf::from(&key);
    let actual = content_hash(&bytes);
    if actual != hash {
        crate::say!(
            "payhost: plugin upgrade refused: {key}: its bytes hash to {actual}, not {hash}"
        );
        return;
    }
    upgrader.upgrade_and_log(index, &bytes, &path, false);
}
