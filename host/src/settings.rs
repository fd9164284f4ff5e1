//! The operator's settings for the loaded provider: where each value comes
//! from, and which part of them may reach the plugin.
//!
//! A plugin declares its settings (`setting-info`: name, doc, required,
//! default, secret). The operator gives values three ways; the first that
//! has one wins:
//!
//! 1. `--set name=value` on the command line (not for secrets: a command
//!    line is visible to every user of the machine through `ps`);
//! 2. the environment variable `<PROVIDER>_<NAME>`, upper case
//!    (`stripe` + `secret_key` -> `STRIPE_SECRET_KEY`); an empty value counts
//!    as unset. `--secret-env VAR` names another variable for the auth
//!    scheme's primary secret;
//! 3. the settings file (`--settings FILE`): a JSON object of strings,
//!    `{"merchant_account": "ACME", "api_key": "..."}`;
//!
//! and then the plugin's declared default. A name the plugin does not
//! declare is an error wherever it appears, naming the declared ones. A name
//! may be qualified with its provider (`adyen.merchant_account=ACME`); with
//! several plugins loaded, an unqualified name goes to every provider that
//! declares it.
//!
//! [`Settings::resolve`] splits the result: non-secret values go to the
//! plugin (`configure`), secrets stay here as [`Secret`]s and leave the host
//! only in the auth header the scheme names. A required non-secret setting
//! without a value stops the start. A required secret does not, because a
//! script may pass it per call; the request without one is refused then.

use std::path::{Path, PathBuf};

use crate::plugin::wit;
use crate::secret::Secret;

/// Where the operator's values come from (the command line's part).
#[derive(Debug, Clone, Default)]
pub struct SettingsSource {
    /// `--set name=value`, in order (a later one for the same name wins).
    pub set: Vec<(String, String)>,
    /// `--settings FILE`.
    pub file: Option<PathBuf>,
    /// `--secret-env VAR`: the variable of the auth scheme's primary secret.
    pub secret_env: Option<String>,
    /// Whether other providers read the same source (several plugins
    /// loaded): then a name qualified with another provider
    /// (`adyen.merchant_account`), or an unqualified one this provider does
    /// not declare, is theirs, not an error (the host checks that every name
    /// belongs to some provider).
    pub shared: bool,
}

/// Splits `provider.name` into its parts; `None` for an unqualified name.
pub fn qualified(name: &str) -> Option<(&str, &str)> {
    name.split_once('.')
}

/// The entries of `entries` meant for provider `info`: qualified with its
/// name (the qualifier dropped), or unqualified. An entry for another
/// provider, or an unqualified name `info` does not declare, is an error
/// unless the source is `shared`.
fn for_provider(
    info: &wit::ProviderInfo,
    entries: &[(String, String)],
    shared: bool,
    whence: &str,
) -> Result<Vec<(String, String)>, String> {
    let mut mine = Vec::new();
    for (name, value) in entries {
        match qualified(name) {
            Some((provider, name)) if provider == info.name => {
                mine.push((name.to_string(), value.clone()))
            }
            Some(_) if shared => {}
            Some((provider, _)) => {
                return Err(format!(
                    "{whence}: `{name}` is for provider `{provider}`, but the loaded plugin is                      `{}`",
                    info.name
                ));
            }
            None if shared && !info.settings.iter().any(|s| s.name == *name) => {}
            None => mine.push((name.clone(), value.clone())),
        }
    }
    Ok(mine)
}

/// Parses one `--set` argument.
pub fn parse_set(arg: &str) -> Result<(String, String), String> {
    match arg.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_string(), value.to_string()))
        }
        _ => Err(format!("`{arg}` is not name=value")),
    }
}

/// The resolved settings of one provider.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Non-secret values, for the plugin's `configure`.
    pub public: Vec<(String, String)>,
    /// Secret values by setting name; never handed to the plugin.
    pub secrets: Vec<(String, Secret)>,
    /// Where each secret would be read from, for messages that must say how
    /// to provide a missing one (never the value).
    pub secret_sources: Vec<(String, String)>,
}

impl Settings {
    /// Resolves every declared setting of `info` from `source`, the
    /// environment (`env`) and the defaults.
    pub fn resolve(
        info: &wit::ProviderInfo,
        source: &SettingsSource,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, String> {
        let declared = |name: &str, whence: &str| -> Result<&wit::SettingInfo, String> {
            info.settings
                .iter()
                .find(|s| s.name == name)
                .ok_or_else(|| unknown(info, name, whence))
        };
        let set = for_provider(info, &source.set, source.shared, "--set")?;
        for (name, _) in &set {
            if declared(name, "--set")?.secret {
                return Err(format!(
                    "--set {name}=...: `{name}` is a secret; give it in {} or the settings file, \
                     not on the command line",
                    env_name(&info.name, name)
                ));
            }
        }
        let file = match &source.file {
            Some(path) => for_provider(
                info,
                &read_file(path)?,
                source.shared,
                &format!("the settings file {}", path.display()),
            )?,
            None => Vec::new(),
        };
        for (name, _) in &file {
            declared(
                name,
                &format!("the settings file {}", display(&source.file)),
            )?;
        }
        let primary = primary_secret(&info.auth);

        let mut settings = Settings::default();
        for setting in &info.settings {
            let name = &setting.name;
            let var = match (&source.secret_env, primary) {
                (Some(var), Some(p)) if p == name => var.clone(),
                _ => env_name(&info.name, name),
            };
            let value = set
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .or_else(|| env(&var).filter(|v| !v.is_empty()))
                .or_else(|| file.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()))
                .or_else(|| setting.default.clone());
            if setting.secret {
                settings.secret_sources.push((name.clone(), var.clone()));
                if let Some(value) = value {
                    let secret = Secret::new(value);
                    crate::http::check_secret(&secret).map_err(|why| format!("{var}: {why}"))?;
                    settings.secrets.push((name.clone(), secret));
                }
                continue;
            }
            match value {
                Some(value) => settings.public.push((name.clone(), value)),
                None if setting.required => {
                    return Err(format!(
                        "plugin `{}` needs the setting `{name}` ({}): pass --set {name}=..., \
                         set {var}, or put it in a --settings file",
                        info.name, setting.doc
                    ));
                }
                None => {}
            }
        }
        Ok(settings)
    }

    /// The secret setting `name`, if the operator gave it.
    pub fn secret(&self, name: &str) -> Option<&Secret> {
        self.secrets.iter().find(|(n, _)| n == name).map(|(_, s)| s)
    }

    /// The non-secret setting `name`, if it has a value.
    pub fn public(&self, name: &str) -> Option<&str> {
        self.public
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Where the secret `name` is read from (the variable), for messages.
    pub fn secret_source(&self, name: &str) -> &str {
        self.secret_sources
            .iter()
            .find(|(n, _)| n == name)
            .map_or("the settings file", |(_, v)| v.as_str())
    }
}

/// The environment variable of a setting: `stripe` + `secret_key` ->
/// `STRIPE_SECRET_KEY`.
pub fn env_name(provider: &str, setting: &str) -> String {
    format!(
        "{}_{}",
        provider.to_ascii_uppercase(),
        setting.to_ascii_uppercase()
    )
}

/// The secret a script may pass instead of the configured one: the bearer
/// or header secret, basic's password if it has one, else basic's user.
pub fn primary_secret(auth: &wit::AuthScheme) -> Option<&str> {
    match auth {
        wit::AuthScheme::None => None,
        wit::AuthScheme::Basic(basic) => Some(basic.password.as_deref().unwrap_or(&basic.user)),
        wit::AuthScheme::Bearer(secret) => Some(secret),
        wit::AuthScheme::Header(header) => Some(&header.secret),
    }
}

fn unknown(info: &wit::ProviderInfo, name: &str, whence: &str) -> String {
    let known: Vec<&str> = info.settings.iter().map(|s| s.name.as_str()).collect();
    format!(
        "{whence}: plugin `{}` has no setting `{name}` (its settings: {})",
        info.name,
        if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        }
    )
}

fn display(path: &Option<PathBuf>) -> String {
    path.as_deref()
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// The names in `source` (its `--set` and file entries) that none of
/// `providers` declares, for the error a shared source gets.
pub fn unclaimed(
    providers: &[&wit::ProviderInfo],
    source: &SettingsSource,
) -> Result<Vec<String>, String> {
    let mut names: Vec<String> = source.set.iter().map(|(n, _)| n.clone()).collect();
    if let Some(path) = &source.file {
        names.extend(read_file(path)?.into_iter().map(|(n, _)| n));
    }
    Ok(names
        .into_iter()
        .filter(|name| {
            !providers.iter().any(|info| {
                let (provider, name) = qualified(name).unwrap_or((info.name.as_str(), name));
                provider == info.name && info.settings.iter().any(|s| s.name == name)
            })
        })
        .collect())
}

/// Reads a settings file: one JSON object whose values are strings.
fn read_file(path: &Path) -> Result<Vec<(String, String)>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the settings file {}: {e}", path.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        format!(
            "the settings file {} is not JSON: {e} (it must be one object of strings, \
             e.g. {{\"merchant_account\": \"ACME\"}})",
            path.display()
        )
    })?;
    let serde_json::Value::Object(map) = value else {
        return Err(format!(
            "the settings file {} must be one JSON object of strings",
            path.display()
        ));
    };
    map.into_iter()
        .map(|(name, value)| match value {
            serde_json::Value::String(s) => Ok((name, s)),
            other => Err(format!(
                "the settings file {}: `{name}` must be a string, not {}",
                path.display(),
                match other {
                    serde_json::Value::Number(_) => "a number",
                    serde_json::Value::Bool(_) => "a boolean",
                    serde_json::Value::Null => "null",
                    serde_json::Value::Array(_) => "an array",
                    _ => "an object",
                }
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setting(
        name: &str,
        required: bool,
        default: Option<&str>,
        secret: bool,
    ) -> wit::SettingInfo {
        wit::SettingInfo {
            name: name.into(),
            doc: format!("the {name}"),
            required,
            default: default.map(Into::into),
            secret,
        }
    }

    fn info() -> wit::ProviderInfo {
        wit::ProviderInfo {
            name: "acme".into(),
            settings: vec![
                setting("api_key", true, None, true),
                setting("account", true, None, false),
                setting("region", false, Some("eu"), false),
            ],
            auth: wit::AuthScheme::Bearer("api_key".into()),
            ..crate::plugin::empty_info()
        }
    }

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn flag_beats_environment_beats_default() {
        let source = SettingsSource {
            set: vec![("account".into(), "from-flag".into())],
            ..Default::default()
        };
        let s = Settings::resolve(
            &info(),
            &source,
            env(&[("ACME_ACCOUNT", "from-env"), ("ACME_API_KEY", "k_1")]),
        )
        .unwrap();
        assert_eq!(s.public("account"), Some("from-flag"));
        assert_eq!(s.public("region"), Some("eu"));
        assert_eq!(s.secret("api_key").unwrap().expose(), "k_1");
        assert!(s.public.iter().all(|(n, _)| n != "api_key"));
    }

    #[test]
    fn secrets_are_refused_on_the_command_line() {
        let source = SettingsSource {
            set: vec![("api_key".into(), "k".into())],
            ..Default::default()
        };
        let err = Settings::resolve(&info(), &source, env(&[])).unwrap_err();
        assert!(err.contains("ACME_API_KEY"), "{err}");
        assert!(!err.contains("=k"), "{err}");
    }

    #[test]
    fn a_missing_required_setting_says_how_to_give_it() {
        let err = Settings::resolve(&info(), &SettingsSource::default(), env(&[])).unwrap_err();
        assert!(err.contains("`account`"), "{err}");
        assert!(err.contains("ACME_ACCOUNT"), "{err}");
        // A required secret may still come per call.
        let s = Settings::resolve(
            &info(),
            &SettingsSource::default(),
            env(&[("ACME_ACCOUNT", "a")]),
        )
        .unwrap();
        assert!(s.secret("api_key").is_none());
        assert_eq!(s.secret_source("api_key"), "ACME_API_KEY");
    }

    #[test]
    fn unknown_names_list_the_declared_ones() {
        let source = SettingsSource {
            set: vec![("acount".into(), "x".into())],
            ..Default::default()
        };
        let err = Settings::resolve(&info(), &source, env(&[])).unwrap_err();
        assert!(err.contains("no setting `acount`"), "{err}");
        assert!(err.contains("api_key, account, region"), "{err}");
    }

    #[test]
    fn the_file_is_an_object_of_strings() {
        let dir = std::env::temp_dir().join(format!("payhost-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.json");
        std::fs::write(&path, r#"{"account": "from-file", "api_key": "k_file"}"#).unwrap();
        let source = SettingsSource {
            file: Some(path.clone()),
            ..Default::default()
        };
        let s = Settings::resolve(&info(), &source, env(&[])).unwrap();
        assert_eq!(s.public("account"), Some("from-file"));
        assert_eq!(s.secret("api_key").unwrap().expose(), "k_file");
        std::fs::write(&path, r#"{"account": 7}"#).unwrap();
        let err = Settings::resolve(&info(), &source, env(&[])).unwrap_err();
        assert!(
            err.contains("`account` must be a string, not a number"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn set_arguments_parse() {
        assert_eq!(parse_set("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert!(parse_set("novalue").is_err());
        assert!(parse_set("=x").is_err());
    }
}
