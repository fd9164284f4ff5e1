//! Everything a Redis server holds, as text, for leak checks.

use std::fmt::Write as _;

/// Every key and every value (strings, hashes, lists, sets, sorted sets and
/// stream entries) in the server at `url`, one per line.
pub fn redis_dump(url: &str) -> String {
    let client = redis::Client::open(url).expect("valid Redis URL");
    let mut conn = client.get_connection().expect("connect to Redis");
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut conn).unwrap();
    let mut out = String::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE").arg(&key).query(&mut conn).unwrap();
        let value = match kind.as_str() {
            "string" => redis::cmd("GET").arg(&key).query::<redis::Value>(&mut conn),
            "hash" => redis::cmd("HGETALL").arg(&key).query(&mut conn),
            "list" => redis::cmd("LRANGE")
                .arg(&key)
                .arg(0)
                .arg(-1)
                .query(&mut conn),
            "set" => redis::cmd("SMEMBERS").arg(&key).query(&mut conn),
            "zset" => redis::cmd("ZRANGE")
                .arg(&key)
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES")
                .query(&mut conn),
            "stream" => redis::cmd("XRANGE")
                .arg(&key)
                .arg("-")
                .arg("+")
                .query(&mut conn),
            other => panic!("unexpected Redis type {other} for {key}"),
        }
        .unwrap();
        let _ = writeln!(out, "{key} ({kind}): {}", render(&value));
    }
    out
}

fn render(value: &redis::Value) -> String {
    match value {
        redis::Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        redis::Value::SimpleString(s) => s.clone(),
        redis::Value::Int(n) => n.to_string(),
        redis::Value::Array(items) | redis::Value::Set(items) => {
            items.iter().map(render).collect::<Vec<_>>().join(" | ")
        }
        redis::Value::Map(pairs) => pairs
            .iter()
            .map(|(k, v)| format!("{}={}", render(k), render(v)))
            .collect::<Vec<_>>()
            .join(" | "),
        other => format!("{other:?}"),
    }
}
