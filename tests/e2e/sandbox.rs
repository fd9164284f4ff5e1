//! Hostile plugins fail their one call, clearly and in bounded time, and the
//! host stays usable. Files that are not this contract are refused at load.
//!
//! The plugins are real components built from `tests/plugins/*` by
//! `cargo xtask plugins`.

use std::path::Path;
use std::time::{Duration, Instant};

use payhost::outbound::Destination;
use payhost::plugin::{
    CONTRACT_VERSION, ComponentCache, Plugin, PluginCallError, SandboxLimits, StoreCounts, wit,
};

fn load(name: &str) -> Plugin {
    Plugin::load(
        &payhost_e2e::plugin(name),
        SandboxLimits::default(),
        &ComponentCache::disabled(),
    )
    .unwrap_or_else(|e| panic!("{name} should load: {e}"))
}

fn load_error(path: &Path) -> String {
    match Plugin::load(path, SandboxLimits::default(), &ComponentCache::disabled()) {
        Ok(_) => panic!("{} should be refused", path.display()),
        Err(e) => e.to_string(),
    }
}

fn thing(name: Option<&str>) -> wit::RequestInput {
    let params = match name {
        Some(n) => serde_json::json!({ "name": n }),
        None => serde_json::json!({}),
    };
    let tree = |v| payhost::plugin::json_to_tree(&v).expect("a small tree");
    wit::RequestInput {
        id: None,
        parent: None,
        params: tree(params),
        extra: tree(serde_json::json!({})),
    }
}

/// Calls build-request once and returns the error, then proves the same
/// instance works again.
fn failing_call(name: &str) -> (PluginCallError, Duration) {
    let plugin = load(name);
    let mut instance = plugin.instantiate().unwrap();
    let started = Instant::now();
    let err = match instance.build_request("thing", "create", &thing(None)) {
        Err(err) => err,
        Ok(_) => panic!("{name}: build-request should fail"),
    };
    let elapsed = started.elapsed();
    let info = instance
        .info()
        .expect("the instance recovers after a failed call");
    assert_eq!(info.name, name.replace('-', "_"));
    (err, elapsed)
}

#[test]
fn endless_loop_is_stopped_in_under_a_second() {
    let (err, elapsed) = failing_call("spin");
    assert!(matches!(err, PluginCallError::Timeout { .. }), "{err}");
    assert!(err.to_string().contains("250ms deadline"), "{err}");
    assert!(elapsed < Duration::from_secs(1), "took {elapsed:?}");
}

#[test]
fn a_sleep_is_refused_at_once_and_the_instance_recovers() {
    let (err, _) = failing_call("sleeper");
    assert!(matches!(err, PluginCallError::Blocked { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("plugin `sleeper` tried to block in build-request"),
        "{err}"
    );
}

#[test]
fn exit_fails_the_call_instead_of_ending_the_host() {
    let (err, _) = failing_call("exiter");
    assert!(matches!(err, PluginCallError::Trap { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("plugin `exiter` crashed in build-request: it called exit("),
        "{err}"
    );
}

#[test]
fn unbounded_allocation_hits_the_memory_cap() {
    let (err, _) = failing_call("balloon");
    assert!(matches!(err, PluginCallError::MemoryLimit { .. }), "{err}");
    assert!(
        err.to_string().contains("the limit is 134217728 bytes"),
        "{err}"
    );
}

#[test]
fn panic_becomes_an_error_and_its_stderr_reaches_the_log() {
    let (err, _) = failing_call("panic");
    assert!(matches!(err, PluginCallError::Trap { .. }), "{err}");
    assert!(err.to_string().contains("panics"), "{err}");

    let output = payhost_e2e::payhost()
        .args(["plugin", "request"])
        .arg(payhost_e2e::plugin("panic"))
        .args(["thing", "create", "{}"])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("panic-plugin: about to panic"), "{stderr}");
    assert!(
        stderr.contains("deliberate panic in build-request"),
        "{stderr}"
    );
}

fn escape_refusal(path: Option<&str>) -> String {
    let plugin = load("escape");
    let mut instance = plugin.instantiate().unwrap();
    let request = instance
        .build_request("thing", "create", &thing(path))
        .unwrap()
        .unwrap();
    let destination = Destination::new("http://127.0.0.1:9", "escape", None, 1 << 20).unwrap();
    destination.check(&request).unwrap_err().to_string()
}

#[test]
fn requests_to_other_hosts_are_refused() {
    let err = escape_refusal(None);
    assert!(err.contains("https://evil.example.com/steal"), "{err}");
    assert!(err.contains("not relative to the base URL"), "{err}");
    for path in [
        "//evil.example.com/x",
        "/../../x",
        "/v1/x?y=1",
        "http://127.0.0.1:1/",
    ] {
        let err = escape_refusal(Some(path));
        assert!(
            err.starts_with("refused the request built by plugin `escape`"),
            "{path}: {err}"
        );
    }
}

#[test]
fn huge_request_body_is_refused() {
    // A generous deadline: filling 100 MiB may take a while on a loaded
    // machine, and this test is about the body cap, not the deadline.
    let limits = SandboxLimits {
        call_timeout: Duration::from_secs(10),
        ..SandboxLimits::default()
    };
    let plugin = Plugin::load(
        &payhost_e2e::plugin("huge-body"),
        limits,
        &ComponentCache::disabled(),
    )
    .unwrap();
    let mut instance = plugin.instantiate().unwrap();
    let request = instance
        .build_request("thing", "create", &thing(None))
        .unwrap()
        .unwrap();
    let destination = Destination::new("http://127.0.0.1:9", "huge_body", None, 1 << 20).unwrap();
    let err = destination.check(&request).unwrap_err().to_string();
    assert!(
        err.contains("104857600 bytes; the limit is 1048576 bytes"),
        "{err}"
    );
    instance.info().expect("still usable");
}

#[test]
fn files_that_are_not_this_contract_are_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.wasm");
    std::fs::write(&text, "hello").unwrap();
    let err = load_error(&text);
    assert!(
        err.contains("notes.wasm") && err.contains("not WebAssembly"),
        "{err}"
    );

    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let err = load_error(&core);
    assert!(
        err.contains("core.wasm") && err.contains("core WebAssembly module"),
        "{err}"
    );

    let err = load_error(&payhost_e2e::plugin("other-world"));
    assert!(err.contains("other-world.wasm"), "{err}");
    assert!(
        err.contains(&format!(
            "does not export payhost:plugin/provider@{CONTRACT_VERSION}"
        )),
        "{err}"
    );
    assert!(err.contains("acme:other/greeter"), "{err}");

    let err = load_error(&payhost_e2e::plugin("future-version"));
    assert!(err.contains("future-version.wasm"), "{err}");
    assert!(
        err.contains(&format!(
            "contract version {}",
            next_minor(CONTRACT_VERSION)
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("this host speaks version {CONTRACT_VERSION}")),
        "{err}"
    );

    let err = load_error(&dir.path().join("missing.wasm"));
    assert!(
        err.contains("missing.wasm") && err.contains("cannot read"),
        "{err}"
    );
}

#[test]
fn second_load_uses_the_compiled_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = ComponentCache::new(Some(dir.path().to_path_buf()));
    let path = payhost_e2e::plugin("stripe");
    let first = Plugin::load(&path, SandboxLimits::default(), &cache).unwrap();
    assert_eq!(first.cache_outcome(), payhost::plugin::CacheOutcome::Stored);
    let started = Instant::now();
    let second = Plugin::load(&path, SandboxLimits::default(), &cache).unwrap();
    assert_eq!(second.cache_outcome(), payhost::plugin::CacheOutcome::Hit);
    eprintln!("cached load took {:?}", started.elapsed());
    assert_eq!(first.info().name, second.info().name);
}

/// Besides the contract's types: what std needs to start, panic and log;
/// nothing that reaches files, sockets or clocks (see
/// host/src/plugin/wasi.rs).
#[test]
fn the_stripe_plugin_imports_only_what_std_needs_to_start() {
    let stripe = load("stripe");
    eprintln!("the Stripe plugin imports {:#?}", stripe.imports());
    for import in stripe.imports() {
        assert!(
            [
                "payhost:plugin/types@",
                "wasi:cli/",
                "wasi:io/",
                "wasi:random/"
            ]
            .iter()
            .any(|allowed| import.starts_with(allowed)),
            "unexpected import {import}"
        );
    }
}

/// StoreCounts::RUST_WASIP2 is what the Stripe plugin needs: with one instance,
/// memory or table fewer, a store cannot hold it and the load is refused
/// naming the count.
#[test]
fn stores_are_limited_to_a_few_instances_memories_and_tables() {
    let dir = tempfile::tempdir().unwrap();
    let cache = ComponentCache::new(Some(dir.path().to_path_buf()));
    let with = |store_counts: StoreCounts| {
        let limits = SandboxLimits {
            store_counts,
            ..SandboxLimits::default()
        };
        Plugin::load(&payhost_e2e::plugin("stripe"), limits, &cache)
    };
    let stripe = StoreCounts::RUST_WASIP2;
    with(stripe).expect("the Stripe plugin fits its measured counts");
    with(StoreCounts::default()).expect("and the defaults");
    for (what, fewer) in [
        (
            "instance",
            StoreCounts {
                instances: stripe.instances - 1,
                ..stripe
            },
        ),
        (
            "memory",
            StoreCounts {
                memories: stripe.memories - 1,
                ..stripe
            },
        ),
        (
            "table",
            StoreCounts {
                tables: stripe.tables - 1,
                ..stripe
            },
        ),
    ] {
        let err = match with(fewer) {
            Ok(_) => panic!("{fewer:?} must not hold the Stripe plugin"),
            Err(err) => err.to_string(),
        };
        assert!(
            err.contains("stripe.wasm")
                && err.contains(&format!("resource limit exceeded: {what} count too high")),
            "{err}"
        );
    }
}

/// `X.(Y+1).0` for `X.Y.Z`: the version `tests/plugins/future-version` says
/// it speaks (its build script bumps the contract's minor version).
fn next_minor(version: &str) -> String {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().expect("X.Y.Z"));
    let (major, minor) = (parts.next().unwrap(), parts.next().unwrap());
    format!("{major}.{}.0", minor + 1)
}
