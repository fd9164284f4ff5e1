//! `cargo xtask new-plugin NAME`: a new provider plugin crate in
//! `plugins/NAME/`, made from the template in `xtask/template/`.
//!
//! The template is a minimal but real 0.2 plugin (one object, JSON bodies,
//! bearer auth, two settings, native tests), modelled on the `jsonapi` test
//! plugin (tests/plugins/json-api). Like the model, it holds only the
//! provider: the provider-neutral modules are the `payhost-plugin-kit`
//! crate (plugin-kit/), which both depend on, so a fix there is a fix to
//! every plugin. Rendering is plain text substitution of
//! three placeholders: `{{name}}` (the directory and package, as given),
//! `{{provider}}` (the provider and crate name: `-` becomes `_`) and
//! `{{PROVIDER}}` (its upper case, for the settings' environment
//! variables). A file named `*.template` loses that suffix (the template's
//! Cargo.toml is `Cargo.toml.template`, so cargo never sees it as a stray
//! package).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::Workspace;
use crate::compile::discover_plugins;

/// Creates `plugins/NAME/` and returns its path.
pub fn create(workspace: &Workspace, name: &str) -> Result<PathBuf> {
    check_name(name)?;
    let dest = workspace.root.join("plugins").join(name);
    if dest.exists() {
        bail!("{} already exists; pick another name", dest.display());
    }
    let taken = discover_plugins(workspace)?;
    if let Some(plugin) = taken.iter().find(|p| p.name == name || p.package == name) {
        bail!(
            "a plugin named `{name}` exists already (package `{}`, installed as {}.wasm); \
             `cargo xtask plugins` would build both to one file",
            plugin.package,
            plugin.name
        );
    }
    if let Some(dir) = package_dir(workspace, name) {
        bail!(
            "the workspace has a package `{name}` already ({}); pick another name",
            dir.display()
        );
    }

    let template = workspace.root.join("xtask").join("template");
    render(&template, name, &dest)?;
    Ok(dest)
}

/// Writes the template rendered for `name` into `dest`.
fn render(template: &Path, name: &str, dest: &Path) -> Result<()> {
    let provider = name.replace('-', "_");
    let files = files_under(template)?;
    if files.is_empty() {
        bail!("the template {} is empty", template.display());
    }
    for file in files {
        let relative = file
            .strip_prefix(template)
            .expect("walked from the template");
        let relative = match relative.to_str().and_then(|r| r.strip_suffix(".template")) {
            Some(stripped) => PathBuf::from(stripped),
            None => relative.to_path_buf(),
        };
        let text =
            fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
        let rendered = text
            .replace("{{name}}", name)
            .replace("{{provider}}", &provider)
            .replace("{{PROVIDER}}", &provider.to_uppercase());
        let out = dest.join(&relative);
        fs::create_dir_all(out.parent().expect("a file has a parent"))
            .with_context(|| format!("cannot create {}", dest.display()))?;
        fs::write(&out, rendered).with_context(|| format!("cannot write {}", out.display()))?;
    }
    Ok(())
}

/// What to do after `create`, for the person who ran it.
pub fn next_steps(name: &str) -> String {
    let provider = name.replace('-', "_");
    let steps: [(String, String); 7] = [
        (
            format!("cargo test -p {name}"),
            "run its native tests".into(),
        ),
        (
            format!("edit plugins/{name}/src/provider.rs"),
            "the provider's settings, auth, retries and objects".into(),
        ),
        (
            format!("edit plugins/{name}/src/request.rs"),
            "how a request is built (path, headers, body)".into(),
        ),
        (
            "cargo fmt --all".into(),
            "a long name can change the line breaks".into(),
        ),
        (
            "cargo xtask plugins".into(),
            format!("build target/plugins/{name}.wasm"),
        ),
        (
            format!("target/debug/payhost plugin info target/plugins/{name}.wasm"),
            "what the host sees".into(),
        ),
        (
            format!("target/debug/payhost plugin check target/plugins/{name}.wasm"),
            "the conformance run".into(),
        ),
    ];
    let width = steps
        .iter()
        .map(|(command, _)| command.len())
        .max()
        .unwrap_or(0);
    let mut out = format!(
        "created plugins/{name}: package `{name}`, provider `{provider}`, \
         one example object (`payment`)\n\nnext:\n"
    );
    for (command, what) in steps {
        out.push_str(&format!("  {command:width$}   {what}\n"));
    }
    out.push_str("\nthe guide: docs/writing-a-plugin.md");
    out
}

/// snake_case or kebab-case, starting with a letter, usable as a crate
/// name, a directory and (with `-` as `_`) a provider name.
fn check_name(name: &str) -> Result<()> {
    let words_ok = name.split(['-', '_']).all(|w| {
        !w.is_empty()
            && w.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    });
    let starts_ok = name.starts_with(|c: char| c.is_ascii_lowercase());
    if !words_ok || !starts_ok || name.len() > 40 {
        bail!(
            "plugin name {name:?} must be snake_case or kebab-case: lower-case letters and \
             digits in words joined by `_` or `-`, starting with a letter, at most 40 characters \
             (e.g. `acme-pay`)"
        );
    }
    let provider = name.replace('-', "_");
    if RUST_KEYWORDS.contains(&provider.as_str()) || provider == "test" {
        bail!("plugin name `{name}` cannot be a crate name (it is reserved in Rust)");
    }
    Ok(())
}

const RUST_KEYWORDS: [&str; 51] = [
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use",
    "where", "while", "abstract", "become", "box", "do", "final", "macro", "override", "priv",
    "typeof", "unsized", "virtual", "yield", "try", "gen",
];

/// The directory of a workspace package called `name`, if there is one:
/// top-level crates and every plugin place.
fn package_dir(workspace: &Workspace, name: &str) -> Option<PathBuf> {
    let places = [
        workspace.root.clone(),
        workspace.root.join("plugins"),
        workspace.root.join("tests").join("plugins"),
    ];
    places
        .iter()
        .filter_map(|place| fs::read_dir(place).ok())
        .flatten()
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .find(|dir| {
            fs::read_to_string(dir.join("Cargo.toml"))
                .ok()
                .and_then(|text| crate::compile::package_name(&text))
                .is_some_and(|package| package == name)
        })
}

/// Every file under `dir`, recursively, in name order.
fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .with_context(|| format!("cannot read {}", dir.display()))?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files.extend(files_under(&path)?);
        } else {
            files.push(path);
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `plugins/example` is what `cargo xtask new-plugin example` makes,
    /// committed, so the suite builds it, runs `plugin check` on it and a
    /// script through it (tests/e2e/template.rs). Re-rendering must give the
    /// same files, or the template and the example have drifted apart.
    #[test]
    fn the_committed_example_is_the_template_rendered() {
        let root = root();
        let rendered =
            std::env::temp_dir().join(format!("payhost-template-{}", std::process::id()));
        let _ = fs::remove_dir_all(&rendered);
        render(&root.join("xtask/template"), "example", &rendered).unwrap();
        let example = root.join("plugins/example");
        let ours: Vec<PathBuf> = files_under(&rendered).unwrap();
        let theirs: Vec<PathBuf> = files_under(&example)
            .unwrap()
            .into_iter()
            .filter(|f| !f.components().any(|c| c.as_os_str() == "target"))
            .collect();
        let relative = |files: &[PathBuf], base: &Path| -> Vec<PathBuf> {
            files
                .iter()
                .map(|f| f.strip_prefix(base).unwrap().to_path_buf())
                .collect()
        };
        assert_eq!(relative(&ours, &rendered), relative(&theirs, &example));
        for file in &ours {
            let rel = file.strip_prefix(&rendered).unwrap();
            assert_eq!(
                fs::read_to_string(file).unwrap(),
                fs::read_to_string(example.join(rel)).unwrap(),
                "plugins/example/{} differs from the template rendered for `example`: \
                 re-make it with `rm -r plugins/example && cargo xtask new-plugin example`",
                rel.display()
            );
        }
        fs::remove_dir_all(&rendered).unwrap();
    }

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .to_path_buf()
    }

    #[test]
    fn names_are_snake_or_kebab_case() {
        for good in ["acme", "acme-pay", "acme_pay", "pay2go", "a1-b2_c3"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Acme",
            "acme pay",
            "-acme",
            "acme-",
            "acme--pay",
            "1pay",
            "acme.pay",
            "ü",
            "type",
            "self",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    /// The provider-neutral modules, which live in plugin-kit/ alone.
    const KIT_ONLY: [&str; 5] = [
        "schema.rs",
        "tree.rs",
        "params.rs",
        "response.rs",
        "component.rs",
    ];

    /// The template and its model, json-api, build on the kit and hold no
    /// copy of its modules, so that a fix to one is a fix to every plugin.
    #[test]
    fn the_template_and_json_api_build_on_the_kit_without_copies() {
        let kit = root().join("plugin-kit/src");
        for (dir, manifest) in [
            ("xtask/template", "Cargo.toml.template"),
            ("tests/plugins/json-api", "Cargo.toml"),
        ] {
            let text = fs::read_to_string(root().join(dir).join(manifest)).unwrap();
            assert!(
                text.contains("payhost-plugin-kit = { workspace = true }"),
                "{dir}/{manifest} must depend on payhost-plugin-kit"
            );
            for file in KIT_ONLY {
                assert!(kit.join(file).is_file(), "plugin-kit/src/{file} is missing");
                assert!(
                    !root().join(dir).join("src").join(file).exists(),
                    "{dir}/src/{file} is a copy of a kit module; use payhost_plugin_kit's"
                );
            }
        }
    }

    /// Every placeholder in the template is one `create` fills in.
    #[test]
    fn the_template_uses_only_known_placeholders() {
        let template = root().join("xtask/template");
        for file in files_under(&template).unwrap() {
            let text = fs::read_to_string(&file).unwrap();
            let rendered = text
                .replace("{{name}}", "x")
                .replace("{{provider}}", "x")
                .replace("{{PROVIDER}}", "X");
            assert!(
                !rendered.contains("{{"),
                "{} has an unknown placeholder",
                file.display()
            );
        }
    }
}
