"""Webhook oracle: how the providers' own Python libraries sign and verify
webhooks, for the tests of `payhost serve` and the plugins' webhook exports.

    python webhook_oracle.py COMMAND < input.json > output.json

One JSON document on stdin, one on stdout. Nothing is re-implemented here:
every signature and every verdict comes from the library's own function, so
that payhost is held to what the SDKs accept, quirks included.

Commands (stripe-python 16.1.0, `stripe/_webhook.py`; Adyen 16.0.0,
`Adyen/util.py`):

stripe-verify   {"cases": [{"payload": str, "header": str|null, "secret": str,
                 "tolerance": int}]}
                -> {"results": [{"accepted": bool, "error": str|null}]}
                `stripe.Webhook.construct_event(payload, header, secret,
                tolerance)` per case; `accepted` when it returns an event,
                otherwise `error` is the exception's type and message. It
                checks the signature, then `tolerance` (0 turns the check off),
                then that the payload is a JSON snapshot event.
stripe-parse-headers
                {"headers": [str]} -> {"results": [{"ok": bool, "timestamp":
                str|null, "signatures": [str]|null}]}: how `verify_header`
                reads each `Stripe-Signature` header, through the library's
                own `WebhookSignature._get_timestamp_and_signatures` (private,
                hence pinned with the version): `ok` is false where the header
                is empty, that function raises, or it finds no `v1`;
                `timestamp` is the integer as `%d` writes it (what is
                signed). guest-stripe's unit cases
                (tests/data/stripe/signature-headers.json) are checked
                against it.
stripe-sign     {"payload": str, "secret": str, "timestamp": int}
                -> {"header": str}
                `stripe.WebhookSignature.generate_signature_header`.
adyen-sign      {"key_hex": str, "items": [NotificationRequestItem dicts]}
                -> {"items": [...]}: each item with
                `additionalData.hmacSignature` set to
                `Adyen.util.generate_notification_sig(item, key_hex)`.
adyen-verify    {"key_hex": str, "items": [...]}
                -> {"results": [bool]}: `Adyen.util.is_valid_hmac_notification`
                per item; an item it raises on (no amount, an empty
                signature) is false.
adyen-signing-strings
                {"key_hex": str, "items": [...]} -> {"messages": [str]}: the
                exact string `generate_notification_sig` hands to HMAC for
                each item, caught on its way into `hmac.new` (the library
                does not expose it). guest-adyen's unit vectors
                (tests/data/adyen/webhook-vectors.json) are checked against
                it.

Examples:

    echo '{"payload": "{}", "secret": "whsec_x", "timestamp": 1}' \\
        | python webhook_oracle.py stripe-sign
    {"header": "t=1,v1=..."}
"""

import copy
import hmac
import json
import sys
import types

import Adyen
import Adyen.settings
import Adyen.util
import stripe

EXPECTED_STRIPE_VERSION = "16.1.0"
EXPECTED_ADYEN_VERSION = "16.0.0"


def stripe_verify(doc):
    results = []
    for case in doc["cases"]:
        try:
            stripe.Webhook.construct_event(
                case["payload"],
                case.get("header"),
                case["secret"],
                case["tolerance"],
                api_key="sk_test_webhook_oracle",
            )
            results.append({"accepted": True, "error": None})
        except Exception as e:  # every refusal, whatever raised it
            results.append({"accepted": False, "error": f"{type(e).__name__}: {e}"})
    return {"results": results}


def stripe_parse_headers(doc):
    results = []
    for header in doc["headers"]:
        try:
            if not header:
                raise ValueError("empty")
            timestamp, signatures = stripe.WebhookSignature._get_timestamp_and_signatures(
                header, stripe.WebhookSignature.EXPECTED_SCHEME
            )
            if not signatures:
                raise ValueError("no v1")
            results.append({"ok": True, "timestamp": "%d" % timestamp, "signatures": signatures})
        except Exception:
            results.append({"ok": False, "timestamp": None, "signatures": None})
    return {"results": results}


def stripe_sign(doc):
    header = stripe.WebhookSignature.generate_signature_header(
        doc["payload"], doc["secret"], doc["timestamp"]
    )
    return {"header": header}


def adyen_sign(doc):
    signed = []
    for item in doc["items"]:
        item = copy.deepcopy(item)
        signature = Adyen.util.generate_notification_sig(item, doc["key_hex"])
        item.setdefault("additionalData", {})["hmacSignature"] = signature.decode("utf-8")
        signed.append(item)
    return {"items": signed}


def adyen_verify(doc):
    results = []
    for item in doc["items"]:
        try:
            valid = Adyen.util.is_valid_hmac_notification(item, doc["key_hex"])
        except Exception:
            valid = False
        results.append(bool(valid))
    return {"results": results}


def adyen_signing_strings(doc):
    caught = []

    def spy(key, msg=None, digestmod=""):
        caught.append(msg)
        return hmac.new(key, msg, digestmod)

    # `Adyen.util` calls `hmac.new` through its own module attribute `hmac`;
    # swap that for a spy for the length of this command only.
    real = Adyen.util.hmac
    Adyen.util.hmac = types.SimpleNamespace(new=spy, compare_digest=hmac.compare_digest)
    try:
        for item in doc["items"]:
            Adyen.util.generate_notification_sig(item, doc["key_hex"])
    finally:
        Adyen.util.hmac = real
    if len(caught) != len(doc["items"]):
        sys.exit(f"caught {len(caught)} HMAC messages for {len(doc['items'])} items")
    return {"messages": [m.decode("utf-8") for m in caught]}


COMMANDS = {
    "stripe-verify": stripe_verify,
    "stripe-parse-headers": stripe_parse_headers,
    "stripe-sign": stripe_sign,
    "adyen-sign": adyen_sign,
    "adyen-verify": adyen_verify,
    "adyen-signing-strings": adyen_signing_strings,
}


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in COMMANDS:
        sys.exit(f"usage: webhook_oracle.py {{{'|'.join(COMMANDS)}}} < input.json")
    if stripe.VERSION != EXPECTED_STRIPE_VERSION:
        sys.exit(f"stripe {stripe.VERSION} is installed; the oracle is for {EXPECTED_STRIPE_VERSION}")
    if Adyen.settings.LIB_VERSION != EXPECTED_ADYEN_VERSION:
        sys.exit(
            f"Adyen {Adyen.settings.LIB_VERSION} is installed; the oracle is for {EXPECTED_ADYEN_VERSION}"
        )
    doc = json.load(sys.stdin)
    json.dump(COMMANDS[sys.argv[1]](doc), sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
