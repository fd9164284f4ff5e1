//! The Adyen objects this plugin offers: their operations (method, path,
//! accepted, required and setting-filled top-level fields) and their fields
//! (kind, allowed values, nested required flags, doc).
//!
//! The objects and operations are chosen by hand in
//! `tools/gen_schema.py`; everything about their fields comes from Adyen's
//! own OpenAPI definition of Checkout v71 (tests/data/adyen/), through that
//! generator, into `generated.rs`. Field names are Adyen's, verbatim
//! (camelCase), so a script reads like Adyen's documentation:
//! `.merchantAccount(...)`, `.paymentMethod(#{type: "scheme", ...})`.
//!
//! Nested objects are expanded two levels below the top. A nested object
//! whose own fields are not listed (`children` empty: deeper than that, or
//! free-form in the spec) is *open*: any keys, sent unchecked.

mod generated;

pub use generated::OBJECTS;

// The field kinds and HTTP methods are the WIT enums, as the kit names
// them. An enumeration is a [`Kind::Text`] (or [`Kind::StringList`]) field
// with a non-empty [`Field::allowed`].
pub use payhost_plugin_kit::schema::{Kind, Method};

/// One parameter of an object, or of a nested object.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// The name at its own level (`currency`, not `amount.currency`).
    pub name: &'static str,
    pub kind: Kind,
    /// Allowed values of an enumeration; empty otherwise.
    pub allowed: &'static [&'static str],
    /// For a nested field: whether its parent, when given, must have it.
    /// Always false at the top level (see [`Operation::required`]).
    pub required: bool,
    pub doc: &'static str,
    /// Fields of a nested object or of each element of an object list;
    /// empty for other kinds, and for open objects.
    pub children: &'static [Field],
}

/// The children of an open object: none listed, anything accepted.
pub const OPEN: &[Field] = &[];

/// One operation on an object: the kit's type (WIT `operation-info`).
/// `accepts` lists the top-level fields it takes (its JSON body's
/// properties, or its query parameters for GET and DELETE); `required`
/// those it cannot go without, as the spec says; `filled_by` the required
/// ones filled in from a setting when the script leaves them out
/// (`merchantAccount` from `merchant_account`). The host accepts only
/// required fields there; the plugin also fills optional ones
/// (`settings::FILLS`). Paths are relative to the base URL (`.../v71`).
pub use payhost_plugin_kit::schema::Operation;

/// One kind of Adyen object.
#[derive(Debug, Clone, Copy)]
pub struct Object {
    pub name: &'static str,
    pub doc: &'static str,
    pub operations: &'static [Operation],
    /// Every top-level field of every operation (the first definition wins
    /// where two operations share a name).
    pub fields: &'static [Field],
}

impl Object {
    pub fn operation(&self, name: &str) -> Option<&'static Operation> {
        self.operations.iter().find(|op| op.name == name)
    }

    pub fn field(&self, name: &str) -> Option<&'static Field> {
        find_field(self.fields, name)
    }

    /// Every field with its WIT name, parents before children: `amount`,
    /// `amount.currency`, `amount.value`, ..., `lineItems`, `lineItems[].id`.
    pub fn flat_fields(&self) -> Vec<(String, &'static Field)> {
        let mut out = Vec::new();
        flatten(self.fields, "", &mut out);
        out
    }
}

impl Field {
    /// An object (or object list) whose fields are not listed: any keys.
    pub fn is_open(&self) -> bool {
        matches!(self.kind, Kind::Object | Kind::ObjectList) && self.children.is_empty()
    }
}

/// The object named `name`.
pub fn object(name: &str) -> Option<&'static Object> {
    OBJECTS.iter().find(|o| o.name == name)
}

/// Finds a field by name in one level of the tree.
pub fn find_field(fields: &'static [Field], name: &str) -> Option<&'static Field> {
    fields.iter().find(|f| f.name == name)
}

fn flatten(fields: &'static [Field], prefix: &str, out: &mut Vec<(String, &'static Field)>) {
    for f in fields {
        let name = format!("{prefix}{}", f.name);
        let child_prefix = match f.kind {
            Kind::ObjectList => format!("{name}[]."),
            _ => format!("{name}."),
        };
        out.push((name, f));
        flatten(f.children, &child_prefix, out);
    }
}

#[cfg(test)]
mod tests;
