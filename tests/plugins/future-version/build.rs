//! Writes `$OUT_DIR/wit/plugin.wit`: the real contract (`wit/plugin.wit` at the
//! workspace root) with its minor version bumped (`@0.4.0` becomes `@0.5.0`),
//! so this plugin tracks every other change to the contract and differs only
//! in the version, whatever version the contract is at.

use std::path::PathBuf;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let source = manifest_dir.join("../../../wit/plugin.wit");
    println!("cargo::rerun-if-changed={}", source.display());
    let text = std::fs::read_to_string(&source)
        .unwrap_or_else(|e| panic!("reading {}: {e}", source.display()));
    let version = text
        .lines()
        .find_map(|line| {
            line.strip_prefix("package payhost:plugin@")?
                .strip_suffix(';')
        })
        .unwrap_or_else(|| {
            panic!(
                "{} declares no `package payhost:plugin@X.Y.Z;`",
                source.display()
            )
        });
    let parts: Vec<u32> = version
        .split('.')
        .map(|p| {
            p.parse()
                .unwrap_or_else(|_| panic!("version `{version}` is not X.Y.Z"))
        })
        .collect();
    let [major, minor, _] = parts[..] else {
        panic!("version `{version}` is not X.Y.Z");
    };
    let bumped = text.replace(&format!("@{version}"), &format!("@{major}.{}.0", minor + 1));
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap()).join("wit");
    std::fs::create_dir_all(&out_dir).unwrap();
    std::fs::write(out_dir.join("plugin.wit"), bumped).unwrap();
}
