// A cleartext HTTP/2 (h2c, "prior knowledge") server on 127.0.0.1, built on
// Node's own HTTP/2 implementation (the `http2` module, nghttp2 inside), for
// testing that `payhost --http-version 2` speaks HTTP/2 a real server
// accepts, and carries many requests in flight on one connection.
//
//     node h2c_server.js --port 0 [--hold N] [--refuse N] [--go-away N]
//                        [--exit-on-stdin-eof]
//
// Prints `h2c-server listening on http://127.0.0.1:PORT` once it accepts
// connections. Every request is answered 200 with a Stripe-shaped payment
// intent (`id` pi_h2c_<n>, the form body's `amount` and `currency` echoed)
// and logged on stdout as one line:
//
//     request n=3 session=1 version=2.0 method=POST path=/v1/payment_intents open=3
//
// `session` numbers the HTTP/2 connections in the order they were opened,
// `open` is how many requests were being held at that moment. With
// `--hold N` the first N requests are all held until the N-th has arrived,
// so an answer proves that N requests were in flight at once. An HTTP/1.x
// client gets no answer: the server speaks HTTP/2 only, as h2c does.
//
// Two ways a server may turn a request away unprocessed, which HTTP/2 lets a
// client retry safely: with `--refuse N` the first N requests are reset with
// REFUSED_STREAM; with `--go-away N` each of the first N connections, when
// its second request arrives, shuts down gracefully (GOAWAY with NO_ERROR)
// naming only its first request as processed, and the second is never
// answered. Each request turned away is logged instead of answered:
//
//     refused n=1 session=1
//     go-away n=1 session=1
"use strict";

const http2 = require("http2");

function parseArgs(argv) {
    const args = { port: null, host: "127.0.0.1", hold: 0, refuse: 0, goAway: 0, exitOnStdinEof: false };
    for (let i = 0; i < argv.length; i++) {
        const flag = argv[i];
        const value = argv[i + 1];
        if (flag === "--port" && value !== undefined) {
            args.port = Number(value);
            i++;
        } else if (flag === "--hold" && value !== undefined) {
            args.hold = Number(value);
            i++;
        } else if (flag === "--refuse" && value !== undefined) {
            args.refuse = Number(value);
            i++;
        } else if (flag === "--go-away" && value !== undefined) {
            args.goAway = Number(value);
            i++;
        } else if (flag === "--exit-on-stdin-eof") {
            args.exitOnStdinEof = true;
        } else {
            fail(`unknown argument: ${flag}`);
        }
    }
    if (!Number.isInteger(args.port) || args.port < 0 || args.port > 65535) {
        fail("--port PORT is required (0 picks a free port)");
    }
    for (const [flag, count] of [["--hold", args.hold], ["--refuse", args.refuse], ["--go-away", args.goAway]]) {
        if (!Number.isInteger(count) || count < 0) {
            fail(`${flag} takes a number of requests`);
        }
    }
    return args;
}

function fail(message) {
    process.stderr.write(`h2c_server.js: ${message}\n`);
    process.exit(2);
}

const args = parseArgs(process.argv.slice(2));

let sessions = 0;
let requests = 0;
let open = 0;
let refused = 0;
let goneAway = 0;
// Answers waiting for the hold to fill.
let held = [];

const server = http2.createServer({
    // Unlimited, so the client's own limit is the only one.
    settings: { maxConcurrentStreams: 2 ** 32 - 1 },
});

server.on("session", (session) => {
    sessions += 1;
    session.payhostId = sessions;
});

server.on("stream", (stream, headers) => {
    const session = stream.session.payhostId;
    if (refused < args.refuse) {
        refused += 1;
        process.stdout.write(`refused n=${refused} session=${session}\n`);
        // Node reports the reset it sends as an error on the stream.
        stream.on("error", () => {});
        stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
        return;
    }
    const streams = (stream.session.payhostStreams ||= []);
    streams.push(stream.id);
    if (session <= args.goAway && streams.length === 2) {
        goneAway += 1;
        process.stdout.write(`go-away n=${goneAway} session=${session}\n`);
        stream.on("error", () => {});
        stream.session.on("error", () => {});
        stream.session.goaway(http2.constants.NGHTTP2_NO_ERROR, streams[0]);
        return;
    }
    requests += 1;
    open += 1;
    const n = requests;
    const chunks = [];
    stream.on("data", (chunk) => chunks.push(chunk));
    stream.on("end", () => {
        const form = new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
        process.stdout.write(
            `request n=${n} session=${session} version=2.0 method=${headers[":method"]} ` +
                `path=${headers[":path"]} open=${open}\n`,
        );
        const answer = () => {
            open -= 1;
            if (stream.destroyed) {
                return;
            }
            stream.respond({ ":status": 200, "content-type": "application/json", "request-id": `req_h2c_${n}` });
            stream.end(
                JSON.stringify({
                    id: `pi_h2c_${n}`,
                    object: "payment_intent",
                    amount: Number(form.get("amount") || 0),
                    currency: form.get("currency") || "usd",
                    status: "requires_payment_method",
                }),
            );
        };
        if (n <= args.hold) {
            held.push(answer);
            if (held.length === args.hold) {
                const waiting = held;
                held = [];
                waiting.forEach((a) => a());
            }
        } else {
            answer();
        }
    });
});

server.listen(args.port, args.host, () => {
    const { port } = server.address();
    process.stdout.write(`h2c-server listening on http://${args.host}:${port}\n`);
});
server.on("error", (err) => fail(`cannot listen on ${args.host}:${args.port}: ${err.message}`));

for (const signal of ["SIGTERM", "SIGINT"]) {
    process.on(signal, () => process.exit(0));
}
if (args.exitOnStdinEof) {
    process.stdin.on("end", () => process.exit(0));
    process.stdin.on("error", () => process.exit(0));
    process.stdin.resume();
}
