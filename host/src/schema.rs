//! The provider's object schema, indexed for the script API.
//!
//! Built once from the plugin's `info`. The host knows nothing about any
//! provider: every builder, setter and `*_async` function the scripts see is
//! derived from this index at load time.

use std::collections::HashMap;

use crate::plugin::wit;

/// Index over `provider-info.objects`.
#[derive(Debug)]
pub struct Schema {
    objects: HashMap<String, ObjectSchema>,
}

#[derive(Debug)]
pub struct ObjectSchema {
    pub name: String,
    /// Top-level fields only (nested `a.b` / `a[].b` entries are the plugin's
    /// business: it validates them).
    pub fields: HashMap<String, wit::FieldKind>,
    pub operations: HashMap<String, wit::OperationInfo>,
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
                    .map(|f| (f.name.clone(), f.kind))
                    .collect();
                let operations = object
                    .operations
                    .iter()
                    .map(|op| (op.name.clone(), op.clone()))
                    .collect();
                (
                    object.name.clone(),
                    ObjectSchema {
                        name: object.name.clone(),
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
            for (name, kind) in &object.fields {
                let kinds = names.entry(name.as_str()).or_default();
                if !kinds.contains(kind) {
                    kinds.push(*kind);
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
            .flat_map(|o| o.operations.keys().map(String::as_str))
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }
}

impl ObjectSchema {
    pub fn operation_list(&self) -> String {
        let mut ops: Vec<&str> = self.operations.keys().map(String::as_str).collect();
        ops.sort_unstable();
        ops.join(", ")
    }
}

/// `amount` is top level; `recurring.interval` and `items[].price` are not.
pub fn is_top_level(name: &str) -> bool {
    !name.contains(['.', '['])
}
