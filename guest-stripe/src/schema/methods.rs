//! Saved payment details: payment methods and setup intents.

use super::Method::{Get, Post};
use super::*;

const BILLING_DETAILS: Field = object_of(
    "billing_details",
    &[
        text("name", "Full name."),
        text("email", "Email address."),
        text("phone", "Billing phone number (including extension)."),
        object_of("address", ADDRESS_FIELDS, "Billing address."),
    ],
    "Billing information associated with the PaymentMethod that may be used or required by particular types of payment methods.",
);

pub(crate) const PAYMENT_METHOD: Object = Object {
    name: "payment_method",
    doc: "PaymentMethod objects represent your customer's payment instruments.",
    operations: &[
        op(
            "create",
            Post,
            "/v1/payment_methods",
            &["type", "card", "billing_details", "metadata", "expand"],
            "Creates a PaymentMethod object.",
        ),
        op(
            "retrieve",
            Get,
            "/v1/payment_methods/{id}",
            &["expand"],
            "Retrieves a PaymentMethod object attached to the Stripe account.",
        ),
        op(
            "update",
            Post,
            "/v1/payment_methods/{id}",
            &["billing_details", "card", "metadata", "expand"],
            "Updates a PaymentMethod object. A PaymentMethod must be attached to a customer to be updated.",
        ),
        op(
            "attach",
            Post,
            "/v1/payment_methods/{id}/attach",
            &["customer", "expand"],
            "Attaches a PaymentMethod object to a Customer.",
        )
        .requires(&["customer"]),
        op(
            "detach",
            Post,
            "/v1/payment_methods/{id}/detach",
            &["expand"],
            "Detaches a PaymentMethod object from a Customer; it can no longer be used for a payment or re-attached.",
        ),
        op(
            "list",
            Get,
            "/v1/payment_methods",
            &[
                "customer",
                "type",
                "limit",
                "starting_after",
                "ending_before",
                "expand",
            ],
            "Returns a list of PaymentMethods for Treasury flows, or of a customer when `customer` is set.",
        ),
    ],
    fields: &[
        text(
            "type",
            "The type of the PaymentMethod (for example `card`).",
        ),
        object_of(
            "card",
            &[
                text(
                    "number",
                    "The card number, as a string without any separators.",
                ),
                amount(
                    "exp_month",
                    "Two-digit number representing the card's expiration month.",
                ),
                amount(
                    "exp_year",
                    "Four-digit number representing the card's expiration year.",
                ),
                text(
                    "cvc",
                    "The card's CVC. It is highly recommended to always include this value.",
                ),
                text(
                    "token",
                    "For backwards compatibility, a token such as `tok_visa` instead of raw card details.",
                ),
            ],
            "If this is a card PaymentMethod, this hash contains the user's card details.",
        ),
        BILLING_DETAILS,
        METADATA,
        text(
            "customer",
            "The ID of the customer to which to attach the PaymentMethod (or whose PaymentMethods to list).",
        ),
        LIMIT,
        STARTING_AFTER,
        ENDING_BEFORE,
        EXPAND,
    ],
    index: FieldIndex::EMPTY,
}
.indexed();

pub(crate) const SETUP_INTENT: Object = Object {
    name: "setup_intent",
    doc: "A SetupIntent guides you through the process of setting up and saving a customer's payment credentials for future payments.",
    operations: &[
        op(
            "create",
            Post,
            "/v1/setup_intents",
            &[
                "customer",
                "payment_method",
                "payment_method_types",
                "usage",
                "description",
                "metadata",
                "confirm",
                "return_url",
                "automatic_payment_methods",
                "on_behalf_of",
                "expand",
            ],
            "Creates a SetupIntent object.",
        ),
        op(
            "retrieve",
            Get,
            "/v1/setup_intents/{id}",
            &["expand"],
            "Retrieves the details of a SetupIntent that has previously been created.",
        ),
        op(
            "update",
            Post,
            "/v1/setup_intents/{id}",
            &[
                "customer",
                "payment_method",
                "payment_method_types",
                "description",
                "metadata",
                "expand",
            ],
            "Updates a SetupIntent object.",
        ),
        op(
            "confirm",
            Post,
            "/v1/setup_intents/{id}/confirm",
            &["payment_method", "return_url", "expand"],
            "Confirm that your customer intends to set up the current or provided payment method.",
        ),
        op(
            "cancel",
            Post,
            "/v1/setup_intents/{id}/cancel",
            &["cancellation_reason", "expand"],
            "Cancels a SetupIntent that is not yet succeeded or canceled.",
        ),
        op(
            "list",
            Get,
            "/v1/setup_intents",
            &[
                "customer",
                "payment_method",
                "created",
                "limit",
                "starting_after",
                "ending_before",
                "expand",
            ],
            "Returns a list of SetupIntents.",
        ),
    ],
    fields: &[
        text(
            "customer",
            "ID of the Customer this SetupIntent belongs to, if one exists.",
        ),
        text(
            "payment_method",
            "ID of the payment method (a PaymentMethod, Card, or saved Source object) to attach to this SetupIntent.",
        ),
        string_list(
            "payment_method_types",
            "The list of payment method types (for example, card) that this SetupIntent can use.",
        ),
        one_of(
            "usage",
            &["off_session", "on_session"],
            "Indicates how the payment method is intended to be used in the future. Defaults to off_session.",
        ),
        DESCRIPTION,
        METADATA,
        boolean(
            "confirm",
            "Set to true to attempt to confirm this SetupIntent immediately.",
        ),
        text(
            "return_url",
            "The URL to redirect your customer back to after they authenticate or cancel their payment on the payment method's app or site.",
        ),
        AUTOMATIC_PAYMENT_METHODS,
        text(
            "on_behalf_of",
            "The Stripe account ID created for this SetupIntent (Connect).",
        ),
        one_of(
            "cancellation_reason",
            &["abandoned", "duplicate", "requested_by_customer"],
            "Reason for canceling this SetupIntent.",
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
