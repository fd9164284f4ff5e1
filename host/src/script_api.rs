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
//! Several providers may be loaded at once ([`Providers`]): each one's
//! constructors live under its name (`stripe::new_customer()`,
//! `adyen::new_payment()`), and with one provider loaded also unqualified
//! (`new_customer()`). A builder remembers its provider; its setters and
//! `*_async` check and send with that provider's schema, plugin, settings
//! and policy.
//!
//! Each thread that runs scripts (the main script's, every worker) owns one
//! [`ScriptHost`]: its own instance of each plugin and the token of the work
//! it is running. The Rhai closures hold an `Rc` to it; nothing is shared
//! between threads except the immutable [`Dispatcher`] parts.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;

use rhai::{Dynamic, Engine, EvalAltResult, ImmutableString, Map, Position};

use crate::http::{
    HttpConfig, HttpExecutor, Outbound, OutcomeSink, Route, check_idempotency_key, check_secret,
};
use crate::ledger::Token;
use crate::outbound::{AuthHeader, Policy};
use crate::plugin::{self, Plugin, PluginInstance, wit};
use crate::schema::{FieldSchema, ObjectSchema, Schema};
use crate::secret::{Redactor, Secret};
use crate::settings::{Settings, SettingsSource};

/// Ids used when a script does not pass them.
#[derive(Debug, Clone)]
pub struct Defaults {
    pub worker_id: Arc<str>,
    pub context_id: Arc<str>,
}

/// The parts of request dispatch every script thread shares.
#[derive(Clone)]
pub struct Dispatcher {
    /// The plugin, configured with the operator's non-secret settings.
    pub plugin: Plugin,
    pub schema: Arc<Schema>,
    /// What may leave the host, and the credentials it carries.
    pub policy: Arc<Policy>,
    /// Non-secret settings by name: which required fields the plugin fills in.
    pub settings: Arc<Settings>,
    pub executor: HttpExecutor,
    pub defaults: Arc<Defaults>,
}

/// How the operator configured the provider connection.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// `--base-url URL`; the plugin's default when `None`.
    pub base_url: Option<String>,
    /// `--base-url NAME=URL`: a base URL for provider `NAME` (with several
    /// plugins loaded, the only kind allowed).
    pub base_urls: Vec<(String, String)>,
    /// `--set`, `--settings`, `--secret-env`.
    pub settings: SettingsSource,
    pub worker_id: String,
    pub context_id: String,
    pub http: HttpConfig,
}

impl Dispatcher {
    /// Everything `*_async` needs for `plugin`: its settings (resolved from
    /// the flags, the environment and the settings file, the non-secret ones
    /// given to the plugin), the outbound policy with the credentials, and an
    /// HTTP executor on `runtime` that delivers outcomes into `sink`.
    pub fn build(
        plugin: &Plugin,
        config: &ProviderConfig,
        runtime: tokio::runtime::Handle,
        sink: Arc<dyn OutcomeSink>,
    ) -> anyhow::Result<Dispatcher> {
        let info = plugin.info();
        let settings = Settings::resolve(info, &config.settings, |var| std::env::var(var).ok())
            .map_err(anyhow::Error::msg)?;
        let plugin = plugin.configured(settings.public.clone())?;
        let policy = Policy::new(
            info,
            &settings,
            config.base_url.as_deref(),
            plugin.limits().max_request_body,
        )
        .map_err(anyhow::Error::msg)?;
        let executor = HttpExecutor::new(runtime, config.http.clone(), info, sink)?;
        Ok(Dispatcher {
            schema: Arc::new(Schema::new(info)),
            plugin,
            policy: Arc::new(policy),
            settings: Arc::new(settings),
            executor,
            defaults: Arc::new(Defaults {
                worker_id: config.worker_id.as_str().into(),
                context_id: config.context_id.as_str().into(),
            }),
        })
    }
}

/// Every provider loaded in this process, in `--plugin` order; each keeps
/// its own plugin, settings, policy and executor. Scripts name a provider's
/// objects `<provider>::new_<object>()`; with one provider loaded, also
/// `new_<object>()` (the seed's scripts run verbatim).
#[derive(Clone)]
pub struct Providers(Arc<[Dispatcher]>);

impl Providers {
    /// The providers, checked: at least one, and no two of the same name.
    pub fn new(list: Vec<Dispatcher>) -> anyhow::Result<Providers> {
        anyhow::ensure!(!list.is_empty(), "no plugin loaded");
        for (i, d) in list.iter().enumerate() {
            if let Some(first) = list[..i]
                .iter()
                .find(|o| o.plugin.name() == d.plugin.name())
            {
                anyhow::bail!(
                    "two plugins are both provider `{}`: {} and {}",
                    d.plugin.name(),
                    first.plugin.path().display(),
                    d.plugin.path().display()
                );
            }
        }
        Ok(Providers(list.into()))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Dispatcher> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The provider at `index` (as routes and builders carry it).
    pub fn get(&self, index: usize) -> &Dispatcher {
        &self.0[index]
    }

    /// The first (with one plugin loaded, the only) provider.
    pub fn first(&self) -> &Dispatcher {
        &self.0[0]
    }

    /// The index of the provider called `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.0.iter().position(|d| d.plugin.name() == name)
    }

    /// The names, for messages: `stripe, adyen`.
    pub fn names(&self) -> String {
        self.0
            .iter()
            .map(|d| d.plugin.name())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One thread's view: a plugin instance per provider and the work it is
/// doing now.
pub struct ScriptHost {
    providers: Providers,
    instances: Vec<RefCell<PluginInstance>>,
    current: RefCell<Option<Token>>,
    /// When the running script must stop (flows have a wall-clock limit).
    deadline: std::cell::Cell<Option<std::time::Instant>>,
    /// Idempotency keys for the running flow job's requests, when the job
    /// may run more than once (see [`ScriptHost::set_delivery`]).
    delivery: RefCell<Option<DeliveryKeys>>,
    /// The running flow's `(WORKER_ID, CONTEXT_ID)`: what `*_async` without
    /// ids routes to, so a flow's requests stay in its worker and context.
    ids: RefCell<Option<(Arc<str>, Arc<str>)>>,
    /// Whether this thread's requests wait for the flow backlog (the main
    /// script's do; see `Outbound::waits_for_flows`).
    waits_for_flows: std::cell::Cell<bool>,
    /// Per provider, the last secret a script passed to `*_async`, with its
    /// redactor and credentials header: a script passes the same key on
    /// every call (as the seed does), and building these per call would cost
    /// more than the call.
    passed_secret: Vec<RefCell<Option<PassedSecret>>>,
    /// Why the last builder method call found no function (see
    /// [`ScriptHost::describe`]).
    missing: RefCell<Option<String>>,
}

/// The idempotency keys of one flow job's requests: the job's identity and
/// the request's place in the flow. A job re-delivered after its worker died
/// mid-flow makes the same requests in the same order, so each gets the key
/// it had the first time and the provider answers it as a replay instead of
/// charging twice.
/// A secret a script passed, and what the host made of it.
#[derive(Clone)]
struct PassedSecret {
    secret: Secret,
    redactor: Redactor,
    auth: Option<Arc<AuthHeader>>,
}

struct DeliveryKeys {
    job_id: String,
    next: u32,
}

impl ScriptHost {
    pub fn new(providers: Providers) -> Result<Rc<Self>, plugin::PluginCallError> {
        let instances = providers
            .iter()
            .map(|d| d.plugin.instantiate().map(RefCell::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Rc::new(Self {
            passed_secret: providers.iter().map(|_| RefCell::new(None)).collect(),
            providers,
            instances,
            current: RefCell::new(None),
            deadline: std::cell::Cell::new(None),
            delivery: RefCell::new(None),
            ids: RefCell::new(None),
            waits_for_flows: std::cell::Cell::new(false),
            missing: RefCell::new(None),
        }))
    }

    /// `secret` (passed by a script) with its redactor and header, built
    /// once per distinct secret on this thread. The redactor knows the
    /// configured secrets too: the other credentials of the scheme still go
    /// out with the request.
    fn passed_secret(&self, provider: usize, secret: &str) -> Result<PassedSecret, String> {
        let mut cached = self.passed_secret[provider].borrow_mut();
        if let Some(known) = cached.as_ref()
            && known.secret.expose() == secret
        {
            return Ok(known.clone());
        }
        let secret = Secret::new(secret);
        check_secret(&secret)?;
        let d = self.providers.get(provider);
        let auth = d
            .policy
            .credentials
            .header(Some(&secret))
            .map_err(|e| e.to_string())?
            .map(Arc::new);
        let configured = d.settings.secrets.iter().map(|(_, s)| s);
        let passed = PassedSecret {
            redactor: Redactor::new(configured.chain([&secret])),
            secret,
            auth,
        };
        *cached = Some(passed.clone());
        Ok(passed)
    }

    /// Makes this thread's requests wait while the flows are behind: for the
    /// main script's thread, never for a flow thread.
    pub fn set_waits_for_flows(&self, waits: bool) {
        self.waits_for_flows.set(waits);
    }

    /// The worker and context ids `*_async` uses when the script passes none:
    /// the running flow's own, or (`None`) the configured defaults.
    pub fn set_ids(&self, ids: Option<(&str, &str)>) {
        *self.ids.borrow_mut() = ids.map(|(w, c)| (w.into(), c.into()));
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

    /// A script's error for people: Rhai's, except that a method a builder
    /// does not have is explained (the object's fields, the nearest name)
    /// with Rhai's position kept.
    pub fn describe(&self, error: &EvalAltResult) -> String {
        let missing = self.missing.borrow_mut().take();
        match (error.unwrap_inner(), missing) {
            (EvalAltResult::ErrorFunctionNotFound(_, pos), Some(why)) if !pos.is_none() => {
                format!("{why} ({pos})")
            }
            (EvalAltResult::ErrorFunctionNotFound(..), Some(why)) => why,
            _ => error.to_string(),
        }
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

    /// This thread's instance of provider `index`'s plugin (flow threads
    /// use it to classify outcomes).
    pub fn instance(&self, index: usize) -> std::cell::RefMut<'_, PluginInstance> {
        self.instances[index].borrow_mut()
    }

    pub fn providers(&self) -> &Providers {
        &self.providers
    }

    fn schema(&self, b: &RequestBuilder) -> &Schema {
        &self.providers.get(b.provider).schema
    }
}

/// What a script builds: one object and the parameters set so far.
///
/// Every setter returns the builder so calls chain (`new_x().a(1).b(2)`),
/// and Rhai keeps each link's value alive until the whole chain is done, so
/// every call hands on a copy. A builder holding its parameter maps would be
/// copied whole, and each copy dropped, at every link: quadratic in the
/// number of fields, and the largest cost of a script's request. So a
/// builder holds its setter calls as a shared list instead ([`Edits`],
/// newest first): a copy shares the list, a setter adds one node in front,
/// and the maps are made once, when the request is dispatched (or the
/// builder printed). `let a = x.amount(1)` still leaves `x` and `a`
/// independent from then on: a later setter on either adds its own node.
#[derive(Clone)]
pub struct RequestBuilder {
    /// Which provider's object (an index into [`Providers`]).
    provider: usize,
    object: ImmutableString,
    id: Option<String>,
    /// The parent object's id (`.parent(...)`), for `{parent}` paths.
    parent: Option<String>,
    idempotency_key: Option<String>,
    edits: Edits,
}

/// Setter calls, newest first; shared by every copy of a builder made
/// after them.
#[derive(Clone, Default)]
struct Edits(Option<Rc<Edit>>);

struct Edit {
    previous: Edits,
    /// Nodes from this one to the oldest, this one included.
    depth: usize,
    change: Change,
}

/// A list this long is folded into one node holding the maps it makes
/// ([`Change::Folded`]), so a script that sets a field in a loop keeps the
/// maps' size, not one node per call.
const FOLD_AT: usize = 256;

/// One setter call, already checked against the schema.
enum Change {
    /// `.field(value)`, applied as its kind says ([`set_field`]).
    Field {
        name: ImmutableString,
        kind: wit::FieldKind,
        value: Dynamic,
    },
    /// `.field(key, value)` on a map field.
    Entry {
        name: ImmutableString,
        key: ImmutableString,
        value: Dynamic,
    },
    /// `.set(path, value)`: sent as given, unchecked.
    Extra {
        path: ImmutableString,
        value: Dynamic,
    },
    /// Every earlier call, applied: the parameters and the extras.
    Folded { params: Map, extra: Map },
}

impl Edits {
    fn push(&mut self, change: Change) {
        if self.depth() >= FOLD_AT {
            let (params, extra) = self.apply();
            *self = Edits(Some(Rc::new(Edit {
                previous: Edits::default(),
                depth: 1,
                change: Change::Folded { params, extra },
            })));
        }
        let depth = self.depth() + 1;
        let previous = std::mem::take(self);
        *self = Edits(Some(Rc::new(Edit {
            previous,
            depth,
            change,
        })));
    }

    fn depth(&self) -> usize {
        self.0.as_ref().map_or(0, |edit| edit.depth)
    }

    /// The parameters and the `.set` extras these calls make, applied
    /// oldest first (so a later call overrides or extends an earlier one).
    fn apply(&self) -> (Map, Map) {
        let mut changes = Vec::with_capacity(self.depth());
        let mut at = self.0.as_deref();
        while let Some(edit) = at {
            changes.push(&edit.change);
            at = edit.previous.0.as_deref();
        }
        let (mut params, mut extra) = (Map::new(), Map::new());
        for change in changes.into_iter().rev() {
            match change {
                Change::Field { name, kind, value } => {
                    set_field(&mut params, name, *kind, value.clone())
                }
                Change::Entry { name, key, value } => {
                    map_entry(&mut params, name).insert(key.as_str().into(), value.clone());
                }
                Change::Extra { path, value } => {
                    extra.insert(path.as_str().into(), value.clone());
                }
                // Always the oldest node: it starts the maps.
                Change::Folded {
                    params: folded_params,
                    extra: folded_extra,
                } => {
                    params = folded_params.clone();
                    extra = folded_extra.clone();
                }
            }
        }
        (params, extra)
    }
}

impl Drop for Edit {
    /// Unlinks the list one node at a time: dropping a builder a loop set
    /// a million fields on must not recurse a million frames deep.
    fn drop(&mut self) {
        let mut next = self.previous.0.take();
        while let Some(edit) = next {
            match Rc::try_unwrap(edit) {
                Ok(mut edit) => next = edit.previous.0.take(),
                // Another builder still holds the rest.
                Err(_) => break,
            }
        }
    }
}

impl fmt::Display for RequestBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.object)?;
        if let Some(id) = &self.id {
            write!(f, " {id}")?;
        }
        if let Some(parent) = &self.parent {
            write!(f, " (of {parent})")?;
        }
        let (params, extra) = self.edits.apply();
        write!(f, " {params:?}")?;
        if !extra.is_empty() {
            write!(f, " + {extra:?}")?;
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
const HOST_METHODS: &[&str] = &["id", "parent", "set", "idempotency_key"];

/// Registers the whole API for `host`'s providers into `engine`: each
/// provider's constructors in a module of its name (`stripe::new_customer()`)
/// and, with one provider loaded, globally too (`new_customer()`); the
/// setters and `*_async` methods once, for every builder (they look up the
/// builder's own provider).
pub fn register(engine: &mut Engine, host: &Rc<ScriptHost>) {
    engine
        .register_type_with_name::<RequestBuilder>("RequestBuilder")
        .register_fn("to_string", |b: &mut RequestBuilder| b.to_string())
        .register_fn("to_debug", |b: &mut RequestBuilder| b.to_string());

    let single = host.providers.len() == 1;
    let mut setters: std::collections::BTreeMap<String, Vec<wit::FieldKind>> = Default::default();
    let mut operations: std::collections::BTreeSet<String> = Default::default();
    for (index, provider) in host.providers.iter().enumerate() {
        let schema = &provider.schema;
        let mut module = rhai::Module::new();
        for object in schema.objects() {
            let name: ImmutableString = (&*object.name).into();
            let constructor = move || RequestBuilder {
                provider: index,
                object: name.clone(),
                id: None,
                parent: None,
                idempotency_key: None,
                edits: Edits::default(),
            };
            let function = format!("new_{}", object.name);
            module.set_native_fn(function.as_str(), {
                let constructor = constructor.clone();
                move || Ok(constructor())
            });
            if single {
                engine.register_fn(function, constructor);
            }
        }
        engine.register_static_module(provider.plugin.name(), module.into());
        for (field, kinds) in schema.setter_names() {
            let known = setters.entry(field.to_string()).or_default();
            for kind in kinds {
                if !known.contains(&kind) {
                    known.push(kind);
                }
            }
        }
        operations.extend(schema.operation_names().into_iter().map(str::to_string));
    }

    engine.register_fn("id", |b: &mut RequestBuilder, id: ImmutableString| {
        b.id = Some(id.to_string());
        b.clone()
    });
    engine.register_fn("parent", |b: &mut RequestBuilder, id: ImmutableString| {
        b.parent = Some(id.to_string());
        b.clone()
    });
    // Rhai calls this after *any* failed native call, not only a missing
    // one: a call that does have a function (a setter refusing its value,
    // `*_async` refusing the request) keeps its own error. For one that
    // does not, the explanation is kept and Rhai's own "Function not found"
    // error (which carries the line) goes on; [`ScriptHost::describe`]
    // puts the two together when the script's error is reported.
    let missing_host = host.clone();
    #[allow(deprecated)] // "volatile", not deprecated: see its docs
    engine.on_missing_function(move |name, args, _is_method, _ctx| {
        if let Some(b) = args.first().and_then(|a| a.read_lock::<RequestBuilder>())
            && !has_method(missing_host.schema(&b), &b, name, args.len())
        {
            let why = missing_method(missing_host.schema(&b), &b, name, args.len());
            *missing_host.missing.borrow_mut() = Some(why);
        }
        Ok(None)
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
            b.edits.push(Change::Extra { path, value });
            Ok(b.clone())
        },
    );

    for (field, kinds) in setters {
        if HOST_METHODS.contains(&field.as_str()) {
            continue;
        }
        let field: ImmutableString = field.into();
        let host_one = host.clone();
        let name_one = field.clone();
        engine.register_fn(
            field.as_str(),
            move |b: &mut RequestBuilder, value: Dynamic| -> RhaiResult<RequestBuilder> {
                let field = field_schema(host_one.schema(b), b, &name_one)?;
                check_value(field, &value)
                    .map_err(|why| script_error(format!("{}.{name_one}: {why}", b.object)))?;
                b.edits.push(Change::Field {
                    name: name_one.clone(),
                    kind: field.kind,
                    value,
                });
                Ok(b.clone())
            },
        );
        if kinds.contains(&wit::FieldKind::StringMap) {
            let host_two = host.clone();
            let name_two = field.clone();
            engine.register_fn(
                field.as_str(),
                move |b: &mut RequestBuilder,
                      key: ImmutableString,
                      value: Dynamic|
                      -> RhaiResult<RequestBuilder> {
                    let kind = field_schema(host_two.schema(b), b, &name_two)?.kind;
                    if kind != wit::FieldKind::StringMap {
                        return Err(script_error(format!(
                            "{}.{name_two} takes one value, not a key and a value",
                            b.object
                        )));
                    }
                    b.edits.push(Change::Entry {
                        name: name_two.clone(),
                        key,
                        value,
                    });
                    Ok(b.clone())
                },
            );
        }
    }

    for op in operations {
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

fn field_schema<'s>(
    schema: &'s Schema,
    b: &RequestBuilder,
    field: &str,
) -> RhaiResult<&'s FieldSchema> {
    let object = object_schema(schema, b)?;
    object
        .fields
        .get(field)
        .ok_or_else(|| script_error(no_such_field(object, field)))
}

/// "x has no field `f`", with the nearest name and the whole list.
fn no_such_field(object: &ObjectSchema, field: &str) -> String {
    let nearest = match object.nearest_field(field) {
        Some(near) => format!("; did you mean `{near}`?"),
        None => String::new(),
    };
    format!(
        "{} has no field `{field}`{nearest} (its fields: {}); use .set(\"{field}\", value) to send \
         a parameter the plugin does not list, unchecked",
        object.name,
        object.field_list()
    )
}

/// Whether `name` with `args` arguments (the builder included) is a method
/// the host registered for this builder's object.
fn has_method(schema: &Schema, b: &RequestBuilder, name: &str, args: usize) -> bool {
    let Some(object) = schema.object(&b.object) else {
        return false;
    };
    if let Some(op) = name.strip_suffix("_async") {
        return object.operations.contains_key(op) && matches!(args, 1 | 3 | 4);
    }
    match object.fields.get(name) {
        Some(field) if field.kind == wit::FieldKind::StringMap => matches!(args, 2 | 3),
        Some(_) => args == 2,
        None => match name {
            "id" | "parent" | "idempotency_key" => args == 2,
            "set" => args == 3,
            _ => false,
        },
    }
}

/// Why a method call on a builder found no function: a field the object
/// lacks, an operation it lacks, or a known name with the wrong arguments.
fn missing_method(schema: &Schema, b: &RequestBuilder, name: &str, args: usize) -> String {
    let Some(object) = schema.object(&b.object) else {
        return format!("unknown object `{}`", b.object);
    };
    if let Some(op) = name.strip_suffix("_async") {
        return match object.operations.contains_key(op) {
            true => format!(
                "{}.{name} takes no arguments, (worker_id, context_id) or (worker_id, context_id, secret)",
                b.object
            ),
            false => format!(
                "{} has no operation `{op}` (it has: {})",
                b.object,
                object.operation_list()
            ),
        };
    }
    if object.fields.contains_key(name) || HOST_METHODS.contains(&name) {
        return format!(
            "{}.{name} takes one value ({} given, or a value of a type it cannot take)",
            b.object,
            args.saturating_sub(1)
        );
    }
    no_such_field(object, name)
}

/// Whether `value` fits the field's kind and allowed values; `()` always
/// does (it unsets the field).
fn check_value(field: &FieldSchema, value: &Dynamic) -> Result<(), String> {
    use wit::FieldKind as K;
    if value.is_unit() {
        return Ok(());
    }
    let is_text = value.is_string() || value.is_char();
    // Text (a string or a char) as one of the allowed values, if the field
    // has a list; most have none, and then the text is not even formatted.
    let allowed = |text: &Dynamic| -> Result<(), String> {
        if field.allowed.is_empty() {
            return Ok(());
        }
        // Compared where it lies: formatted only for the message.
        let listed = |s: &str| field.allowed.iter().any(|a| a == s);
        let found = match (text.as_immutable_string_ref(), text.as_char()) {
            (Ok(s), _) => listed(s.as_str()),
            (_, Ok(c)) => listed(c.encode_utf8(&mut [0; 4])),
            _ => false,
        };
        if found {
            Ok(())
        } else {
            Err(format!(
                "`{text}` is not one of the allowed values: {}",
                field.allowed.join(", ")
            ))
        }
    };
    let fits = match field.kind {
        K::Text if is_text => return allowed(value),
        K::Text => false,
        K::Integer => value.is_int(),
        K::Amount => match value.as_int() {
            Ok(n) if n < 0 => return Err(format!("expects an amount, not the negative {n}")),
            Ok(_) => true,
            Err(_) => false,
        },
        K::Decimal => value.is_int() || value.is_float() || is_text,
        K::Boolean => value.is_bool(),
        K::Timestamp => value.is_int() || is_text,
        K::StringMap | K::Object => value.is_map(),
        K::StringList => {
            if is_text {
                return allowed(value);
            }
            match value.read_lock::<rhai::Array>() {
                Some(items) => {
                    for item in items.iter() {
                        if !(item.is_string() || item.is_char()) {
                            return Err(format!(
                                "expects a list of text, but an item is {}",
                                item.type_name()
                            ));
                        }
                        allowed(item)?;
                    }
                    true
                }
                None => false,
            }
        }
        K::ObjectList => value.is_map() || value.is_array(),
    };
    match fits {
        true => Ok(()),
        false => Err(format!(
            "expects {}, not {} `{value}`",
            kind_phrase(field.kind),
            value.type_name()
        )),
    }
}

/// What a field of this kind takes, for messages.
fn kind_phrase(kind: wit::FieldKind) -> &'static str {
    use wit::FieldKind as K;
    match kind {
        K::Text => "text",
        K::Integer => "a whole number",
        K::Amount => "a non-negative whole number",
        K::Decimal => "a decimal (a number, or text like \"1.25\")",
        K::Boolean => "true or false",
        K::Timestamp => "a Unix timestamp in seconds (or text such as \"now\")",
        K::StringMap => "a map of text (or a key and a value)",
        K::StringList => "a list of text (or one text to append)",
        K::Object => "a map",
        K::ObjectList => "a list of maps (or one map to append)",
    }
}

/// Applies one setter call according to the field's kind: lists append a
/// single item or take a whole array, maps merge a map, the rest replace.
fn set_field(params: &mut Map, field: &str, kind: wit::FieldKind, value: Dynamic) {
    use wit::FieldKind as K;
    match kind {
        K::StringList | K::ObjectList if !value.is_array() && !value.is_unit() => {
            let entry = params
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
            map_entry(params, field).extend(incoming);
        }
        _ => {
            params.insert(field.into(), value);
        }
    }
}

/// The map stored under `field`, made a map if it was anything else.
fn map_entry<'p>(params: &'p mut Map, field: &str) -> impl std::ops::DerefMut<Target = Map> + 'p {
    let entry = params
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
    let d = host.providers.get(b.provider);
    let object = object_schema(&d.schema, b)?;
    let (operation_name, op) = object.operations.get_key_value(operation).ok_or_else(|| {
        script_error(format!(
            "{} has no operation `{operation}` (it has: {})",
            b.object,
            object.operation_list()
        ))
    })?;

    let (mut params, extra) = b.edits.apply();
    // An id goes into the path, or (for creates that take a custom id, like
    // coupons) into the parameters.
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
            params.insert("id".into(), id.as_str().into());
        }
        None
    };
    let parent = match (op.needs_parent, &b.parent) {
        (true, None) => {
            return Err(script_error(format!(
                "{}.{operation} needs the id of the object it belongs to: call .parent(\"...\") first",
                b.object
            )));
        }
        (true, Some(parent)) => Some(parent.clone()),
        (false, _) => None,
    };
    // Required fields, before any plugin call or I/O: set by the script, or
    // filled in by the plugin from a setting the operator gave.
    // A field given through `.set("field...", v)` counts: the plugin reads
    // the escape hatch too.
    let in_extra = |field: &str| {
        extra.keys().any(|k| {
            k.strip_prefix(field)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['[', '.']))
        })
    };
    if let Some(missing) = op.required.iter().find(|field| {
        params.get(field.as_str()).is_none_or(Dynamic::is_unit)
            && !in_extra(field)
            && !op
                .filled_by
                .iter()
                .any(|(f, setting)| f == *field && d.settings.public(setting).is_some())
    }) {
        return Err(script_error(format!(
            "{}.{operation}: the required field `{missing}` is missing: set it with .{missing}(...)",
            b.object
        )));
    }
    let input = wit::RequestInput {
        id,
        parent,
        params: plugin::rhai_map_to_tree(&params)
            .map_err(|e| script_error(format!("{}.{operation}: {e}", b.object)))?,
        extra: plugin::rhai_map_to_tree(&extra)
            .map_err(|e| script_error(format!("{}.{operation}: {e}", b.object)))?,
    };

    let built = host
        .instance(b.provider)
        .build_request(&b.object, operation, &input)
        .map_err(|e| script_error(e.to_string()))?;
    let request = built.map_err(|e| script_error(describe_plugin_error(&e, operation)))?;
    let checked = d
        .policy
        .destination
        .check(&request)
        .map_err(|e| script_error(e.to_string()))?;

    let credentials = &d.policy.credentials;
    let (auth, redactor) = match secret {
        Some(s) if !s.is_empty() && credentials.needed() => {
            let passed = host.passed_secret(b.provider, &s).map_err(|why| {
                script_error(format!("{}.{operation}: {why} (third argument)", b.object))
            })?;
            (passed.auth, passed.redactor)
        }
        _ => (
            credentials
                .configured()
                .map_err(|e| script_error(format!("{}.{operation}: {e}", b.object)))?,
            credentials.redactor().clone(),
        ),
    };
    let token = host.current.borrow().clone().ok_or_else(|| {
        script_error("requests can only be made while a script or flow is running")
    })?;
    let route = Route {
        provider: b.provider,
        object: object.name.clone(),
        operation: operation_name.clone(),
        worker_id: worker.map_or_else(
            || match &*host.ids.borrow() {
                Some((worker_id, _)) => worker_id.clone(),
                None => d.defaults.worker_id.clone(),
            },
            |w| w.as_str().into(),
        ),
        context_id: context.map_or_else(
            || match &*host.ids.borrow() {
                Some((_, context_id)) => context_id.clone(),
                None => d.defaults.context_id.clone(),
            },
            |c| c.as_str().into(),
        ),
    };
    let idempotency = d
        .executor
        .idempotency(
            &checked.method,
            b.idempotency_key
                .clone()
                .or_else(|| host.next_delivery_key()),
        )
        .map_err(|why| script_error(format!("{}.{operation}: {why}", b.object)))?;
    d.executor
        .submit(Outbound {
            request: checked,
            route,
            auth,
            redactor,
            idempotency,
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
