"""Encoding oracle: the exact form body (or query string) stripe-python sends
for given params.

Reads JSON lines on stdin, each one JSON object (a params dict, parsed with
`json.loads`, so key order is kept as written; `NaN`, `Infinity` and
`-Infinity` are read as floats, as `json.loads` does by default). Writes one
line per input on stdout: `json.dumps(body)`, the body as a JSON string, so
that any character survives the trip. Blank input lines are skipped.

`--method get` answers, instead of the POST body, the query string of the
URL stripe-python builds for a GET with those params (without the `?`;
empty when nothing is sent). It is the same encoding: for GET and DELETE the
builder puts `encoded_params` into the URL's query instead of the body.

The body is not re-implemented here. It comes from stripe-python's own
request builder, `_APIRequestor._args_for_request_with_retries`, the function
`request_raw` calls right before handing the body to the HTTP client. For a
V1 POST it does (stripe/_api_requestor.py, stripe 16.1.0):

    encoded_params = urlencode(list(_api_encode(params or {})))
    encoded_params = encoded_params.replace("%5B", "[").replace("%5D", "]")
    post_data = encoded_params

As a guard against a library upgrade moving that code, every body is also
computed with those three lines (`mirrored`) and the two must agree; if they
ever differ the oracle stops with an error instead of answering.

    echo '{"metadata": {"a b": "c&d"}}' | python stripe_encode_oracle.py
    "metadata[a+b]=c%26d"
    echo '{"limit": 3, "created": {"gte": 1}}' | python stripe_encode_oracle.py --method get
    "limit=3&created[gte]=1"
"""

import argparse
import json
import sys
from urllib.parse import urlencode, urlsplit

import stripe
from stripe._encode import _api_encode

EXPECTED_STRIPE_VERSION = "16.1.0"

# Any key will do: the request is built, never sent. No HTTP client is
# created either: that happens later, in request_raw.
_REQUESTOR = stripe.StripeClient("sk_test_encode_oracle")._requestor


def library_body(params: dict, method: str) -> str:
    """The POST body, or the GET query string, exactly as stripe-python
    builds it."""
    args = _REQUESTOR._args_for_request_with_retries(
        method,
        "/v1/encode_oracle",
        params,
        None,
        base_address="api",
        api_mode="V1",
    )
    # (method, abs_url, headers, post_data, max_network_retries, usage, ...)
    if method == "get":
        if args[3] is not None:
            raise TypeError("stripe-python built a body for a GET")
        # The query is everything after the `?`: `quote_plus` leaves no `?`
        # or `#` unencoded in it, so `urlsplit` cannot cut it short.
        return urlsplit(args[1]).query
    post_data = args[3]
    if not isinstance(post_data, str):
        raise TypeError(f"stripe-python built a {type(post_data).__name__} body")
    return post_data


def mirrored(params: dict) -> str:
    """The same three lines as stripe-python's _api_requestor."""
    encoded = urlencode(list(_api_encode(params or {})))
    return encoded.replace("%5B", "[").replace("%5D", "]")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--method",
        choices=["post", "get"],
        default="post",
        help="post: answer the form body (default); get: answer the query string",
    )
    method = parser.parse_args().method
    if stripe.VERSION != EXPECTED_STRIPE_VERSION:
        print(
            f"stripe_encode_oracle: expected stripe {EXPECTED_STRIPE_VERSION}, "
            f"found {stripe.VERSION} (see tests/servers/requirements.txt)",
            file=sys.stderr,
        )
        return 2
    for number, line in enumerate(sys.stdin, start=1):
        if not line.strip():
            continue
        try:
            params = json.loads(line)
        except json.JSONDecodeError as err:
            print(f"stripe_encode_oracle: line {number} is not JSON: {err}", file=sys.stderr)
            return 2
        if not isinstance(params, dict):
            print(
                f"stripe_encode_oracle: line {number} is a JSON {type(params).__name__}, "
                "expected an object (a params dict)",
                file=sys.stderr,
            )
            return 2
        body = library_body(params, method)
        check = mirrored(params)
        if body != check:
            print(
                f"stripe_encode_oracle: line {number}: the library built {body!r} "
                f"but its documented steps give {check!r}; re-read stripe/_api_requestor.py",
                file=sys.stderr,
            )
            return 3
        sys.stdout.write(json.dumps(body) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
