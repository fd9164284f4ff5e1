//! The Stripe plugin's form encoding is byte-for-byte stripe-python's, for
//! POST bodies and GET query strings, on the path a script's values take.
//!
//! Generates a few hundred parameter trees from a fixed seed (nested maps,
//! lists of maps, lists of lists, unicode, `& = + / [ ] % #` and spaces in
//! keys and values, booleans, integers, empty strings, empty maps and lists,
//! and awkward floats: `0.1`, `1e16`, `1e-7`, `-0.0`, `3.0`, ties, subnormals,
//! the largest double, `nan`, `inf`, random bit patterns), asks the real
//! stripe-python (`_APIRequestor._args_for_request_with_retries`, run by
//! `tests/servers/stripe_encode_oracle.py`) and the real compiled plugin to
//! encode each, and compares the results byte for byte.
//!
//! Every case is built as a Rhai value (`rhai::Map` of `Dynamic`s, floats as
//! Rhai `FLOAT`s) and flattened with `rhai_map_to_tree`, exactly as
//! `script_api` flattens a builder's `params` and `extra`: that is the path a
//! script's parameters take. A Rhai map iterates its keys in sorted order,
//! whatever order the script wrote them in, so stripe-python is given the
//! same params with every map's keys sorted. The JSON path (`json_to_tree`,
//! used by the CLI) is compared too, in the cases' own key order, for the
//! cases JSON can carry (not `nan` or `inf`).
//!
//! - POST: random trees through the escape hatch (`.set(...)`, the `extra`
//!   tree, encoded without schema checks, so any key goes), and real fields
//!   of payment intents and prices through the validated path.
//! - GET: `customer.list` / `price.list` / `customer.retrieve` with real
//!   list parameters (`limit`, `created[gte]`, `expand[0]`, ...) plus random
//!   escape-hatch trees, comparing the plugin's `query` with the query string
//!   of the URL stripe-python builds.
//! - End to end: `payhost run` scripts against a StubServer, comparing the
//!   request line (GET) and the body (POST) the server saw.
//!
//! The cases, their forms for each side and the generator are in
//! `encoding/params.rs`.
//!
//! Left out on purpose (DESIGN.md): booleans and nulls as items of a list
//! that stripe-python encodes item by item (a list in a map, or a list in a
//! list in a list...), where it sends `a[0]=True` / `a[0]=None`, a quirk, not
//! Stripe's API. In a list directly inside a list stripe-python encodes the
//! items like map values (`a[0][0]=true`, nulls skipped), and the cases have
//! them there.

use payhost::plugin::{self, ComponentCache, Plugin, PluginInstance, SandboxLimits, wit};
use payhost_e2e::scenario::Scenario;
use payhost_e2e::stub::{Action, StubServer};

#[path = "encoding/params.rs"]
mod params;

use params::{AWKWARD_FLOATS, Param, Rng, key, random_tree, text};

// ---- The cases -------------------------------------------------------------

fn escape_hatch_cases() -> Vec<Param> {
    let f = Param::Float;
    let mut cases = vec![
        Param::map(&[("metadata", Param::map(&[("a b", Param::text("c&d"))]))]),
        Param::map(&[
            (
                "items",
                Param::List(vec![Param::map(&[
                    ("price", Param::text("p")),
                    ("quantity", Param::Int(2)),
                ])]),
            ),
            ("expand", Param::List(vec![Param::text("x")])),
        ]),
        Param::map(&[
            ("empty_map", Param::Map(vec![])),
            ("empty_list", Param::List(vec![])),
            ("nothing", Param::Null),
            ("s", Param::text("")),
        ]),
        Param::map(&[
            ("flag", Param::Bool(true)),
            ("other", Param::Bool(false)),
            ("n", Param::Int(0)),
            ("neg", Param::Int(-42)),
        ]),
        Param::map(&[
            ("k[with]brackets", Param::text("v[x]")),
            ("%5B", Param::text("%5D")),
        ]),
        // Every awkward float, at the top level and inside a list.
        Param::Map(
            AWKWARD_FLOATS
                .iter()
                .enumerate()
                .map(|(i, x)| (format!("f{i:02}"), f(*x)))
                .collect(),
        ),
        Param::map(&[(
            "rates",
            Param::List(AWKWARD_FLOATS.iter().map(|x| f(*x)).collect()),
        )]),
        // Items of a list in a list are encoded like map values.
        Param::map(&[(
            "grid",
            Param::List(vec![
                Param::List(vec![
                    Param::Bool(true),
                    Param::Null,
                    f(-0.0),
                    Param::Bool(false),
                ]),
                Param::List(vec![Param::List(vec![f(1e-7), Param::text("x y")])]),
            ]),
        )]),
    ];
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    while cases.len() < 300 {
        cases.push(random_tree(&mut rng));
    }
    cases
}

// ---- The two sides ---------------------------------------------------------

/// How stripe-python sends params: in the body (POST) or the query (GET).
#[derive(Clone, Copy, Debug)]
enum Sent {
    Body,
    Query,
}

/// What stripe-python sends for each case, in order: the POST body or the
/// GET query string.
///
/// Through `payhost_e2e::oracle_lines`: the cases are written as Python
/// reads them (JSON cannot carry the `NaN` and `Infinity` that Python's
/// `json.loads` takes).
fn stripe_python(sent: Sent, cases: &[Param]) -> Vec<String> {
    let lines: Vec<String> = cases
        .iter()
        .map(|case| {
            assert!(matches!(case, Param::Map(_)), "cases are maps: {case:?}");
            let mut line = String::new();
            case.write_python_json(&mut line);
            line
        })
        .collect();
    let method = match sent {
        Sent::Body => "post",
        Sent::Query => "get",
    };
    payhost_e2e::oracle_lines(method, &lines)
}

fn stripe_plugin() -> PluginInstance {
    Plugin::load(
        &payhost_e2e::plugin("stripe"),
        SandboxLimits::default(),
        &ComponentCache::disabled(),
    )
    .expect("the stripe plugin loads")
    .instantiate()
    .expect("the stripe plugin instantiates")
}

/// One request for the plugin to build.
struct Call<'a> {
    object: &'a str,
    operation: &'a str,
    id: Option<&'a str>,
    params: Param,
    extra: Param,
}

impl Call<'_> {
    fn escape_hatch(object: &'static str, operation: &'static str, extra: Param) -> Call<'static> {
        Call {
            object,
            operation,
            id: None,
            params: Param::Map(vec![]),
            extra,
        }
    }

    /// The trees as a script hands them over: `rhai_map_to_tree` of the
    /// builder's `params` and `extra` maps.
    fn rhai_input(&self) -> wit::RequestInput {
        wit::RequestInput {
            id: self.id.map(str::to_string),
            parent: None,
            params: plugin::rhai_map_to_tree(&self.params.to_rhai_map())
                .expect("test params are sendable"),
            extra: plugin::rhai_map_to_tree(&self.extra.to_rhai_map())
                .expect("test params are sendable"),
        }
    }

    /// The trees as the CLI hands them over (`json_to_tree`), if JSON can
    /// carry them.
    fn json_input(&self) -> Option<wit::RequestInput> {
        let tree = |v| plugin::json_to_tree(&v).expect("test params are sendable");
        Some(wit::RequestInput {
            id: self.id.map(str::to_string),
            parent: None,
            params: tree(self.params.to_json()?),
            extra: tree(self.extra.to_json()?),
        })
    }

    /// What stripe-python is asked about for the Rhai path: the script's maps
    /// iterate in key order, params before extra.
    fn rhai_dict(&self) -> Param {
        self.params
            .in_rhai_order()
            .then(&self.extra.in_rhai_order())
    }

    fn json_dict(&self) -> Param {
        self.params.then(&self.extra)
    }
}

/// The plugin's encoding (body or query) of one call.
fn plugin_sends(
    instance: &mut PluginInstance,
    call: &Call<'_>,
    input: &wit::RequestInput,
    sent: Sent,
) -> String {
    let request = instance
        .build_request(call.object, call.operation, input)
        .expect("the plugin call itself works")
        .unwrap_or_else(|e| {
            panic!(
                "plugin refused {}.{} {:?} + {:?}: {}",
                call.object, call.operation, call.params, call.extra, e.message
            )
        });
    match sent {
        Sent::Body => {
            assert!(
                request.query.is_empty(),
                "a POST sent a query: {}",
                request.query
            );
            String::from_utf8(request.body).expect("form bodies are ASCII")
        }
        Sent::Query => {
            assert!(request.body.is_empty(), "a GET sent a body");
            request.query
        }
    }
}

/// Both encodings from the first byte where they differ (bodies run to
/// kilobytes; the start they share says nothing).
fn difference(python: &str, plugin: &str) -> String {
    let at = python
        .bytes()
        .zip(plugin.bytes())
        .position(|(a, b)| a != b)
        .unwrap_or(python.len().min(plugin.len()));
    // Both are ASCII (form encoding), so any byte index is a char boundary.
    let from = at.saturating_sub(30);
    let tail = |s: &str| {
        s.get(from..)
            .unwrap_or("")
            .chars()
            .take(120)
            .collect::<String>()
    };
    format!(
        "  differ from byte {at} (lengths {} and {}):\n  python …{}\n  plugin …{}",
        python.len(),
        plugin.len(),
        tail(python),
        tail(plugin)
    )
}

/// Compares the plugin with stripe-python for every call, on the Rhai path
/// and (where JSON can carry the case) the JSON path; panics listing every
/// difference.
fn assert_same_as_stripe_python(sent: Sent, calls: &[Call<'_>]) {
    let rhai_dicts: Vec<Param> = calls.iter().map(Call::rhai_dict).collect();
    let json_dicts: Vec<Param> = calls.iter().map(Call::json_dict).collect();
    let want_rhai = stripe_python(sent, &rhai_dicts);
    let want_json = stripe_python(sent, &json_dicts);
    let mut instance = stripe_plugin();
    let mut mismatches = Vec::new();
    let mut json_compared = 0;
    for (i, call) in calls.iter().enumerate() {
        let got = plugin_sends(&mut instance, call, &call.rhai_input(), sent);
        if got != want_rhai[i] {
            mismatches.push(format!(
                "rhai path, {}.{} input {}\n{}",
                call.object,
                call.operation,
                rhai_dicts[i].python_json(),
                difference(&want_rhai[i], &got)
            ));
        }
        if let Some(input) = call.json_input() {
            json_compared += 1;
            let got = plugin_sends(&mut instance, call, &input, sent);
            if got != want_json[i] {
                mismatches.push(format!(
                    "json path, {}.{} input {}\n{}",
                    call.object,
                    call.operation,
                    json_dicts[i].python_json(),
                    difference(&want_json[i], &got)
                ));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} comparisons differ ({sent:?}):\n{}",
        mismatches.len(),
        calls.len() + json_compared,
        mismatches.join("\n")
    );
}

// ---- POST bodies -----------------------------------------------------------

#[test]
fn escape_hatch_parameters_encode_exactly_like_stripe_python() {
    let cases = escape_hatch_cases();
    let floats = cases.iter().filter(|c| has_float(c)).count();
    assert!(
        cases.len() >= 300 && floats >= 100,
        "{floats} cases with floats"
    );
    let calls: Vec<Call> = cases
        .into_iter()
        .map(|extra| Call::escape_hatch("customer", "create", extra))
        .collect();
    assert_same_as_stripe_python(Sent::Body, &calls);
}

fn has_float(p: &Param) -> bool {
    match p {
        Param::Float(_) => true,
        Param::List(items) => items.iter().any(has_float),
        Param::Map(entries) => entries.iter().any(|(_, v)| has_float(v)),
        _ => false,
    }
}

#[test]
fn schema_fields_encode_exactly_like_stripe_python() {
    let t = Param::text;
    let list = |items: &[&str]| Param::List(items.iter().map(|s| t(s)).collect());
    let call = |object, params| Call {
        object,
        operation: "create",
        id: None,
        params,
        extra: Param::Map(vec![]),
    };
    let mut calls = vec![
        call(
            "payment_intent",
            Param::map(&[
                ("amount", Param::Int(2000)),
                ("currency", t("usd")),
                ("customer", t("cus_1")),
                (
                    "metadata",
                    Param::map(&[
                        ("order id", t("6735")),
                        ("note", t("a&b=c [x] 100% #1 é")),
                        ("rate", Param::Float(0.1)),
                        ("tiny", Param::Float(2.5e-5)),
                        ("big", Param::Float(1e16)),
                        ("whole", Param::Float(3.0)),
                        ("gift", Param::Bool(true)),
                    ]),
                ),
                ("payment_method_types", list(&["card", "sepa_debit"])),
                ("confirm", Param::Bool(true)),
                ("description", t("Ünïcödé + spaces / slashes")),
                ("receipt_email", t("a+b@example.com")),
                ("capture_method", t("manual")),
                ("expand", list(&["customer", "latest_charge"])),
            ]),
        ),
        call(
            "payment_intent",
            Param::map(&[
                ("amount", Param::Int(0)),
                ("currency", t("eur")),
                ("confirm", Param::Bool(false)),
                ("metadata", Param::Map(vec![])),
            ]),
        ),
        call(
            "payment_intent",
            Param::map(&[
                ("amount", Param::Int(1)),
                ("currency", t("usd")),
                ("payment_method_types", Param::List(vec![])),
                ("statement_descriptor_suffix", t("x y")),
            ]),
        ),
    ];
    // `unit_amount_decimal` is a decimal field: any finite float.
    for x in AWKWARD_FLOATS.iter().filter(|x| x.is_finite()) {
        calls.push(call(
            "price",
            Param::map(&[
                ("currency", t("usd")),
                ("product", t("prod_1")),
                ("unit_amount_decimal", Param::Float(*x)),
                ("metadata", Param::map(&[("x", Param::Float(*x))])),
            ]),
        ));
    }
    assert_same_as_stripe_python(Sent::Body, &calls);
}

// ---- GET query strings -----------------------------------------------------

fn list_params(rng: &mut Rng) -> Param {
    let t = Param::text;
    let mut entries: Vec<(&str, Param)> = Vec::new();
    if rng.below(2) == 0 {
        entries.push(("limit", Param::Int(rng.below(101) as i64)));
    }
    if rng.below(2) == 0 {
        let mut created = Vec::new();
        for bound in ["gt", "gte", "lt", "lte"] {
            match rng.below(3) {
                0 => created.push((bound, Param::Int(rng.below(2_000_000_000) as i64))),
                1 => created.push((bound, t("now"))),
                _ => {}
            }
        }
        entries.push(("created", Param::map(&created)));
    }
    if rng.below(2) == 0 {
        let n = rng.below(4);
        let items = (0..n).map(|_| Param::Text(key(rng))).collect();
        entries.push(("expand", Param::List(items)));
    }
    if rng.below(2) == 0 {
        entries.push(("starting_after", Param::Text(text(rng))));
    }
    if rng.below(3) == 0 {
        entries.push(("ending_before", Param::Text(text(rng))));
    }
    if rng.below(2) == 0 {
        entries.push(("email", Param::Text(format!("{}@example.com", text(rng)))));
    }
    Param::map(&entries)
}

#[test]
fn list_and_retrieve_query_strings_encode_exactly_like_stripe_python() {
    let t = Param::text;
    let mut calls = vec![
        Call {
            object: "customer",
            operation: "list",
            id: None,
            params: Param::map(&[
                ("limit", Param::Int(3)),
                ("created", Param::map(&[("gte", Param::Int(1_700_000_000))])),
                ("expand", Param::List(vec![t("data.default_source")])),
                ("email", t("a+b c@example.com")),
            ]),
            extra: Param::map(&[("rate", Param::Float(2.5e-5)), ("big", Param::Float(1e16))]),
        },
        Call {
            object: "customer",
            operation: "list",
            id: None,
            params: Param::Map(vec![]),
            extra: Param::Map(vec![]),
        },
        Call {
            object: "customer",
            operation: "retrieve",
            id: Some("cus_1"),
            params: Param::map(&[("expand", Param::List(vec![t("sources"), t("tax ids")]))]),
            extra: Param::Map(vec![]),
        },
        Call {
            object: "price",
            operation: "list",
            id: None,
            params: Param::map(&[
                ("active", Param::Bool(true)),
                ("currency", t("usd")),
                ("type", t("recurring")),
                (
                    "lookup_keys",
                    Param::List(vec![t("gold [monthly]"), t("a&b")]),
                ),
                ("recurring", Param::map(&[("interval", t("month"))])),
                ("limit", Param::Int(100)),
            ]),
            extra: Param::Map(vec![]),
        },
    ];
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    while calls.len() < 150 {
        let params = list_params(&mut rng);
        let extra = if rng.below(2) == 0 {
            random_tree(&mut rng)
        } else {
            Param::Map(vec![])
        };
        calls.push(Call {
            object: "customer",
            operation: "list",
            id: None,
            params,
            extra,
        });
    }
    assert_same_as_stripe_python(Sent::Query, &calls);
}

/// `payhost run`: a script lists customers with list parameters and floats;
/// the request line the server saw carries stripe-python's query string.
#[test]
fn a_scripts_list_request_line_carries_stripe_pythons_query_string() {
    let stub = StubServer::start(|_, _| {
        Action::json(
            200,
            r#"{"object":"list","data":[],"has_more":false,"url":"/v1/customers"}"#,
        )
    });
    let s = Scenario::new();
    s.flow("new_list_customer_response", r#"print("listed");"#);
    s.flow("new_list_customer_error", r#"print("list failed");"#);
    s.script(
        r#"
        let r = new_customer()
            .limit(3)
            .email("a+b c@example.com")
            .created(#{ lt: 1800000000, gte: 1700000000 })
            .expand(["data.default_source", "data.invoice_settings"])
            .set("ratio", 2.5e-5)
            .set("big", 1.0e16)
            .set("neg_zero", -0.0)
            .set("whole", 3.0)
            .set("tags", [1, 0.1, "x y", #{ "k&v": 123456789.125 }])
            .list_async("w1", "ctx-1");
        print(r);
        "#,
    );
    let out = s.run(&stub.base_url());
    out.assert_success();
    out.assert_printed("customer_request_dispatched");
    out.assert_printed("listed");

    // The same parameters as the script, in the order a Rhai map keeps them:
    // the setters' fields (sorted), then the `.set` ones (sorted).
    let t = Param::text;
    let f = Param::Float;
    let dict = Param::map(&[
        (
            "created",
            Param::map(&[
                ("gte", Param::Int(1_700_000_000)),
                ("lt", Param::Int(1_800_000_000)),
            ]),
        ),
        ("email", t("a+b c@example.com")),
        (
            "expand",
            Param::List(vec![t("data.default_source"), t("data.invoice_settings")]),
        ),
        ("limit", Param::Int(3)),
        ("big", f(1e16)),
        ("neg_zero", f(-0.0)),
        ("ratio", f(2.5e-5)),
        (
            "tags",
            Param::List(vec![
                Param::Int(1),
                f(0.1),
                t("x y"),
                Param::map(&[("k&v", f(123_456_789.125))]),
            ]),
        ),
        ("whole", f(3.0)),
    ]);
    let query = stripe_python(Sent::Query, &[dict]).remove(0);
    // Guards against both sides agreeing on nothing.
    assert!(
        query.contains("created[gte]=1700000000") && query.contains("big=1e%2B16"),
        "{query}"
    );
    let seen = stub.seen();
    assert_eq!(seen.len(), 1, "{seen:?}\n{out}");
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("GET", format!("/v1/customers?{query}").as_str()),
        "the request line differs from stripe-python's"
    );
    assert!(seen[0].body.is_empty());
}

/// `payhost run`: a script creates a price with a decimal amount and float
/// metadata; the body the server saw is stripe-python's.
#[test]
fn a_scripts_create_body_is_stripe_pythons() {
    let stub = StubServer::ok_objects();
    let s = Scenario::new();
    s.flow("new_create_price_response", r#"print("created");"#);
    s.flow("new_create_price_error", r#"print("create failed");"#);
    s.script(
        r#"
        let r = new_price()
            .currency("usd")
            .product("prod_1")
            .unit_amount_decimal(0.07)
            .metadata("tiny", 1.0e-7)
            .metadata("rate", 0.1)
            .metadata("a b&c", "x/y z")
            .set("ratios", [[true, 2.5e-5], -0.0])
            .create_async("w1", "ctx-1");
        print(r);
        "#,
    );
    let out = s.run(&stub.base_url());
    out.assert_success();
    out.assert_printed("price_request_dispatched");
    out.assert_printed("created");

    let t = Param::text;
    let f = Param::Float;
    let dict = Param::map(&[
        ("currency", t("usd")),
        (
            "metadata",
            Param::map(&[("a b&c", t("x/y z")), ("rate", f(0.1)), ("tiny", f(1e-7))]),
        ),
        ("product", t("prod_1")),
        ("unit_amount_decimal", f(0.07)),
        (
            "ratios",
            Param::List(vec![
                Param::List(vec![Param::Bool(true), f(2.5e-5)]),
                f(-0.0),
            ]),
        ),
    ]);
    let body = stripe_python(Sent::Body, &[dict]).remove(0);
    assert!(
        body.contains("metadata[tiny]=1e-07") && body.contains("ratios[0][0]=true"),
        "{body}"
    );
    let seen = stub.seen();
    assert_eq!(seen.len(), 1, "{seen:?}\n{out}");
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("POST", "/v1/prices")
    );
    assert_eq!(
        String::from_utf8_lossy(&seen[0].body),
        body,
        "the body differs from stripe-python's"
    );
}
