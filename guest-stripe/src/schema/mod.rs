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
    /// Lookup tables over `fields`, built at compile time ([`Object::indexed`]).
    index: FieldIndex,
}

/// Most top-level fields an object may have (bits of an accept mask).
const MAX_FIELDS: usize = 64;
/// Most operations an object may have.
const MAX_OPERATIONS: usize = 8;
/// Hash slots for field names: a power of two, at least twice `MAX_FIELDS`,
/// so that probes stay short and there is always an empty slot.
const SLOTS: usize = 128;

/// Every request looks each of its fields up by name, then checks that the
/// operation accepts it. Linear scans over ~30 names and ~20 accepted names
/// per field were most of validation's time in the component (measured:
/// ~0.6 of ~1 us per 10-field request in wasm), so each object carries a
/// hash table of its field names and, per operation, a bitmask of the
/// fields it accepts. Both are `const`: a schema that does not fit (too many
/// fields, an accepted name that is not a field) fails to compile.
#[derive(Debug, Clone, Copy)]
struct FieldIndex {
    /// Open addressing by [`slot_of`]: 0 for empty, else field index + 1.
    slots: [u8; SLOTS],
    /// Bit `i` of `accepts[op]`: operation `op` accepts field `i`.
    accepts: [u64; MAX_OPERATIONS],
}

impl FieldIndex {
    /// The placeholder the data files write; [`Object::indexed`] fills it in.
    const EMPTY: FieldIndex = FieldIndex {
        slots: [0; SLOTS],
        accepts: [0; MAX_OPERATIONS],
    };
}

/// The home slot of a name: a cheap mix of its length and three of its
/// bytes (schema names differ in at least one of these almost always).
const fn slot_of(name: &[u8]) -> usize {
    let n = name.len();
    if n == 0 {
        return 0;
    }
    let h = (n as u32).wrapping_mul(0x9E37_79B1)
        ^ (name[0] as u32).wrapping_mul(0x85EB_CA6B)
        ^ (name[n - 1] as u32).wrapping_mul(0xC2B2_AE35)
        ^ (name[n / 2] as u32).wrapping_mul(0x27D4_EB2F);
    (h ^ (h >> 15)) as usize % SLOTS
}

const fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The index of `name` in `fields` through the slot table (usable in
/// `const`; the runtime lookup mirrors it with [`same_name`]).
const fn const_lookup(slots: &[u8; SLOTS], fields: &[Field], name: &[u8]) -> Option<usize> {
    let mut i = slot_of(name);
    loop {
        let s = slots[i] as usize;
        if s == 0 {
            return None;
        }
        if same_bytes(fields[s - 1].name.as_bytes(), name) {
            return Some(s - 1);
        }
        i = (i + 1) % SLOTS;
    }
}

impl Object {
    /// The object with its lookup tables built (every data file's object
    /// goes through this, in `const`).
    pub(crate) const fn indexed(self) -> Object {
        assert!(
            self.fields.len() <= MAX_FIELDS,
            "too many fields for the accept mask"
        );
        assert!(
            self.operations.len() <= MAX_OPERATIONS,
            "too many operations"
        );
        let mut index = FieldIndex::EMPTY;
        let mut f = 0;
        while f < self.fields.len() {
            let name = self.fields[f].name.as_bytes();
            assert!(!name.is_empty(), "a field without a name");
            assert!(
                const_lookup(&index.slots, self.fields, name).is_none(),
                "a field named twice"
            );
            let mut i = slot_of(name);
            while index.slots[i] != 0 {
                i = (i + 1) % SLOTS;
            }
            index.slots[i] = (f + 1) as u8;
            f += 1;
        }
        let mut o = 0;
        while o < self.operations.len() {
            let accepts = self.operations[o].accepts;
            let mut a = 0;
            while a < accepts.len() {
                match const_lookup(&index.slots, self.fields, accepts[a].as_bytes()) {
                    Some(i) => index.accepts[o] |= 1 << i,
                    None => panic!("an operation accepts a field the object does not have"),
                }
                a += 1;
            }
            o += 1;
        }
        Object { index, ..self }
    }

    pub fn operation(&self, name: &str) -> Option<&'static Operation> {
        self.operations.iter().find(|op| same_name(op.name, name))
    }

    /// A top-level field by name: its position in `fields` and the field.
    pub fn field_at(&self, name: &str) -> Option<(usize, &'static Field)> {
        let fields = self.fields;
        let mut i = slot_of(name.as_bytes());
        loop {
            let s = usize::from(self.index.slots[i]);
            if s == 0 {
                return None;
            }
            let field = &fields[s - 1];
            if same_name(field.name, name) {
                return Some((s - 1, field));
            }
            i = (i + 1) % SLOTS;
        }
    }

    pub fn field(&self, name: &str) -> Option<&'static Field> {
        self.field_at(name).map(|(_, f)| f)
    }

    /// The fields `operation` (one of this object's) accepts, as a bitmask
    /// over positions in `fields`.
    pub fn accept_mask(&self, operation: &Operation) -> u64 {
        self.operations
            .iter()
            .position(|op| same_name(op.name, operation.name))
            .map_or(0, |o| self.index.accepts[o])
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
