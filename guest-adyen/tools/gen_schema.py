#!/usr/bin/env python3
"""Generates guest-adyen/src/schema/generated.rs from Adyen's Checkout v71
OpenAPI definition (tests/data/adyen/CheckoutService-v71.json).

The plugin's objects and operations are chosen by hand (OBJECTS below); their
fields come from the spec: every property of each operation's request body
(or its query parameters for GET/DELETE), with its kind, allowed values
(enums), nested required flags and a one-line doc. Nested objects are
expanded up to MAX_DEPTH levels below the top; deeper ones are kept as open
objects (any keys; sent unchecked), so the schema stays small and finite
whatever the spec's recursion.

Run from the repository root, then `cargo fmt --all`:

    python3 guest-adyen/tools/gen_schema.py
"""

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "tests" / "data" / "adyen" / "CheckoutService-v71.json"
OUT = ROOT / "guest-adyen" / "src" / "schema" / "generated.rs"

# Nesting expanded below top-level fields: `amount.value` is depth 1,
# `lineItems[].x`, `paymentMethod.x` too; `a.b.c` is depth 2.
MAX_DEPTH = 2

# (object, doc, [(operation, method, path, spec path, spec method, doc)])
OBJECTS = [
    ("payment", "A payment: authorise a payment with a payment method (Checkout `/payments`).", [
        ("create", "Post", "/payments", "/payments", "post",
         "Starts a transaction: authorises the payment with the payment method given."),
    ]),
    ("payment_details", "Additional payment details: the result of a redirect or a 3D Secure challenge.", [
        ("create", "Post", "/payments/details", "/payments/details", "post",
         "Submits details for a payment created earlier (redirect result, 3D Secure data)."),
    ]),
    ("payment_capture", "A capture of an authorised payment; set the payment's PSP reference with `.parent(...)`.", [
        ("create", "Post", "/payments/{parent}/captures", "/payments/{paymentPspReference}/captures", "post",
         "Captures an authorised payment (all or part of its amount)."),
    ]),
    ("payment_refund", "A refund of a captured payment; set the payment's PSP reference with `.parent(...)`.", [
        ("create", "Post", "/payments/{parent}/refunds", "/payments/{paymentPspReference}/refunds", "post",
         "Refunds a captured payment (all or part of its amount)."),
    ]),
    ("payment_cancel", "A cancellation of an authorised payment; set the payment's PSP reference with `.parent(...)`.", [
        ("create", "Post", "/payments/{parent}/cancels", "/payments/{paymentPspReference}/cancels", "post",
         "Cancels an authorised payment that has not been captured yet."),
    ]),
    ("payment_reversal", "A reversal (cancel or refund) of a payment; set the payment's PSP reference with `.parent(...)`.", [
        ("create", "Post", "/payments/{parent}/reversals", "/payments/{paymentPspReference}/reversals", "post",
         "Refunds a captured payment, or cancels it if it is not captured yet."),
    ]),
    ("payment_amount_update", "An update of an authorised amount; set the payment's PSP reference with `.parent(...)`.", [
        ("create", "Post", "/payments/{parent}/amountUpdates", "/payments/{paymentPspReference}/amountUpdates", "post",
         "Increases or decreases the authorised amount of a payment."),
    ]),
    ("cancel", "A cancellation of a payment identified by your own reference (`paymentReference`).", [
        ("create", "Post", "/cancels", "/cancels", "post",
         "Cancels an authorised payment identified by its merchant reference."),
    ]),
    ("payment_link", "A payment link: a hosted page where the shopper pays.", [
        ("create", "Post", "/paymentLinks", "/paymentLinks", "post",
         "Creates a payment link."),
        ("retrieve", "Get", "/paymentLinks/{id}", "/paymentLinks/{linkId}", "get",
         "Retrieves a payment link by its id."),
        ("update", "Patch", "/paymentLinks/{id}", "/paymentLinks/{linkId}", "patch",
         "Updates a payment link (its status: `expired`)."),
    ]),
    ("session", "A payment session for Adyen's Drop-in or Components.", [
        ("create", "Post", "/sessions", "/sessions", "post",
         "Creates a payment session."),
        ("retrieve", "Get", "/sessions/{id}", "/sessions/{sessionId}", "get",
         "Gets the result of a payment session (`sessionResult` from the client)."),
    ]),
    ("payment_methods", "The payment methods available for a transaction.", [
        ("list", "Post", "/paymentMethods", "/paymentMethods", "post",
         "Lists the payment methods available for the given amount, country and channel."),
    ]),
    ("stored_payment_method", "A payment method stored for a shopper (tokenised card, ...).", [
        ("list", "Get", "/storedPaymentMethods", "/storedPaymentMethods", "get",
         "Lists the payment methods stored for a shopper."),
        ("delete", "Delete", "/storedPaymentMethods/{id}", "/storedPaymentMethods/{storedPaymentMethodId}", "delete",
         "Deletes a stored payment method."),
    ]),
]

spec = json.loads(SPEC.read_text())
SCHEMAS = spec["components"]["schemas"]


def deref(sc):
    while "$ref" in sc:
        sc = SCHEMAS[sc["$ref"].split("/")[-1]]
    return sc


def ref_name(sc):
    return sc["$ref"].split("/")[-1] if "$ref" in sc else None


def one_line(text):
    text = text or ""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # markdown links
    text = text.replace("\n", " ").replace("**", "").replace(">", "").strip()
    text = re.sub(r"\s+", " ", text)
    m = re.match(r"(.+?[.:])(\s|$)", text)
    line = m.group(1) if m else text
    if len(line) > 200:
        line = line[:197].rstrip() + "..."
    return line


def rust_str(s):
    return json.dumps(s, ensure_ascii=False)


def variants(sc):
    """The schemas of a oneOf/anyOf (or the schema itself)."""
    for key in ("oneOf", "anyOf"):
        if key in sc:
            return [deref(v) for v in sc[key]]
    return [sc]


class Gen:
    def __init__(self):
        self.consts = {}  # const name -> Rust text
        self.order = []

    def field(self, name, prop, required, depth):
        """Rust `Field` literal for property `name` (a spec schema)."""
        doc = one_line(prop.get("description") or deref(prop).get("description", ""))
        sc = deref(prop)
        allowed, children, kind = [], "&[]", None
        t = sc.get("type")
        if "oneOf" in sc or "anyOf" in sc:
            kind = "Object"
            children = self.children_union(variants(sc), ref_name(prop) or name, depth)
        elif t == "string":
            kind, allowed = "Text", sc.get("enum", [])
        elif t == "integer":
            kind = "Integer"
        elif t == "number":
            kind = "Decimal"
        elif t == "boolean":
            kind = "Boolean"
        elif t == "array":
            items = deref(sc.get("items", {}))
            if items.get("type") == "string":
                kind, allowed = "StringList", items.get("enum", [])
            elif items.get("type") == "object" or "properties" in items:
                kind = "ObjectList"
                children = self.children(items, ref_name(sc.get("items", {})) or name, depth)
            else:
                sys.exit(f"unsupported array items for {name}: {items}")
        elif t == "object" or "properties" in sc:
            extra = sc.get("additionalProperties")
            if not sc.get("properties") and isinstance(extra, dict) and deref(extra).get("type") == "string":
                kind = "StringMap"
            else:
                kind = "Object"
                children = self.children(sc, ref_name(prop) or name, depth)
        else:
            sys.exit(f"unsupported schema for {name}: {sc}")
        allowed_text = "&[" + ", ".join(rust_str(a) for a in allowed) + "]"
        return (f"Field {{ name: {rust_str(name)}, kind: Kind::{kind}, allowed: {allowed_text}, "
                f"required: {'true' if required else 'false'}, doc: {rust_str(doc)}, children: {children} }}")

    def children(self, sc, label, depth):
        """A const with the fields of object `sc` one level down; `OPEN` past MAX_DEPTH."""
        if depth >= MAX_DEPTH or not sc.get("properties"):
            return "OPEN"
        const = f"{re.sub(r'[^A-Za-z0-9]', '_', label).upper()}_{depth + 1}"
        if const not in self.consts:
            self.consts[const] = None  # reserve (recursion)
            req = set(sc.get("required", []))
            fields = [self.field(k, v, k in req, depth + 1) for k, v in sc["properties"].items()]
            self.consts[const] = fields
            self.order.append(const)
        return const

    def children_union(self, schemas, label, depth):
        """Fields of any variant (first definition wins); required only where every variant requires it."""
        if depth >= MAX_DEPTH:
            return "OPEN"
        const = f"{re.sub(r'[^A-Za-z0-9]', '_', label).upper()}_{depth + 1}"
        if const in self.consts:
            return const
        self.consts[const] = None
        props, enums = {}, {}
        required = None
        for v in schemas:
            r = set(v.get("required", []))
            required = r if required is None else required & r
            for k, p in v.get("properties", {}).items():
                pd = deref(p)
                if pd.get("type") == "string" and "enum" in pd:
                    enums.setdefault(k, [])
                    for e in pd["enum"]:
                        if e not in enums[k]:
                            enums[k].append(e)
                props.setdefault(k, p)
        fields = []
        for k, p in props.items():
            if k in enums:
                p = dict(deref(p), enum=enums[k], description=p.get("description") or deref(p).get("description", ""))
            fields.append(self.field(k, p, k in (required or set()), depth + 1))
        self.consts[const] = fields
        self.order.append(const)
        return const


def operation_fields(spec_path, spec_method):
    op = spec["paths"][spec_path][spec_method]
    body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    if body is not None:
        sc = deref(body)
        return list(sc["properties"].items()), sc.get("required", [])
    props, required = [], []
    for p in op.get("parameters", []):
        if "$ref" in p or p.get("in") != "query":
            continue
        schema = dict(p.get("schema", {}), description=p.get("description", ""))
        props.append((p["name"], schema))
        if p.get("required"):
            required.append(p["name"])
    return props, required


def main():
    gen = Gen()
    objects = []
    for obj, doc, ops in OBJECTS:
        fields, seen, op_texts = [], {}, []
        for name, method, path, spec_path, spec_method, op_doc in ops:
            props, required = operation_fields(spec_path, spec_method)
            for k, p in props:
                text = gen.field(k, p, False, 0)
                if k in seen and seen[k] != text:
                    print(f"note: {obj}.{k} differs between operations; the first definition is kept", file=sys.stderr)
                if k not in seen:
                    seen[k] = text
                    fields.append(text)
            accepts = [k for k, _ in props]
            # `filled-by` lists required fields only (the host checks that);
            # the plugin also fills an optional merchantAccount (see request.rs).
            filled = [("merchantAccount", "merchant_account")] if "merchantAccount" in required else []
            op_texts.append(
                f"Operation {{ name: {rust_str(name)}, method: Method::{method}, path: {rust_str(path)}, "
                f"needs_id: {'true' if '{id}' in path else 'false'}, "
                f"needs_parent: {'true' if '{parent}' in path else 'false'}, "
                f"accepts: &[{', '.join(rust_str(a) for a in accepts)}], "
                f"required: &[{', '.join(rust_str(r) for r in required)}], "
                f"filled_by: &[{', '.join(f'({rust_str(a)}, {rust_str(b)})' for a, b in filled)}], "
                f"doc: {rust_str(op_doc)} }}")
        objects.append(
            f"Object {{ name: {rust_str(obj)}, doc: {rust_str(doc)}, operations: &[{', '.join(op_texts)}], "
            f"fields: &[{', '.join(fields)}] }}")
    out = [
        "// @generated by guest-adyen/tools/gen_schema.py from tests/data/adyen/CheckoutService-v71.json.",
        "// Do not edit by hand: change the generator (or the spec) and run it again.",
        "",
        "use super::{Field, Kind, Method, OPEN, Object, Operation};",
        "",
        "/// Every object, in the order `info` lists them.",
        f"pub const OBJECTS: &[Object] = &[{', '.join(objects)}];",
        "",
    ]
    for const in gen.order:
        out.append(f"const {const}: &[Field] = &[{', '.join(gen.consts[const])}];")
        out.append("")
    OUT.write_text("\n".join(out))
    print(f"wrote {OUT.relative_to(ROOT)}: {len(OBJECTS)} objects, {len(gen.order)} nested field sets")


main()
