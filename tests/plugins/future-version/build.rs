//! Writes `$OUT_DIR/wit/plugin.wit`: the real contract (`wit/plugin.wit` at the
//! workspace root) with its version bumped from `@0.3.0` to `@0.4.0`, so this
//! plugin tracks every other change to the contract and differs only in the
//! version.

use std::path::PathBuf;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let source = manifest_dir.join("../../../wit/plugin.wit");
    println!("cargo::rerun-if-changed={}", source.display());
    let text = std::fs::read_to_string(&source)
        .unwrap_or_else(|e| panic!("reading {}: {e}", source.display()));
    let package = "package payhost:plugin@0.3.0;";
    assert!(
        text.contains(package),
        "{} no longer declares `{package}`; update this build script",
        source.display()
    );
    let bumped = text.replace("@0.3.0", "@0.4.0");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap()).join("wit");
    std::fs::create_dir_all(&out_dir).unwrap();
    std::fs::write(out_dir.join("plugin.wit"), bumped).unwrap();
}
