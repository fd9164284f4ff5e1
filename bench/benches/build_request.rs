//! `cargo bench -p payhost-bench --bench build_request`: the plugin's
//! `build-request` for a 10-field payment intent through the real component,
//! next to the same encoding done natively, as a criterion bench. The input
//! and the checks are those of `payhost_bench::build_request` (see there for
//! why the comparison is fair). The plugin is `PAYHOST_PLUGIN`, else
//! `target/plugins/stripe.wasm` (`cargo xtask plugins` builds it).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use payhost_bench::build_request::{Fixture, default_plugin_path};
use payhost_bench::fixtures;

fn build_request(c: &mut Criterion) {
    let path = default_plugin_path();
    let plugin = fixtures::load_plugin(&path)
        .unwrap_or_else(|e| panic!("{e:#} (run `cargo xtask plugins` first)"));
    let mut fixture = Fixture::new(&plugin).expect("plugin and native bodies agree");
    let mut group = c.benchmark_group("build_request/payment_intent_10_fields");
    group.bench_function("plugin", |b| {
        b.iter(|| black_box(fixture.plugin_call().expect("plugin call")))
    });
    // The Store-lifetime decision (host/src/plugin/mod.rs): each thread
    // keeps one instance, against a fresh Store per call.
    group.bench_function("plugin, fresh Store per call", |b| {
        b.iter(|| black_box(fixture.fresh_store_call().expect("plugin call")))
    });
    group.bench_function("native", |b| {
        b.iter(|| black_box(fixture.native_call().expect("native call")))
    });
    group.bench_function("rhai_to_tree", |b| {
        b.iter(|| black_box(fixture.tree_call()))
    });
    group.bench_function("rhai_to_tree+plugin", |b| {
        b.iter(|| black_box(fixture.tree_and_plugin_call().expect("plugin call")))
    });
    group.finish();
}

criterion_group!(benches, build_request);
criterion_main!(benches);
