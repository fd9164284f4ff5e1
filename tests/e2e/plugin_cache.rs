//! The compiled-plugin cache runs code only from entries it wrote itself
//! for exactly the plugin being loaded: the directory is private, an entry
//! is bound to its source bytes, and symbolic links, foreign or shared files
//! and predictable temp names get nowhere.
//!
//! The tests drive `payhost plugin info --cache-dir DIR` (the real binary)
//! with debug logging, which says whether each load was a cache hit, a
//! store, or an ignored entry and why.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use payhost::plugin::{CacheOutcome, ComponentCache, Plugin, SandboxLimits};
use payhost_e2e::scenario::{RunOutput, run_command};

const STORED: &str = "compiled plugin stored in cache";
const HIT: &str = "compiled plugin loaded from cache";
const IGNORED: &str = "ignoring compiled-plugin cache entry";

/// `payhost plugin info --json <plugin> --cache-dir <cache>`; checks that it
/// succeeded and describes the plugin it was given.
fn info(plugin: &str, cache: &Path) -> RunOutput {
    let mut command = payhost_e2e::payhost();
    command
        .args(["plugin", "info", "--json"])
        .arg(payhost_e2e::plugin(plugin))
        .arg("--cache-dir")
        .arg(cache)
        .env("RUST_LOG", "payhost=debug");
    let out = run_command(command);
    out.assert_success();
    let json: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("plugin info --json printed no JSON: {e}\n{out}"));
    assert_eq!(
        json["name"],
        plugin.replace('-', "_"),
        "the plugin loaded must be the one asked for\n{out}"
    );
    out
}

#[track_caller]
fn assert_logged(out: &RunOutput, needle: &str) {
    assert!(out.stderr.contains(needle), "expected {needle:?}\n{out}");
}

/// The `*.cwasm` entries in `dir`, sorted.
fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    found.sort();
    found
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

/// A cache directory (not yet created) holding one stored Stripe entry.
fn cache_with_stripe(base: &Path) -> (PathBuf, PathBuf) {
    let cache = base.join("cache");
    assert_logged(&info("stripe", &cache), STORED);
    let stored = entries(&cache);
    assert_eq!(stored.len(), 1, "{stored:?}");
    (cache, stored[0].clone())
}

#[test]
fn entries_are_private_reused_and_bound_to_their_source() {
    let base = tempfile::tempdir().unwrap();
    let cache = base.path().join("nested/cache");
    assert_logged(&info("stripe", &cache), STORED);
    assert_eq!(mode(&cache), 0o700, "a new cache directory is private");
    assert_eq!(mode(&base.path().join("nested")), 0o700);
    let stripe_entry = entries(&cache).pop().unwrap();
    assert_eq!(mode(&stripe_entry), 0o600);

    assert_logged(&info("stripe", &cache), HIT);

    // Another plugin's compiled code under Stripe's entry name is refused,
    // not run: loading Stripe still gives Stripe.
    assert_logged(&info("spin", &cache), STORED);
    let spin_entry = entries(&cache)
        .into_iter()
        .find(|e| *e != stripe_entry)
        .unwrap();
    std::fs::copy(&spin_entry, &stripe_entry).unwrap();
    let out = info("stripe", &cache);
    assert_logged(&out, IGNORED);
    assert_logged(&out, "it was compiled from other bytes than this plugin's");
    assert_logged(&out, STORED);
    assert_logged(&info("stripe", &cache), HIT);

    // Not a cache entry at all.
    std::fs::write(&stripe_entry, b"\x7fELF and then some").unwrap();
    let out = info("stripe", &cache);
    assert_logged(&out, "it lacks the payhost cache header");
    assert_logged(&out, STORED);
}

#[test]
fn a_symlinked_entry_is_neither_followed_nor_written_through() {
    let base = tempfile::tempdir().unwrap();
    let (cache, entry) = cache_with_stripe(base.path());
    // The real compiled code moves out of the cache; a link takes its place.
    let elsewhere = base.path().join("elsewhere.cwasm");
    std::fs::rename(&entry, &elsewhere).unwrap();
    let original = std::fs::read(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &entry).unwrap();

    let out = info("stripe", &cache);
    assert_logged(&out, IGNORED);
    assert_logged(&out, "it is a symbolic link");
    assert_logged(&out, STORED);
    assert!(
        std::fs::symlink_metadata(&entry).unwrap().is_file(),
        "the link is replaced by a regular file"
    );
    assert_eq!(std::fs::read(&elsewhere).unwrap(), original);
}

#[test]
fn entries_others_can_write_or_that_others_own_are_ignored() {
    let base = tempfile::tempdir().unwrap();
    let (cache, entry) = cache_with_stripe(base.path());

    std::fs::set_permissions(&entry, PermissionsExt::from_mode(0o666)).unwrap();
    let out = info("stripe", &cache);
    assert_logged(&out, IGNORED);
    assert_logged(&out, "other users can write to it (mode 666)");
    assert_logged(&out, STORED);
    assert_eq!(mode(&entry), 0o600, "the entry is rewritten privately");

    // Ownership can only be given away by root; these tests run as root in
    // CI, and as any other user the mode check above still runs.
    if running_as_root(&entry) {
        std::os::unix::fs::chown(&entry, Some(65534), None).unwrap();
        let out = info("stripe", &cache);
        assert_logged(&out, "it belongs to user 65534");
        assert_logged(&out, STORED);
    }
}

/// Whether this process is root: files it creates belong to uid 0.
fn running_as_root(created: &Path) -> bool {
    std::fs::metadata(created).unwrap().uid() == 0
}

#[test]
fn a_cache_directory_others_can_write_is_not_used() {
    let base = tempfile::tempdir().unwrap();
    let cache = base.path().join("shared");
    std::fs::create_dir(&cache).unwrap();
    std::fs::set_permissions(&cache, PermissionsExt::from_mode(0o777)).unwrap();

    let out = info("stripe", &cache);
    assert_logged(&out, "not using the compiled-plugin cache");
    assert_logged(&out, "other users can write to it (mode 777)");
    assert!(entries(&cache).is_empty(), "nothing is written there");
}

/// The old store wrote `.<entry>.<pid>.tmp` with a plain write, which
/// follows a link planted at that name. In this process the pid is known, so
/// the test plants exactly that link (library level: the binary's pid cannot
/// be known in advance).
#[test]
fn temp_files_have_unpredictable_names_and_are_created_exclusively() {
    let base = tempfile::tempdir().unwrap();
    let stripe = payhost_e2e::plugin("stripe");
    let load = |cache: &Path| {
        Plugin::load(
            &stripe,
            SandboxLimits::default(),
            &ComponentCache::new(Some(cache.to_path_buf())),
        )
        .unwrap()
        .cache_outcome()
    };
    let first = base.path().join("first");
    assert_eq!(load(&first), CacheOutcome::Stored);
    let name = entries(&first)[0].file_name().unwrap().to_owned();

    let second = base.path().join("second");
    std::fs::create_dir(&second).unwrap();
    let victim = base.path().join("victim");
    std::fs::write(&victim, "must stay").unwrap();
    let planted = second.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    std::os::unix::fs::symlink(&victim, &planted).unwrap();

    assert_eq!(load(&second), CacheOutcome::Stored);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "must stay");
    let stored = second.join(&name);
    assert!(std::fs::symlink_metadata(&stored).unwrap().is_file());
    assert_eq!(load(&second), CacheOutcome::Hit);
}
