// Run stripe-stateful-mock on 127.0.0.1 only.
//
// The package's own CLI (`stripe-stateful-mock`, dist/autostart.js) reads the
// port from $PORT and calls `app.listen(port)` with no host, i.e. on every
// interface. Tests must listen on loopback only, so this wrapper builds the
// same Express app through the package's exported `createExpressApp()` and
// binds it to 127.0.0.1 itself.
//
//     node stateful_mock_server.js --port 8000
//
// Prints one line `stripe-stateful-mock listening on http://127.0.0.1:PORT`
// on stdout once the socket accepts connections, then serves until killed.
// `--port 0` picks a free port; the readiness line names it. With
// `--exit-on-stdin-eof` it also exits when its stdin closes, so a parent that
// holds the other end of a pipe cannot leave it behind, even when the parent
// is killed outright. The mock's own
// logging (loglevel) is set to "warn" unless LOG_LEVEL says otherwise.
//
// One fix is applied (see `allowPriceOnlySubscriptionItems` below): 0.0.16
// rejects a subscription item that names only a `price`, the normal way to
// create a subscription today.
"use strict";

const path = require("path");

function parseArgs(argv) {
    const args = { port: null, host: "127.0.0.1", exitOnStdinEof: false };
    for (let i = 0; i < argv.length; i++) {
        const flag = argv[i];
        const value = argv[i + 1];
        if (flag === "--port" && value !== undefined) {
            args.port = Number(value);
            i++;
        } else if (flag === "--exit-on-stdin-eof") {
            args.exitOnStdinEof = true;
        } else if (flag === "--host" && value !== undefined) {
            args.host = value;
            i++;
        } else {
            fail(`unknown argument: ${flag}`);
        }
    }
    if (!Number.isInteger(args.port) || args.port < 0 || args.port > 65535) {
        fail("--port PORT is required (0 picks a free port)");
    }
    if (!args.host.startsWith("127.") && args.host !== "::1" && args.host !== "localhost") {
        fail(`refusing to bind a non-loopback address: ${args.host}`);
    }
    return args;
}

function fail(message) {
    process.stderr.write(`stateful_mock_server.js: ${message}\n`);
    process.exit(2);
}

const args = parseArgs(process.argv.slice(2));

// Resolve the package from node_modules beside this file, wherever the
// current directory is, and loglevel as the package itself resolves it (the
// same instance, so setting its level here reaches the mock's loggers).
const mockPath = require.resolve("stripe-stateful-mock", { paths: [__dirname] });
const log = require(require.resolve("loglevel", { paths: [path.dirname(mockPath)] }));
log.setLevel(process.env.LOG_LEVEL || "warn");
const mock = require(mockPath);

allowPriceOnlySubscriptionItems();

const server = mock.createExpressApp().listen(args.port, args.host, () => {
    const { port } = server.address();
    process.stdout.write(`stripe-stateful-mock listening on http://${args.host}:${port}\n`);
});
server.on("error", (err) => fail(`cannot listen on ${args.host}:${args.port}: ${err.message}`));

// Keep-alive connections would hold `server.close()` open: just exit.
for (const signal of ["SIGTERM", "SIGINT"]) {
    process.on(signal, () => process.exit(0));
}
if (args.exitOnStdinEof) {
    process.stdin.on("end", () => process.exit(0));
    process.stdin.on("error", () => process.exit(0));
    process.stdin.resume();
}

// stripe-stateful-mock 0.0.16 builds every subscription item with
// `plan: getOrCreatePlan(item.plan)`, even when the item names a `price`; with
// no `plan` it tries to create a plan without a product and answers 400
// "Missing required param: product." Real Stripe gives a price-based item a
// legacy `plan` whose id is the price id. This wrapper does the same before
// the mock sees the request: for an item with `price` and no `plan`, it makes
// (once) a plan mirroring that price, with the price's id, and passes the item
// on with `plan` set. An unknown price still fails with the mock's own 404, a
// one-time price with Stripe's 400. The request body itself is not modified
// (the idempotency layer compares later bodies against it).
function allowPriceOnlySubscriptionItems() {
    const api = (name) => require(require.resolve(`stripe-stateful-mock/dist/api/${name}`, { paths: [__dirname] }));
    const { subscriptions } = api("subscriptions");
    const { prices } = api("prices");
    const { plans } = api("plans");
    const { RestError } = api("RestError");

    const createSubscription = subscriptions.create;
    subscriptions.create = (accountId, params) => {
        if (!params || !Array.isArray(params.items)) {
            return createSubscription(accountId, params);
        }
        const items = params.items.map((item, index) => {
            if (!item || typeof item.price !== "string" || item.plan) {
                return item;
            }
            const price = prices.retrieve(accountId, item.price, `items[${index}][price]`);
            if (!price.recurring) {
                throw new RestError(400, {
                    message: `The price specified is set to \`type=one_time\` but this field only accepts prices with \`type=recurring\`.`,
                    param: `items[${index}][price]`,
                    type: "invalid_request_error",
                });
            }
            ensurePlanForPrice(accountId, price);
            return { ...item, plan: price.id };
        });
        return createSubscription(accountId, { ...params, items });
    };

    function ensurePlanForPrice(accountId, price) {
        try {
            plans.retrieve(accountId, price.id, "plan");
        } catch (err) {
            plans.create(accountId, {
                id: price.id,
                currency: price.currency,
                amount: price.unit_amount,
                interval: price.recurring.interval,
                interval_count: price.recurring.interval_count,
                usage_type: price.recurring.usage_type,
                product: price.product,
                nickname: price.nickname,
            });
        }
    }
}
