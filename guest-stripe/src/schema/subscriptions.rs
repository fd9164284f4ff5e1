//! Recurring billing: subscriptions and coupons.

use super::Method::{Delete, Get, Post};
use super::*;

pub(crate) const SUBSCRIPTION: Object = Object {
    name: "subscription",
    doc: "Subscriptions allow you to charge a customer on a recurring basis.",
    operations: &[
        op(
            "create",
            Post,
            "/v1/subscriptions",
            &[
                "customer",
                "items",
                "currency",
                "description",
                "metadata",
                "default_payment_method",
                "default_source",
                "trial_period_days",
                "trial_end",
                "trial_from_plan",
                "cancel_at_period_end",
                "cancel_at",
                "collection_method",
                "days_until_due",
                "coupon",
                "promotion_code",
                "payment_behavior",
                "proration_behavior",
                "billing_cycle_anchor",
                "backdate_start_date",
                "off_session",
                "expand",
            ],
            "Creates a new subscription on an existing customer.",
        )
        .requires(&["customer"]),
        op(
            "retrieve",
            Get,
            "/v1/subscriptions/{id}",
            &["expand"],
            "Retrieves the subscription with the given ID.",
        ),
        op(
            "update",
            Post,
            "/v1/subscriptions/{id}",
            &[
                "items",
                "description",
                "metadata",
                "default_payment_method",
                "default_source",
                "trial_end",
                "trial_from_plan",
                "cancel_at_period_end",
                "cancel_at",
                "collection_method",
                "days_until_due",
                "coupon",
                "promotion_code",
                "payment_behavior",
                "proration_behavior",
                "off_session",
                "expand",
            ],
            "Updates an existing subscription to match the specified parameters.",
        ),
        op(
            "cancel",
            Delete,
            "/v1/subscriptions/{id}",
            &["invoice_now", "prorate", "cancellation_details", "expand"],
            "Cancels a customer's subscription immediately. The customer won't be charged again for the subscription.",
        ),
        op(
            "list",
            Get,
            "/v1/subscriptions",
            &[
                "customer",
                "price",
                "status",
                "collection_method",
                "created",
                "limit",
                "starting_after",
                "ending_before",
                "expand",
            ],
            "By default, returns a list of subscriptions that have not been canceled.",
        ),
    ],
    fields: &[
        text("customer", "The identifier of the customer to subscribe."),
        list_of(
            "items",
            &[
                text("price", "The ID of the price object."),
                text(
                    "plan",
                    "The ID of the plan object (legacy; plan-based servers such as localstripe use it).",
                ),
                amount("quantity", "Quantity for this item."),
                METADATA,
                text("id", "Subscription item to update (update only)."),
                boolean(
                    "deleted",
                    "A flag that, if set to true, will delete the specified item (update only).",
                ),
            ],
            "A list of up to 20 subscription items, each with an attached price.",
        ),
        text(
            "currency",
            "Three-letter ISO currency code, in lowercase. Must be a supported currency.",
        ),
        text(
            "description",
            "The subscription's description, meant to be displayable to the customer.",
        ),
        METADATA,
        text(
            "default_payment_method",
            "ID of the default payment method for the subscription. It must belong to the customer.",
        ),
        text(
            "default_source",
            "ID of the default payment source for the subscription. It must belong to the customer.",
        ),
        amount(
            "trial_period_days",
            "Integer representing the number of trial period days before the customer is charged for the first time.",
        ),
        timestamp(
            "trial_end",
            "Unix timestamp representing the end of the trial period; the special value `now` ends the trial immediately.",
        ),
        boolean(
            "trial_from_plan",
            "Indicates if a plan's trial_period_days should be applied to the subscription.",
        ),
        boolean(
            "cancel_at_period_end",
            "Indicate whether this subscription should cancel at the end of the current period.",
        ),
        timestamp(
            "cancel_at",
            "A timestamp at which the subscription should cancel.",
        ),
        one_of(
            "collection_method",
            &["charge_automatically", "send_invoice"],
            "Either charge_automatically, or send_invoice. Defaults to charge_automatically.",
        ),
        amount(
            "days_until_due",
            "Number of days a customer has to pay invoices generated by this subscription (send_invoice only).",
        ),
        text(
            "coupon",
            "The ID of the coupon to apply to this subscription.",
        ),
        text(
            "promotion_code",
            "The API ID of a promotion code to apply to this subscription.",
        ),
        one_of(
            "payment_behavior",
            &[
                "allow_incomplete",
                "default_incomplete",
                "error_if_incomplete",
                "pending_if_incomplete",
            ],
            "Use allow_incomplete to create subscriptions with status=incomplete if the first invoice can't be paid.",
        ),
        one_of(
            "proration_behavior",
            &["always_invoice", "create_prorations", "none"],
            "Determines how to handle prorations resulting from the billing_cycle_anchor or item changes.",
        ),
        timestamp(
            "billing_cycle_anchor",
            "A future timestamp in UTC format to anchor the subscription's billing cycle.",
        ),
        timestamp(
            "backdate_start_date",
            "A past timestamp to backdate the subscription's start date to.",
        ),
        boolean(
            "off_session",
            "Indicates if a customer is on or off-session while an invoice payment is attempted.",
        ),
        boolean(
            "invoice_now",
            "Will generate a final invoice that invoices for any un-invoiced metered usage and new/pending proration invoice items.",
        ),
        boolean(
            "prorate",
            "Will generate a proration invoice item that credits remaining unused time until the subscription period end.",
        ),
        object_of(
            "cancellation_details",
            &[
                text(
                    "comment",
                    "Additional comments about why the user canceled the subscription.",
                ),
                one_of(
                    "feedback",
                    &[
                        "customer_service",
                        "low_quality",
                        "missing_features",
                        "other",
                        "switched_service",
                        "too_complex",
                        "too_expensive",
                        "unused",
                    ],
                    "The customer submitted reason for why they canceled.",
                ),
            ],
            "Details about why this subscription was cancelled.",
        ),
        text(
            "price",
            "Filter for subscriptions that contain this recurring price ID.",
        ),
        one_of(
            "status",
            &[
                "active",
                "all",
                "canceled",
                "ended",
                "incomplete",
                "incomplete_expired",
                "past_due",
                "paused",
                "trialing",
                "unpaid",
            ],
            "The status of the subscriptions to retrieve.",
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

pub(crate) const COUPON: Object = Object {
    name: "coupon",
    doc: "A coupon contains information about a percent-off or amount-off discount you might want to apply to a customer.",
    operations: &[
        op(
            "create",
            Post,
            "/v1/coupons",
            &[
                "id",
                "percent_off",
                "amount_off",
                "currency",
                "duration",
                "duration_in_months",
                "name",
                "max_redemptions",
                "metadata",
                "redeem_by",
                "applies_to",
                "expand",
            ],
            "Creates a coupon. Give it either amount_off and currency, or percent_off.",
        ),
        op(
            "retrieve",
            Get,
            "/v1/coupons/{id}",
            &["expand"],
            "Retrieves the coupon with the given ID.",
        ),
        op(
            "update",
            Post,
            "/v1/coupons/{id}",
            &["name", "metadata", "expand"],
            "Updates the metadata of a coupon. Other coupon details (currency, duration, amount_off) are, by design, not editable.",
        ),
        op(
            "delete",
            Delete,
            "/v1/coupons/{id}",
            &["expand"],
            "You can delete coupons via the coupon management page of the Stripe dashboard or through the API.",
        ),
        op(
            "list",
            Get,
            "/v1/coupons",
            &[
                "created",
                "limit",
                "starting_after",
                "ending_before",
                "expand",
            ],
            "Returns a list of your coupons.",
        ),
    ],
    fields: &[
        text(
            "id",
            "Unique string of your choice that will be used to identify this coupon when applying it to a customer.",
        ),
        decimal(
            "percent_off",
            "A positive float larger than 0, and smaller or equal to 100, that represents the discount the coupon will apply.",
        ),
        amount(
            "amount_off",
            "A positive integer representing the amount to subtract from an invoice total (required if percent_off is not passed).",
        ),
        text(
            "currency",
            "Three-letter ISO code for the currency of the amount_off parameter (required if amount_off is passed).",
        ),
        one_of(
            "duration",
            &["once", "repeating", "forever"],
            "Specifies how long the discount will be in effect if used on a subscription. Defaults to once.",
        ),
        amount(
            "duration_in_months",
            "Required only if duration is repeating: the number of months the discount will be in effect.",
        ),
        text(
            "name",
            "Name of the coupon displayed to customers on, for instance, invoices or receipts.",
        ),
        amount(
            "max_redemptions",
            "A positive integer specifying the number of times the coupon can be redeemed before it's no longer valid.",
        ),
        METADATA,
        timestamp(
            "redeem_by",
            "Unix timestamp specifying the last time at which the coupon can be redeemed.",
        ),
        object_of(
            "applies_to",
            &[string_list(
                "products",
                "An array of Product IDs that this Coupon will apply to.",
            )],
            "A hash containing directions for what this Coupon will apply discounts to.",
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
