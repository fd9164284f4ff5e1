//! The Stripe objects this plugin knows: their operations (method, path,
//! accepted top-level fields) and their fields (kind, allowed values, doc).
//!
//! Everything here is `const` data. Fields of nested objects are kept as a
//! tree ([`Field::children`]); [`Object::flat_fields`] names them the way the
//! WIT contract does (`recurring.interval`, `items[].price`). Docs follow the
//! wording of Stripe's API reference, shortened to one line.
//!
//! Required fields follow the API reference too (the parameters it marks
//! "Required", as the official SDKs' generated types do), and only where the
//! requirement is unconditional: `refund.create` needs a charge *or* a
//! payment intent, so neither is required; a nested field is required only
//! if every operation that accepts its parent requires it
//! (`transfer_data.destination` is required on `payment_intent.create` but
//! not accepted on `capture`, so it is not marked).

mod billing;
mod methods;
mod payments;
mod subscriptions;

/// The kind of a field (WIT `field-kind`). An enumeration is a [`Kind::Text`]
/// field with a non-empty [`Field::allowed`] list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Integer,
    Amount,
    Decimal,
    Boolean,
    Timestamp,
    StringMap,
    StringList,
    Object,
    ObjectList,
}

/// HTTP methods (WIT `http-method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

/// One parameter of an object, or of a nested object.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// The parameter name at its own level (`interval`, not `recurring.interval`).
    pub name: &'static str,
    pub kind: Kind,
    /// Allowed values of an enumeration; empty otherwise.
    pub allowed: &'static [&'static str],
    pub doc: &'static str,
    /// For a nested field: whether its parent object, when given, must have
    /// it. Always false at the top level (see [`Operation::required`]).
    pub required: bool,
    /// Fields of a nested object ([`Kind::Object`]) or of each element of an
    /// object list ([`Kind::ObjectList`]); empty otherwise.
    pub children: &'static [Field],
}

/// One operation on an object.
#[derive(Debug, Clone, Copy)]
pub struct Operation {
    pub name: &'static str,
    pub method: Method,
    /// Path template; `{id}` is replaced by the object's id, `{parent}` by
    /// the parent's.
    pub path: &'static str,
    pub needs_id: bool,
    /// Whether the path has a `{parent}` (no Stripe operation here does).
    pub needs_parent: bool,
    /// The top-level fields this operation accepts.
    pub accepts: &'static [&'static str],
    /// The top-level fields it cannot go without (a subset of `accepts`).
    pub required: &'static [&'static str],
    pub doc: &'static str,
}

/// One kind of Stripe object.
#[derive(Debug, Clone, Copy)]
pub struct Object {
    pub name: &'static str,
    pub doc: &'static str,
    pub operations: &'static [Operation],
    pub fields: &'static [Field],
}

impl Object {
    pub fn operation(&self, name: &str) -> Option<&'static Operation> {
        self.operations.iter().find(|op| same_name(op.name, name))
    }

    pub fn field(&self, name: &str) -> Option<&'static Field> {
        find_field(self.fields, name)
    }

    /// Every field with its WIT name, parents before children:
    /// `recurring`, `recurring.interval`, ..., `items`, `items[].price`.
    pub fn flat_fields(&self) -> Vec<(String, &'static Field)> {
        let mut out = Vec::new();
        flatten(self.fields, "", &mut out);
        out
    }
}

impl Operation {
    pub fn accepts(&self, field: &str) -> bool {
        self.accepts.iter().any(|a| same_name(a, field))
    }

    /// The same operation with `fields` required.
    pub(crate) const fn requires(self, fields: &'static [&'static str]) -> Operation {
        Operation {
            required: fields,
            ..self
        }
    }
}

impl Field {
    /// The same nested field, required whenever its parent is given.
    pub(crate) const fn required(self) -> Field {
        Field {
            required: true,
            ..self
        }
    }
}

/// Finds a field by name in one level of the tree.
pub fn find_field(fields: &'static [Field], name: &str) -> Option<&'static Field> {
    fields.iter().find(|f| same_name(f.name, name))
}

fn flatten(fields: &'static [Field], prefix: &str, out: &mut Vec<(String, &'static Field)>) {
    for f in fields {
        let name = format!("{prefix}{}", f.name);
        let child_prefix = match f.kind {
            Kind::Object => format!("{name}."),
            Kind::ObjectList => format!("{name}[]."),
            _ => String::new(),
        };
        out.push((name, f));
        if !f.children.is_empty() {
            flatten(f.children, &child_prefix, out);
        }
    }
}

/// Every object, in the order `info` lists them.
pub const OBJECTS: &[Object] = &[
    payments::PAYMENT_INTENT,
    billing::CUSTOMER,
    billing::PRODUCT,
    billing::PRICE,
    subscriptions::SUBSCRIPTION,
    subscriptions::COUPON,
    payments::REFUND,
    methods::PAYMENT_METHOD,
    methods::SETUP_INTENT,
];

/// Looks an object up by name.
pub fn object(name: &str) -> Option<&'static Object> {
    OBJECTS.iter().find(|o| same_name(o.name, name))
}

/// Name equality for the schema's lookups, which run for every field of
/// every request: most candidates differ in length or first byte, and
/// checking those inline first skips a `memcmp` call for each (schema names
/// are short and many share a length). Measured: ~25% of a native
/// `build-request` before.
#[inline]
pub fn same_name(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.first() == b.first() && a == b
}

// ---- Constructors used by the data files -------------------------------

const fn field(name: &'static str, kind: Kind, doc: &'static str) -> Field {
    Field {
        name,
        kind,
        allowed: &[],
        doc,
        required: false,
        children: &[],
    }
}

pub(crate) const fn text(name: &'static str, doc: &'static str) -> Field {
    field(name, Kind::Text, doc)
}
pub(crate) const fn integer(name: &'static str, doc: &'static str) -> Field {
    field(name, Kind::Integer, doc)
}
pub(crate) const fn amount(name: &'static str, doc: &'static str) -> Field {
    field(name, Kind::Amount, doc)
}
pub(crate) const fn decimal(name: &'static str, doc: &'static str) -> Field {
    field(name, Kind::Decimal, doc)
}
pub(crate) const fn boolean(name: &'static str, doc: &'static str) -> Field {
    field(name, Kind::Boolean, doc)
}
pub(crate) const fn timestamp(name: &'static str, doc: &'static str) -> Field {
    field(name, Kind::Timestamp, doc)
}
pub(crate) const fn string_map(name: &'static str, doc: &'static str) -> Field {
    field(name, Kind::StringMap, doc)
}
pub(crate) const fn string_list(name: &'static str, doc: &'static str) -> Field {
    field(name, Kind::StringList, doc)
}
pub(crate) const fn one_of(
    name: &'static str,
    allowed: &'static [&'static str],
    doc: &'static str,
) -> Field {
    Field {
        name,
        kind: Kind::Text,
        allowed,
        doc,
        required: false,
        children: &[],
    }
}
pub(crate) const fn object_of(
    name: &'static str,
    children: &'static [Field],
    doc: &'static str,
) -> Field {
    Field {
        name,
        kind: Kind::Object,
        allowed: &[],
        doc,
        required: false,
        children,
    }
}
pub(crate) const fn list_of(
    name: &'static str,
    children: &'static [Field],
    doc: &'static str,
) -> Field {
    Field {
        name,
        kind: Kind::ObjectList,
        allowed: &[],
        doc,
        required: false,
        children,
    }
}

pub(crate) const fn op(
    name: &'static str,
    method: Method,
    path: &'static str,
    accepts: &'static [&'static str],
    doc: &'static str,
) -> Operation {
    Operation {
        name,
        method,
        path,
        needs_id: contains(path, "{id}"),
        needs_parent: contains(path, "{parent}"),
        accepts,
        required: &[],
        doc,
    }
}

/// Whether `haystack` contains `needle` (usable in `const` data).
const fn contains(haystack: &str, needle: &str) -> bool {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    let mut i = 0;
    while i + n.len() <= h.len() {
        let mut j = 0;
        while j < n.len() && h[i + j] == n[j] {
            j += 1;
        }
        if j == n.len() {
            return true;
        }
        i += 1;
    }
    false
}

// ---- Fields shared by several objects ------------------------------------

pub(crate) const EXPAND: Field = string_list(
    "expand",
    "Specifies which fields in the response should be expanded.",
);
pub(crate) const METADATA: Field = string_map(
    "metadata",
    "Set of key-value pairs that you can attach to an object, for storing additional information in a structured format.",
);
pub(crate) const DESCRIPTION: Field = text(
    "description",
    "An arbitrary string attached to the object. Often useful for displaying to users.",
);
pub(crate) const LIMIT: Field = amount(
    "limit",
    "A limit on the number of objects to be returned. Limit can range between 1 and 100, and the default is 10.",
);
pub(crate) const STARTING_AFTER: Field = text(
    "starting_after",
    "A cursor for use in pagination: an object ID that defines your place in the list; the next page starts after it.",
);
pub(crate) const ENDING_BEFORE: Field = text(
    "ending_before",
    "A cursor for use in pagination: an object ID that defines your place in the list; the previous page ends before it.",
);
pub(crate) const CREATED: Field = object_of(
    "created",
    &[
        timestamp("gt", "Minimum value to filter by (exclusive)."),
        timestamp("gte", "Minimum value to filter by (inclusive)."),
        timestamp("lt", "Maximum value to filter by (exclusive)."),
        timestamp("lte", "Maximum value to filter by (inclusive)."),
    ],
    "Only return objects that were created during the given date interval.",
);
pub(crate) const ADDRESS_FIELDS: &[Field] = &[
    text(
        "line1",
        "Address line 1 (e.g., street, PO Box, or company name).",
    ),
    text(
        "line2",
        "Address line 2 (e.g., apartment, suite, unit, or building).",
    ),
    text("city", "City, district, suburb, town, or village."),
    text("state", "State, county, province, or region."),
    text("postal_code", "ZIP or postal code."),
    text("country", "Two-letter country code (ISO 3166-1 alpha-2)."),
];
pub(crate) const SHIPPING: Field = object_of(
    "shipping",
    &[
        text("name", "Recipient name.").required(),
        text("phone", "Recipient phone (including extension)."),
        object_of("address", ADDRESS_FIELDS, "Shipping address.").required(),
        text(
            "carrier",
            "The delivery service that shipped a physical product, such as Fedex, UPS, USPS, etc.",
        ),
        text(
            "tracking_number",
            "The tracking number for a physical product, obtained from the delivery service.",
        ),
    ],
    "Shipping information for this object.",
);
pub(crate) const AUTOMATIC_PAYMENT_METHODS: Field = object_of(
    "automatic_payment_methods",
    &[
        boolean("enabled", "Whether this feature is enabled.").required(),
        one_of(
            "allow_redirects",
            &["always", "never"],
            "Controls whether this intent will accept redirect-based payment methods.",
        ),
    ],
    "When you enable this parameter, this intent accepts payment methods that you enable in the Dashboard and that are compatible with its other parameters.",
);

#[cfg(test)]
mod tests;
