//! The script API: builders, setters and `*_async` functions, derived from the
//! plugin's schema and registered into a Rhai engine.
//!
//! For every object `o` the plugin describes, scripts get `new_o()`; for every
//! top-level field `f`, a setter `.f(value)`; for every operation `op`, a
//! function `.op_async(...)` in three forms, as in the seed design:
//!
//! ```rhai
//! let r = new_payment_intent().amount(2000).currency("usd")
//!     .create_async("worker-1", "context-123", "sk_test_...");  // explicit secret
//! new_customer().email("a@b.c").create_async("worker-1", "ctx"); // secret from config
//! new_customer().id("cus_1").retrieve_async();                   // ids from config too
//! ```
//!
//! `*_async` asks the plugin for the request (microseconds, on this thread),
//! passes it through the outbound check, hands it to the HTTP executor and
//! returns `"<object>_request_dispatched"` without waiting for the network.
//! Anything wrong with the input is a Rhai error thrown at the call, naming
//! the field; nothing is sent then.
//!
//! Host-owned builder methods: `.id(s)` (the object's id), `.set("a[b]", v)`
//! (any parameter the schema does not list; sent unchecked),
//! `.idempotency_key(k)` (instead of a generated key).
//!
//! Each thread that runs scripts (the main script's, every worker) owns one
//! [`ScriptHost`]: its own plugin instance and the token of the work it is
//! running. The Rhai closures hold an `Rc` to it; nothing is shared between
//! threads except the immutable [`Dispatcher`] parts.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;

use rhai::{Dynamic, Engine, EvalAltResult, ImmutableString, Map, Position};

use crate::http::{
    HttpConfig, HttpExecutor, Outbound, OutcomeSink, ProviderWire, Route, check_idempotency_key,
    check_secret,
};
use crate::ledger::Token;
use crate::outbound::Destination;
use crate::plugin::{self, Plugin, PluginInstance, wit};
use crate::schema::{ObjectSchema, Schema};
use crate::secret::{Redactor, Secret};

/// Ids and secret used when a script does not pass them.
#[derive(Debug, Clone)]
pub struct Defaults {
    pub worker_id: String,
    pub context_id: String,
    pub secret: Option<Secret>,
    /// Recognises `secret` in responses (built once, not per request).
    pub redactor: Redactor,
    /// The variable the secret came from (or would), for error messages.
    pub secret_env: String,
}

/// The parts of request dispatch every script thread shares.
#[derive(Clone)]
pub struct Dispatcher {
    pub plugin: Plugin,
    pub schema: Arc<Schema>,
    pub destination: Arc<Destination>,
    pub executor: HttpExecutor,
    pub defaults: Arc<Defaults>,
}

/// How the operator configured the provider connection.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// `--base-url`; the plugin's default when `None`.
    pub base_url: Option<String>,
    /// `--secret-env`; `<PROVIDER>_SECRET_KEY` when `None`.
    pub secret_env: Option<String>,
    pub worker_id: String,
    pub context_id: String,
    pub http: HttpConfig,
}

/// The secret variable a provider uses by default: `stripe` -> `STRIPE_SECRET_KEY`.
pub fn default_secret_env(provider: &str) -> String {
    format!("{}_SECRET_KEY", provider.to_ascii_uppercase())
}

impl Dispatcher {
    /// Everything `*_async` needs for `plugin`: the destination policy, the
    /// secret from the environment, and an HTTP executor on `runtime` that
    /// delivers outcomes into `sink`.
    pub fn build(
        plugin: &Plugin,
        config: &ProviderConfig,
        runtime: tokio::runtime::Handle,
        sink: Arc<dyn OutcomeSink>,
    ) -> anyhow::Result<Dispatcher> {
        let info = plugin.info();
        let secret_env = config
            .secret_env
            .clone()
            .unwrap_or_else(|| default_secret_env(&info.name));
        let secret = std::env::var(&secret_env)
            .ok()
            .filter(|s| !s.is_empty())
            .map(Secret::new);
        if let Some(secret) = &secret {
            check_secret(secret).map_err(|why| anyhow::anyhow!("{secret_env}: {why}"))?;
        }
        let base_url = match config.base_url.as_deref() {
            Some(url) => url,
            None => {
                crate::outbound::check_default_base_url(&info.default_base_url, &info.name)
                    .map_err(anyhow::Error::msg)?;
                // The plugin chose this destination, and the secret goes
                // there: say so before anything is sent.
                tracing::warn!(
                    "no --base-url: `{}` requests{} go to the plugin's default {}",
                    info.name,
                    if secret.is_some() {
                        format!(" (with the secret from {secret_env})")
                    } else {
                        String::new()
                    },
                    info.default_base_url
                );
                &info.default_base_url
            }
        };
        tracing::info!(provider = %info.name, "requests go to {base_url}");
        let destination = Destination::new(
            base_url,
            &info.name,
            info.idempotency_header.as_deref(),
            plugin.limits().max_request_body,
        )
        .map_err(anyhow::Error::msg)?;
        let destination = match &info.auth {
            wit::AuthScheme::Header(name) => destination
                .with_auth_header(name)
                .map_err(anyhow::Error::msg)?,
            _ => destination,
        };
        let wire = ProviderWire::from_info(info).map_err(anyhow::Error::msg)?;
        let executor = HttpExecutor::new(runtime, config.http.clone(), wire, sink)?;
        Ok(Dispatcher {
            plugin: plugin.clone(),
            schema: Arc::new(Schema::new(info)),
            destination: Arc::new(destination),
            executor,
            defaults: Arc::new(Defaults {
                worker_id: config.worker_id.clone(),
                context_id: config.context_id.clone(),
                redactor: Redactor::new(secret.iter()),
                secret,
                secret_env,
            }),
        })
    }
}

/// One thread's view: its plugin instance and the work it is doing now.
pub struct ScriptHost {
    dispatcher: Dispatcher,
    instance: RefCell<PluginInstance>,
    current: RefCell<Option<Token>>,
    /// When the running script must stop (flows have a wall-clock limit).
    deadline: std::cell::Cell<Option<std::time::Instant>>,
    /// Idempotency keys for the running flow job's requests, when the job
    /// may run more than once (see [`ScriptHost::set_delivery`]).
    delivery: RefCell<Option<DeliveryKeys>>,
    /// The running flow's `(WORKER_ID, CONTEXT_ID)`: what `*_async` without
    /// ids routes to, so a flow's requests stay in its worker and context.
    ids: RefCell<Option<(String, String)>>,
    /// Whether this thread's requests wait for the flow backlog (the main
    /// script's do; see `Outbound::waits_for_flows`).
    waits_for_flows: std::cell::Cell<bool>,
    /// The last secret a script passed to `*_async` and its redactor: a
    /// script passes the same key on every call (as the seed does), and
    /// building a redactor per call would cost more than the call.
    passed_secret: RefCell<Option<(Secret, Redactor)>>,
}

/// The idempotency keys of one flow job's requests: the job's identity and
/// the request's place in the flow. A job re-delivered after its worker died
/// mid-flow makes the same requests in the same order, so each gets the key
/// it had the first time and the provider answers it as a replay instead of
/// charging twice.
struct DeliveryKeys {
    job_id: String,
    next: u32,
}

impl ScriptHost {
    pub fn new(dispatcher: Dispatcher) -> Result<Rc<Self>, plugin::PluginCallError> {
        let instance = dispatcher.plugin.instantiate()?;
        Ok(Rc::new(Self {
            dispatcher,
            instance: RefCell::new(instance),
            current: RefCell::new(None),
            deadline: std::cell::Cell::new(None),
            delivery: RefCell::new(None),
            ids: RefCell::new(None),
            waits_for_flows: std::cell::Cell::new(false),
            passed_secret: RefCell::new(None),
        }))
    }

    /// `secret` (passed by a script) with its redactor, built once per
    /// distinct secret on this thread.
    fn passed_secret(&self, secret: &str) -> Result<(Secret, Redactor), String> {
        let mut cached = self.passed_secret.borrow_mut();
        if let Some((known, redactor)) = cached.as_ref()
            && known.expose() == secret
        {
            return Ok((known.clone(), redactor.clone()));
        }
        let secret = Secret::new(secret);
        check_secret(&secret)?;
        let redactor = Redactor::new([&secret]);
        *cached = Some((secret.clone(), redactor.clone()));
        Ok((secret, redactor))
    }

    /// Makes this thread's requests wait while the flows are behind: for the
    /// main script's thread, never for a flow thread.
    pub fn set_waits_for_flows(&self, waits: bool) {
        self.waits_for_flows.set(waits);
    }

    /// The worker and context ids `*_async` uses when the script passes none:
    /// the running flow's own, or (`None`) the configured defaults.
    pub fn set_ids(&self, ids: Option<(&str, &str)>) {
        *self.ids.borrow_mut() = ids.map(|(w, c)| (w.to_string(), c.to_string()));
    }

    /// Derives the idempotency keys of the requests the next flow makes from
    /// `job_id` (a job that may be delivered again), or lets the executor
    /// make random ones (`None`). A script's own `.idempotency_key(...)`
    /// always wins.
    pub fn set_delivery(&self, job_id: Option<&str>) {
        *self.delivery.borrow_mut() = job_id.map(|job_id| DeliveryKeys {
            job_id: job_id.to_string(),
            next: 0,
        });
    }

    /// The key of the running flow job's next request, if it has a delivery.
    fn next_delivery_key(&self) -> Option<String> {
        let mut delivery = self.delivery.borrow_mut();
        let keys = delivery.as_mut()?;
        let key = format!("payhost-{}-{}", keys.job_id, keys.next);
        keys.next += 1;
        Some(key)
    }

    /// Sets the token new requests are charged to (the running script's or
    /// flow's); `None` once it is done.
    pub fn set_current(&self, token: Option<Token>) {
        *self.current.borrow_mut() = token;
    }

    /// Sets the wall-clock deadline of the script about to run, or none.
    pub fn set_deadline(&self, deadline: Option<std::time::Instant>) {
        self.deadline.set(deadline);
    }

    /// Whether the running script is past its deadline.
    pub fn past_deadline(&self) -> bool {
        self.deadline
            .get()
            .is_some_and(|d| std::time::Instant::now() >= d)
    }

    /// This thread's plugin instance (workers use it to classify outcomes).
    pub fn instance(&self) -> std::cell::RefMut<'_, PluginInstance> {
        self.instance.borrow_mut()
    }
}

/// What a script builds: one object and the parameters set so far.
#[derive(Clone)]
pub struct RequestBuilder {
    object: ImmutableString,
    id: Option<String>,
    params: Map,
    extra: Map,
    idempotency_key: Option<String>,
}

impl fmt::Display for RequestBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.object)?;
        if let Some(id) = &self.id {
            write!(f, " {id}")?;
        }
        write!(f, " {:?}", self.params)?;
        if !self.extra.is_empty() {
            write!(f, " + {:?}", self.extra)?;
        }
        Ok(())
    }
}

type RhaiResult<T> = Result<T, Box<EvalAltResult>>;

fn script_error(message: impl Into<String>) -> Box<EvalAltResult> {
    // Position::NONE: Rhai fills in the call site's line and column.
    Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(message.into()),
        Position::NONE,
    ))
}

/// Names a script may not use as field setters because the host owns them.
const HOST_METHODS: &[&str] = &["id", "set", "idempotency_key"];

/// Registers the whole API for `host`'s plugin into `engine`.
pub fn register(engine: &mut Engine, host: &Rc<ScriptHost>) {
    let schema = host.dispatcher.schema.clone();
    engine
        .register_type_with_name::<RequestBuilder>("RequestBuilder")
        .register_fn("to_string", |b: &mut RequestBuilder| b.to_string())
        .register_fn("to_debug", |b: &mut RequestBuilder| b.to_string());

    for object in schema.objects() {
        let name: ImmutableString = object.name.as_str().into();
        engine.register_fn(format!("new_{}", object.name), move || RequestBuilder {
            object: name.clone(),
            id: None,
            params: Map::new(),
            extra: Map::new(),
            idempotency_key: None,
        });
    }

    engine.register_fn("id", |b: &mut RequestBuilder, id: ImmutableString| {
        b.id = Some(id.to_string());
        b.clone()
    });
    engine.register_fn(
        "idempotency_key",
        |b: &mut RequestBuilder, key: ImmutableString| -> RhaiResult<RequestBuilder> {
            check_idempotency_key(&key)
                .map_err(|why| script_error(format!("{}.idempotency_key: {why}", b.object)))?;
            b.idempotency_key = Some(key.to_string());
            Ok(b.clone())
        },
    );
    engine.register_fn(
        "set",
        |b: &mut RequestBuilder, path: ImmutableString, value: Dynamic| -> RhaiResult<_> {
            if path.is_empty() {
                return Err(script_error("set: the parameter path is empty"));
            }
            b.extra.insert(path.as_str().into(), value);
            Ok(b.clone())
        },
    );

    for (field, kinds) in schema.setter_names() {
        if HOST_METHODS.contains(&field) {
            continue;
        }
        let field: ImmutableString = field.into();
        let schema_one = schema.clone();
        let name_one = field.clone();
        engine.register_fn(
            field.as_str(),
            move |b: &mut RequestBuilder, value: Dynamic| -> RhaiResult<RequestBuilder> {
                let kind = field_kind(&schema_one, b, &name_one)?;
                set_field(b, &name_one, kind, value)?;
                Ok(b.clone())
            },
        );
        if kinds.contains(&wit::FieldKind::StringMap) {
            let schema_two = schema.clone();
            let name_two = field.clone();
            engine.register_fn(
                field.as_str(),
                move |b: &mut RequestBuilder,
                      key: ImmutableString,
                      value: Dynamic|
                      -> RhaiResult<RequestBuilder> {
                    let kind = field_kind(&schema_two, b, &name_two)?;
                    if kind != wit::FieldKind::StringMap {
                        return Err(script_error(format!(
                            "{}.{name_two} takes one value, not a key and a value",
                            b.object
                        )));
                    }
                    map_entry(b, &name_two).insert(key.as_str().into(), value);
                    Ok(b.clone())
                },
            );
        }
    }

    for op in schema.operation_names() {
        let op: ImmutableString = op.into();
        let name = format!("{op}_async");
        let (h0, o0) = (host.clone(), op.clone());
        engine.register_fn(&name, move |b: &mut RequestBuilder| -> RhaiResult<String> {
            dispatch(&h0, b, &o0, None, None, None)
        });
        let (h2, o2) = (host.clone(), op.clone());
        engine.register_fn(
            &name,
            move |b: &mut RequestBuilder,
                  worker: ImmutableString,
                  context: ImmutableString|
                  -> RhaiResult<String> {
                dispatch(&h2, b, &o2, Some(worker), Some(context), None)
            },
        );
        let (h3, o3) = (host.clone(), op.clone());
        engine.register_fn(
            &name,
            move |b: &mut RequestBuilder,
                  worker: ImmutableString,
                  context: ImmutableString,
                  secret: ImmutableString|
                  -> RhaiResult<String> {
                dispatch(&h3, b, &o3, Some(worker), Some(context), Some(secret))
            },
        );
    }
}

fn object_schema<'s>(schema: &'s Schema, b: &RequestBuilder) -> RhaiResult<&'s ObjectSchema> {
    schema
        .object(&b.object)
        .ok_or_else(|| script_error(format!("unknown object `{}`", b.object)))
}

fn field_kind(schema: &Schema, b: &RequestBuilder, field: &str) -> RhaiResult<wit::FieldKind> {
    let object = object_schema(schema, b)?;
    object.fields.get(field).copied().ok_or_else(|| {
        let mut known: Vec<&str> = object.fields.keys().map(String::as_str).collect();
        known.sort_unstable();
        script_error(format!(
            "{} has no field `{field}` (its fields: {}); use .set(\"{field}\", value) to send it unchecked",
            b.object,
            known.join(", ")
        ))
    })
}

/// Applies one setter call according to the field's kind: lists append a
/// single item or take a whole array, maps merge a map, the rest replace.
fn set_field(
    b: &mut RequestBuilder,
    field: &str,
    kind: wit::FieldKind,
    value: Dynamic,
) -> RhaiResult<()> {
    use wit::FieldKind as K;
    match kind {
        K::StringList | K::ObjectList if !value.is_array() && !value.is_unit() => {
            let entry = b
                .params
                .entry(field.into())
                .or_insert_with(|| Dynamic::from_array(Vec::new()));
            if !entry.is_array() {
                *entry = Dynamic::from_array(Vec::new());
            }
            entry
                .write_lock::<rhai::Array>()
                .expect("checked is_array")
                .push(value);
        }
        K::StringMap | K::Object if value.is_map() => {
            let incoming = value.cast::<Map>();
            map_entry(b, field).extend(incoming);
        }
        _ => {
            b.params.insert(field.into(), value);
        }
    }
    Ok(())
}

/// The map stored under `field`, made a map if it was anything else.
fn map_entry<'b>(
    b: &'b mut RequestBuilder,
    field: &str,
) -> impl std::ops::DerefMut<Target = Map> + 'b {
    let entry = b
        .params
        .entry(field.into())
        .or_insert_with(|| Dynamic::from_map(Map::new()));
    if !entry.is_map() {
        *entry = Dynamic::from_map(Map::new());
    }
    entry.write_lock::<Map>().expect("checked is_map")
}

fn dispatch(
    host: &ScriptHost,
    b: &RequestBuilder,
    operation: &str,
    worker: Option<ImmutableString>,
    context: Option<ImmutableString>,
    secret: Option<ImmutableString>,
) -> RhaiResult<String> {
    let d = &host.dispatcher;
    let object = object_schema(&d.schema, b)?;
    let op = object.operations.get(operation).ok_or_else(|| {
        script_error(format!(
            "{} has no operation `{operation}` (it has: {})",
            b.object,
            object.operation_list()
        ))
    })?;

    // An id goes into the path, or (for creates that take a custom id, like
    // coupons) into the parameters; only then are the parameters copied.
    let mut with_id = None;
    let id = if op.needs_id {
        let id = b.id.clone().ok_or_else(|| {
            script_error(format!(
                "{}.{operation} needs the object's id: call .id(\"...\") first",
                b.object
            ))
        })?;
        Some(id)
    } else {
        if let Some(id) = &b.id
            && op.accepts.iter().any(|f| f == "id")
        {
            let mut params = b.params.clone();
            params.insert("id".into(), id.as_str().into());
            with_id = Some(params);
        }
        None
    };
    let input = wit::RequestInput {
        id,
        params: plugin::rhai_map_to_tree(with_id.as_ref().unwrap_or(&b.params))
            .map_err(|e| script_error(format!("{}.{operation}: {e}", b.object)))?,
        extra: plugin::rhai_map_to_tree(&b.extra)
            .map_err(|e| script_error(format!("{}.{operation}: {e}", b.object)))?,
    };

    let built = host
        .instance
        .borrow_mut()
        .build_request(&b.object, operation, &input)
        .map_err(|e| script_error(e.to_string()))?;
    let request = built.map_err(|e| script_error(describe_plugin_error(&e, operation)))?;
    let checked = d
        .destination
        .check(&request)
        .map_err(|e| script_error(e.to_string()))?;

    let (secret, redactor) = match secret {
        Some(s) if !s.is_empty() => {
            let (secret, redactor) = host.passed_secret(&s).map_err(|why| {
                script_error(format!("{}.{operation}: {why} (third argument)", b.object))
            })?;
            (Some(secret), redactor)
        }
        _ => (d.defaults.secret.clone(), d.defaults.redactor.clone()),
    };
    if secret.is_none() && !matches!(d.plugin.info().auth, wit::AuthScheme::None) {
        return Err(script_error(format!(
            "{}.{operation}: no secret key: pass it as the third argument of {operation}_async, \
             or set {}",
            b.object, d.defaults.secret_env
        )));
    }
    let token = host.current.borrow().clone().ok_or_else(|| {
        script_error("requests can only be made while a script or flow is running")
    })?;
    let route = Route {
        object: b.object.to_string(),
        operation: operation.to_string(),
        worker_id: worker.map_or_else(
            || match &*host.ids.borrow() {
                Some((worker_id, _)) => worker_id.clone(),
                None => d.defaults.worker_id.clone(),
            },
            |w| w.to_string(),
        ),
        context_id: context.map_or_else(
            || match &*host.ids.borrow() {
                Some((_, context_id)) => context_id.clone(),
                None => d.defaults.context_id.clone(),
            },
            |c| c.to_string(),
        ),
    };
    d.executor
        .submit(Outbound {
            request: checked,
            route,
            secret,
            redactor,
            idempotency_key: b
                .idempotency_key
                .clone()
                .or_else(|| host.next_delivery_key()),
            waits_for_flows: host.waits_for_flows.get(),
            token,
        })
        .map_err(|e| script_error(format!("{}.{operation}: {e}", b.object)))?;
    Ok(format!("{}_request_dispatched", b.object))
}

/// The plugin's message names the field at fault; prefix the call it was for.
pub fn describe_plugin_error(e: &wit::PluginError, operation: &str) -> String {
    format!("{}.{operation}: {}", e.object, e.message)
}
