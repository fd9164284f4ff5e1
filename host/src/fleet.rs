//! Plugin versions shared by a fleet through Redis: `payhost plugin
//! publish` and `payhost plugin rollback`, and the reads workers poll.
//!
//! A version is stored once under its content hash (SHA-256 of the
//! component's bytes, hex) at [`keys::plugin_blob`]; which version the fleet
//! runs is the hash at [`keys::plugin_current`], and the hashes that were
//! current before it are a list at [`keys::plugin_history`], newest first.
//! Publishing makes a hash current and pushes the one it replaces onto the
//! history; rolling back pops the history back into current. Both are one
//! Lua script each, so two operators acting at once cannot lose a version
//! or leave `current` naming bytes that are not stored.
//!
//! Workers never trust the key alone: they hash the bytes they fetch and
//! refuse any that do not match the name they were fetched under (see
//! [`crate::upgrade`]). Published bytes are never deleted here: an old hash
//! stays available to roll back to.

use redis::aio::ConnectionManager;
use serde::Serialize;

use crate::plugin::Plugin;
use crate::queue::keys;

/// How many earlier versions [`keys::plugin_history`] keeps.
pub const HISTORY_KEPT: isize = 50;

/// KEYS: blob, current, history. ARGV: hash, bytes, history kept.
/// Returns {previous current or '', 1 when current changed else 0}.
const PUBLISH: &str = r#"
redis.call('SET', KEYS[1], ARGV[2])
local previous = redis.call('GET', KEYS[2])
if previous == ARGV[1] then return {previous, 0} end
if previous then
  redis.call('LPUSH', KEYS[3], previous)
  redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[3]) - 1)
end
redis.call('SET', KEYS[2], ARGV[1])
return {previous or '', 1}
"#;

/// KEYS: current, history. ARGV: the provider's blob key prefix.
/// Returns {'empty'}, {'missing', hash} or {'ok', hash, previous current}.
const ROLLBACK: &str = r#"
local target = redis.call('LINDEX', KEYS[2], 0)
if not target then return {'empty'} end
if redis.call('EXISTS', ARGV[1] .. target) == 0 then return {'missing', target} end
redis.call('LPOP', KEYS[2])
local previous = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], target)
return {'ok', target, previous or ''}
"#;

/// What `payhost plugin publish` did.
#[derive(Debug, Clone, Serialize)]
pub struct Published {
    pub action: &'static str,
    pub provider: String,
    pub version: String,
    pub hash: String,
    pub key: String,
    /// The hash that was current before (none for the first publish).
    pub previous: Option<String>,
    /// False when this hash was current already.
    pub changed: bool,
}

/// What `payhost plugin rollback` did.
#[derive(Debug, Clone, Serialize)]
pub struct RolledBack {
    pub action: &'static str,
    pub provider: String,
    /// The hash that is current now.
    pub hash: String,
    /// The hash that was current before the rollback.
    pub previous: Option<String>,
}

/// Stores `bytes` (already loaded and checked as `plugin`) and makes them
/// the fleet's current version of the plugin's provider.
pub async fn publish(
    conn: &mut ConnectionManager,
    plugin: &Plugin,
    bytes: &[u8],
) -> anyhow::Result<Published> {
    let provider = plugin.name();
    let hash = plugin.hash().to_string();
    let key = keys::plugin_blob(provider, &hash);
    let (previous, changed): (String, i64) = redis::Script::new(PUBLISH)
        .key(&key)
        .key(keys::plugin_current(provider))
        .key(keys::plugin_history(provider))
        .arg(&hash)
        .arg(bytes)
        .arg(HISTORY_KEPT)
        .invoke_async(conn)
        .await
        .map_err(|e| anyhow::anyhow!("cannot publish {key}: {e}"))?;
    Ok(Published {
        action: "publish",
        provider: provider.to_string(),
        version: plugin.info().version.clone(),
        hash,
        key,
        previous: (!previous.is_empty()).then_some(previous),
        changed: changed == 1,
    })
}

/// Makes the version that was current before the current one current
/// again.
pub async fn rollback(conn: &mut ConnectionManager, provider: &str) -> anyhow::Result<RolledBack> {
    anyhow::ensure!(
        keys::is_valid_worker_id(provider),
        "invalid provider name {provider:?}"
    );
    let reply: Vec<String> = redis::Script::new(ROLLBACK)
        .key(keys::plugin_current(provider))
        .key(keys::plugin_history(provider))
        .arg(keys::plugin_blob(provider, ""))
        .invoke_async(conn)
        .await
        .map_err(|e| anyhow::anyhow!("cannot roll back {}: {e}", keys::plugin_current(provider)))?;
    match reply.as_slice() {
        [status] if status == "empty" => anyhow::bail!(
            "nothing to roll back to: {} is empty (provider `{provider}` was published at most \
             once)",
            keys::plugin_history(provider)
        ),
        [status, hash] if status == "missing" => anyhow::bail!(
            "cannot roll back provider `{provider}`: the previous version {hash} is not stored \
             at {}; nothing changed",
            keys::plugin_blob(provider, hash)
        ),
        [status, hash, previous] if status == "ok" => Ok(RolledBack {
            action: "rollback",
            provider: provider.to_string(),
            hash: hash.clone(),
            previous: (!previous.is_empty()).then(|| previous.clone()),
        }),
        other => anyhow::bail!("unexpected answer from Redis to a rollback: {other:?}"),
    }
}

/// The fleet's current hash for `provider`, if one was published.
pub async fn current(
    conn: &mut ConnectionManager,
    provider: &str,
) -> redis::RedisResult<Option<String>> {
    redis::cmd("GET")
        .arg(keys::plugin_current(provider))
        .query_async(conn)
        .await
}

/// The bytes published as `hash` for `provider`, if stored.
pub async fn fetch(
    conn: &mut ConnectionManager,
    provider: &str,
    hash: &str,
) -> redis::RedisResult<Option<Vec<u8>>> {
    redis::cmd("GET")
        .arg(keys::plugin_blob(provider, hash))
        .query_async(conn)
        .await
}

/// `payhost plugin publish`'s text.
pub fn render_published(p: &Published) -> String {
    if !p.changed {
        return format!(
            "provider `{}` {} ({}) is already current; nothing changed\n",
            p.provider, p.version, p.hash
        );
    }
    format!(
        "published provider `{}` {} as {}\n  stored at {}\n  current was {}\n  \
         workers watching this Redis switch to it within a few seconds\n",
        p.provider,
        p.version,
        p.hash,
        p.key,
        p.previous.as_deref().unwrap_or("(none)")
    )
}

/// `payhost plugin rollback`'s text.
pub fn render_rolled_back(r: &RolledBack) -> String {
    format!(
        "rolled back provider `{}` to {}\n  current was {}\n  \
         workers watching this Redis switch to it within a few seconds\n",
        r.provider,
        r.hash,
        r.previous.as_deref().unwrap_or("(none)")
    )
}
