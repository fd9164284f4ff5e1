//! Catalogue objects: customers, products, prices.

use super::Method::{Delete, Get, Post};
use super::*;

pub(crate) const CUSTOMER: Object = Object {
    name: "customer",
    doc: "A Customer object represents a customer of your business; use it to create recurring charges and track payments.",
    operations: &[
        op(
            "create",
            Post,
            "/v1/customers",
            &[
                "email",
                "name",
                "description",
                "phone",
                "metadata",
                "payment_method",
                "address",
                "shipping",
                "invoice_settings",
                "balance",
                "preferred_locales",
                "source",
                "tax_exempt",
                "expand",
            ],
            "Creates a new customer object.",
        ),
        op(
            "retrieve",
            Get,
            "/v1/customers/{id}",
            &["expand"],
            "Retrieves a Customer object.",
        ),
        op(
            "update",
            Post,
            "/v1/customers/{id}",
            &[
                "email",
                "name",
                "description",
                "phone",
                "metadata",
                "address",
                "shipping",
                "invoice_settings",
                "balance",
                "preferred_locales",
                "source",
                "default_source",
                "tax_exempt",
                "expand",
            ],
            "Updates the specified customer by setting the values of the parameters passed.",
        ),
        op(
            "delete",
            Delete,
            "/v1/customers/{id}",
            &["expand"],
            "Permanently deletes a customer. It cannot be undone; active subscriptions are canceled immediately.",
        ),
        op(
            "list",
            Get,
            "/v1/customers",
            &[
                "email",
                "created",
                "limit",
                "starting_after",
                "ending_before",
                "expand",
            ],
            "Returns a list of your customers, sorted by creation date with the most recent first.",
        ),
    ],
    fields: &[
        text(
            "email",
            "Customer's email address. Useful for searching and tracking; up to 512 characters.",
        ),
        text("name", "The customer's full name or business name."),
        DESCRIPTION,
        text("phone", "The customer's phone number."),
        METADATA,
        text(
            "payment_method",
            "The ID of the PaymentMethod to attach to the customer.",
        ),
        object_of("address", ADDRESS_FIELDS, "The customer's address."),
        SHIPPING,
        object_of(
            "invoice_settings",
            &[
                text(
                    "default_payment_method",
                    "ID of a payment method attached to the customer, used as default for subscriptions and invoices.",
                ),
                text(
                    "footer",
                    "Default footer to be displayed on invoices for this customer.",
                ),
            ],
            "Default invoice settings for this customer.",
        ),
        integer(
            "balance",
            "An integer amount in the smallest currency unit that represents the customer's current balance; negative is a credit.",
        ),
        string_list(
            "preferred_locales",
            "Customer's preferred languages, ordered by preference.",
        ),
        text(
            "source",
            "A token (e.g. `tok_visa`) or source ID, attached as the customer's default payment source.",
        ),
        text(
            "default_source",
            "ID of a source attached to this customer to use as its new default payment source.",
        ),
        one_of(
            "tax_exempt",
            &["none", "exempt", "reverse"],
            "The customer's tax exemption.",
        ),
        CREATED,
        LIMIT,
        STARTING_AFTER,
        ENDING_BEFORE,
        EXPAND,
    ],
    index: FieldIndex::EMPTY,
}
.indexed();

const RECURRING: Field = object_of(
    "recurring",
    &[
        one_of(
            "interval",
            &["day", "week", "month", "year"],
            "Specifies billing frequency. Either day, week, month or year.",
        )
        .required(),
        amount(
            "interval_count",
            "The number of intervals between subscription billings (e.g. interval=month and interval_count=3 bills every 3 months).",
        ),
        one_of(
            "usage_type",
            &["licensed", "metered"],
            "Configures how the quantity per period should be determined. Defaults to licensed.",
        ),
    ],
    "The recurring components of a price such as interval and usage_type.",
);

const TAX_BEHAVIOR: Field = one_of(
    "tax_behavior",
    &["exclusive", "inclusive", "unspecified"],
    "Specifies whether the price is considered inclusive of taxes or exclusive of taxes.",
);

pub(crate) const PRODUCT: Object = Object {
    name: "product",
    doc: "Products describe the specific goods or services you offer to your customers.",
    operations: &[
        op(
            "create",
            Post,
            "/v1/products",
            &[
                "id",
                "name",
                "description",
                "active",
                "metadata",
                "images",
                "url",
                "default_price_data",
                "tax_code",
                "statement_descriptor",
                "unit_label",
                "shippable",
                "type",
                "expand",
            ],
            "Creates a new product object.",
        )
        .requires(&["name"]),
        op(
            "retrieve",
            Get,
            "/v1/products/{id}",
            &["expand"],
            "Retrieves the details of an existing product.",
        ),
        op(
            "update",
            Post,
            "/v1/products/{id}",
            &[
                "name",
                "description",
                "active",
                "metadata",
                "images",
                "url",
                "default_price",
                "tax_code",
                "statement_descriptor",
                "unit_label",
                "shippable",
                "expand",
            ],
            "Updates the specific product by setting the values of the parameters passed.",
        ),
        op(
            "delete",
            Delete,
            "/v1/products/{id}",
            &["expand"],
            "Delete a product. Deleting a product is only possible if it has no prices associated with it.",
        ),
        op(
            "list",
            Get,
            "/v1/products",
            &[
                "active",
                "ids",
                "shippable",
                "url",
                "created",
                "limit",
                "starting_after",
                "ending_before",
                "expand",
            ],
            "Returns a list of your products, sorted by creation date with the most recent first.",
        ),
    ],
    fields: &[
        text(
            "id",
            "An identifier will be randomly generated by Stripe; you can optionally override it with your own.",
        ),
        text(
            "name",
            "The product's name, meant to be displayable to the customer.",
        ),
        text(
            "description",
            "The product's description, meant to be displayable to the customer.",
        ),
        boolean(
            "active",
            "Whether the product is currently available for purchase. Defaults to true.",
        ),
        METADATA,
        string_list(
            "images",
            "A list of up to 8 URLs of images for this product, meant to be displayable to the customer.",
        ),
        text(
            "url",
            "A URL of a publicly-accessible webpage for this product.",
        ),
        object_of(
            "default_price_data",
            &[
                text("currency", "Three-letter ISO currency code, in lowercase.").required(),
                amount(
                    "unit_amount",
                    "A positive integer in the smallest currency unit representing how much to charge.",
                ),
                decimal(
                    "unit_amount_decimal",
                    "Same as unit_amount, but accepts a decimal value with at most 12 decimal places.",
                ),
                RECURRING,
                TAX_BEHAVIOR,
            ],
            "Data used to generate a new Price object. This Price will be set as the default price for this product.",
        ),
        text(
            "default_price",
            "The ID of the Price object that is the default price for this product.",
        ),
        text("tax_code", "A tax code ID."),
        text(
            "statement_descriptor",
            "An arbitrary string to be displayed on your customer's credit card or bank statement.",
        ),
        text(
            "unit_label",
            "A label that represents units of this product, shown on receipts and invoices.",
        ),
        boolean(
            "shippable",
            "Whether this product is shipped (i.e., physical goods).",
        ),
        one_of(
            "type",
            &["good", "service"],
            "The type of the product (legacy; older API versions and localstripe use it).",
        ),
        string_list("ids", "Only return products with the given IDs."),
        CREATED,
        LIMIT,
        STARTING_AFTER,
        ENDING_BEFORE,
        EXPAND,
    ],
    index: FieldIndex::EMPTY,
}
.indexed();

pub(crate) const PRICE: Object = Object {
    name: "price",
    doc: "Prices define the unit cost, currency, and (optional) billing cycle for both recurring and one-time purchases of products.",
    operations: &[
        op(
            "create",
            Post,
            "/v1/prices",
            &[
                "currency",
                "unit_amount",
                "unit_amount_decimal",
                "product",
                "product_data",
                "nickname",
                "active",
                "metadata",
                "lookup_key",
                "transfer_lookup_key",
                "recurring",
                "billing_scheme",
                "tax_behavior",
                "expand",
            ],
            "Creates a new Price for an existing Product. The Price can be recurring or one-time.",
        )
        .requires(&["currency"]),
        op(
            "retrieve",
            Get,
            "/v1/prices/{id}",
            &["expand"],
            "Retrieves the price with the given ID.",
        ),
        op(
            "update",
            Post,
            "/v1/prices/{id}",
            &[
                "nickname",
                "active",
                "metadata",
                "lookup_key",
                "transfer_lookup_key",
                "tax_behavior",
                "expand",
            ],
            "Updates the specified price by setting the values of the parameters passed.",
        ),
        op(
            "list",
            Get,
            "/v1/prices",
            &[
                "active",
                "currency",
                "product",
                "type",
                "lookup_keys",
                "recurring",
                "created",
                "limit",
                "starting_after",
                "ending_before",
                "expand",
            ],
            "Returns a list of your active prices, excluding inline prices.",
        ),
    ],
    fields: &[
        text(
            "currency",
            "Three-letter ISO currency code, in lowercase. Must be a supported currency.",
        ),
        amount(
            "unit_amount",
            "A positive integer in the smallest currency unit representing how much to charge.",
        ),
        decimal(
            "unit_amount_decimal",
            "Same as unit_amount, but accepts a decimal value in the smallest currency unit with at most 12 decimal places.",
        ),
        text(
            "product",
            "The ID of the product that this price will belong to.",
        ),
        object_of(
            "product_data",
            &[
                text(
                    "name",
                    "The product's name, meant to be displayable to the customer.",
                )
                .required(),
                boolean(
                    "active",
                    "Whether the product is currently available for purchase. Defaults to true.",
                ),
                METADATA,
                text(
                    "statement_descriptor",
                    "An arbitrary string to be displayed on your customer's credit card or bank statement.",
                ),
                text("tax_code", "A tax code ID."),
                text(
                    "unit_label",
                    "A label that represents units of this product.",
                ),
                text(
                    "id",
                    "The identifier for the product. Must be unique. If not provided, one is generated.",
                ),
            ],
            "These fields can be used to create a new product that this price will belong to.",
        ),
        text(
            "nickname",
            "A brief description of the price, hidden from customers.",
        ),
        boolean(
            "active",
            "Whether the price can be used for new purchases. Defaults to true.",
        ),
        METADATA,
        text(
            "lookup_key",
            "A lookup key used to retrieve prices dynamically from a static string. Up to 200 characters.",
        ),
        boolean(
            "transfer_lookup_key",
            "If set to true, will atomically remove the lookup key from the existing price, and assign it to this price.",
        ),
        RECURRING,
        one_of(
            "billing_scheme",
            &["per_unit", "tiered"],
            "Describes how to compute the price per period. Either per_unit or tiered.",
        ),
        TAX_BEHAVIOR,
        one_of(
            "type",
            &["one_time", "recurring"],
            "Only return prices of type recurring or one_time.",
        ),
        string_list(
            "lookup_keys",
            "Only return the price with these lookup_keys, if any exist. You can specify up to 10 lookup_keys.",
        ),
        CREATED,
        LIMIT,
        STARTING_AFTER,
        ENDING_BEFORE,
        EXPAND,
    ],
    index: FieldIndex::EMPTY,
}
.indexed();
