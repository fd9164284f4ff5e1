//! The provider's object schema, indexed for the script API.
//!
//! Built once from the plugin's `info`. The host knows nothing about any
//! provider: every builder, setter and `*_async` function the scripts see is
//! derived from this index at load time.

use std::collections::HashMap;
use std::sync::Arc;

use crate::plugin::wit;

/// A map by name, looked up at every setter and `*_async` call: hashed with
/// foldhash rather than SipHash (two lookups per setter were ~4k of the
/// script thread's instructions per request). Its keys are fixed when the
/// plugin loads, so there is no flooding to defend against.
pub type ByName<V, K = String> = HashMap<K, V, foldhash::fast::RandomState>;

/// Index over `provider-info.objects`.
#[derive(Debug)]
pub struct Schema {
    objects: ByName<ObjectSchema>,
}

#[derive(Debug)]
pub struct ObjectSchema {
    /// Shared by every request's route (see `http::Route`).
    pub name: Arc<str>,
    /// Top-level fields only (nested `a.b` / `a[].b` entries are the plugin's
    /// business: it validates them).
    pub fields: ByName<FieldSchema>,
    /// Keyed by a name every request's route shares.
    pub operations: ByName<wit::OperationInfo, Arc<str>>,
}

/// What the host checks at a setter: the kind, and the allowed values.
#[derive(Debug, Clone)]
pub struct FieldSchema {
    pub kind: wit::FieldKind,
    pub allowed: Vec<String>,
}

impl Schema {
    pub fn new(info: &wit::ProviderInfo) -> Self {
        let objects = info
            .objects
            .iter()
            .map(|object| {
                let fields = object
                    .fields
                    .iter()
                    .filter(|f| is_top_level(&f.name))
                    .map(|f| {
                        let schema = FieldSchema {
                            kind: f.kind,
                            allowed: f.allowed.clone(),
                        };
                        (f.name.clone(), schema)
                    })
                    .collect();
                let operations = object
                    .operations
                    .iter()
                    .map(|op| (Arc::from(op.name.as_str()), op.clone()))
                    .collect();
                (
                    object.name.clone(),
                    ObjectSchema {
                        name: Arc::from(object.name.as_str()),
                        fields,
                        operations,
                    },
                )
            })
            .collect();
        Self { objects }
    }

    pub fn object(&self, name: &str) -> Option<&ObjectSchema> {
        self.objects.get(name)
    }

    pub fn objects(&self) -> impl Iterator<Item = &ObjectSchema> {
        self.objects.values()
    }

    /// Every top-level field name with the kinds it has across objects.
    pub fn setter_names(&self) -> HashMap<&str, Vec<wit::FieldKind>> {
        let mut names: HashMap<&str, Vec<wit::FieldKind>> = HashMap::new();
        for object in self.objects.values() {
            for (name, field) in &object.fields {
                let kinds = names.entry(name.as_str()).or_default();
                if !kinds.contains(&field.kind) {
                    kinds.push(field.kind);
                }
            }
        }
        names
    }

    /// Every operation name across objects.
    pub fn operation_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .objects
            .values()
            .flat_map(|o| o.operations.keys().map(|k| &**k))
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }
}

impl ObjectSchema {
    /// The field names, sorted, for messages.
    pub fn field_list(&self) -> String {
        let mut names: Vec<&str> = self.fields.keys().map(String::as_str).collect();
        names.sort_unstable();
        names.join(", ")
    }

    /// The field whose name is closest to `name` (a likely typo), if any is
    /// close enough to suggest.
    pub fn nearest_field(&self, name: &str) -> Option<&str> {
        self.fields
            .keys()
            .map(|f| (edit_distance(f, name), f.as_str()))
            .filter(|(d, f)| *d <= (f.len().max(name.len()) / 3).max(1))
            .min()
            .map(|(_, f)| f)
    }

    pub fn operation_list(&self) -> String {
        let mut ops: Vec<&str> = self.operations.keys().map(|k| &**k).collect();
        ops.sort_unstable();
        ops.join(", ")
    }
}

/// `amount` is top level; `recurring.interval` and `items[].price` are not.
pub fn is_top_level(name: &str) -> bool {
    !name.contains(['.', '['])
}

/// Levenshtein distance over chars (names are short; O(n*m) is nothing).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(above + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("amount", "amount"), 0);
        assert_eq!(edit_distance("amout", "amount"), 1);
        assert_eq!(edit_distance("currnecy", "currency"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
