// Prometheus metrics: the stock clients do known things, and a scrape of /metrics, parsed by the
// Prometheus project's own OpenMetrics parser (Debian's python3-prometheus-client), moved by
// exactly that.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { after, before, test } from "node:test";
import { setTimeout as pause } from "node:timers/promises";
import { EventSource } from "eventsource";
import { io } from "socket.io-client";
import { next, outcome, start } from "./support/server.mjs";
import { PUBLISH_TOKEN, streamUrl } from "./support/sse-server.mjs";
import { Client } from "./support/ws-server.mjs";

// Debian's interpreter, where apt installs the parser (scripts/install-deps.sh).
const PYTHON = "/usr/bin/python3";
const PARSE = `
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
        out[f"{s.name}{{{labels}}}"] = s.value
print(json.dumps(out))
`;

let server;
before(async () => {
  server = await start(undefined, [], { RUST_LOG: process.env.RUST_LOG ?? "tongxun=error" });
});
after(async () => {
  await server.stop();
});

/** `GET /metrics`, parsed: `{ "name{label=value,...}": number }`. */
async function scrape() {
  const response = await fetch(`${server.url}/metrics`);
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), "application/openmetrics-text; version=1.0.0; charset=utf-8");
  const text = await response.text();
  const parsed = spawnSync(PYTHON, ["-c", PARSE], { input: text, encoding: "utf8" });
  assert.equal(parsed.status, 0, `the parser refused the scrape: ${parsed.stderr}\n${text}`);
  const samples = JSON.parse(parsed.stdout);
  return {
    samples,
    /** A sample that must be there. */
    get(key) {
      assert.ok(key in samples, `no sample ${key} in:\n${Object.keys(samples).join("\n")}`);
      return samples[key];
    },
  };
}

/** Scrapes until `done(scrape)` holds: the server finishes a disconnect after the client. */
async function scrapeUntil(done) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const now = await scrape();
    if (done(now)) return now;
    if (Date.now() > deadline) throw new Error("the scrape never reached the expected state");
    await pause(20);
  }
}

function connect(path, options = {}) {
  return io(server.url + path, { forceNew: true, reconnection: false, ...options });
}

test("a scrape of /metrics moves by exactly what stock clients did, per transport and namespace", async () => {
  const before = await scrape();
  const zero = (key) => before.samples[key] ?? 0;

  // Socket.IO: one client over long-polling, one over WebSocket.
  const polling = connect("/", { transports: ["polling"] });
  await next(polling, "connect");
  const websocket = connect("/", { transports: ["websocket"] });
  await next(websocket, "connect");
  assert.equal(polling.io.engine.transport.name, "polling");
  assert.equal(websocket.io.engine.transport.name, "websocket");

  assert.equal(await polling.emitWithAck("echo", "a"), "a");
  assert.equal(await websocket.emitWithAck("echo", "b"), "b");
  // A handler that fails: its ack is answered with an error.
  assert.deepEqual(await websocket.emitWithAck("fail", "nope"), { error: "nope" });
  // A server-to-client ack answered, then one left to time out (the server waits 500 ms).
  websocket.on("question", (question, answer) => answer(question.toUpperCase(), 7));
  assert.deepEqual(await websocket.emitWithAck("ask-me", "hi"), { answer: "HI", number: 7 });
  websocket.off("question");
  const unanswered = await websocket.emitWithAck("ask-me", "hi");
  assert.match(unanswered.error, /timed out/);

  // Two refused handshakes: by a namespace's auth, and by allow_request.
  const wrong = connect("/auth", { auth: { token: "wrong" } });
  assert.ok((await outcome(wrong)) instanceof Error);
  wrong.close();
  const gated = connect("/", { query: { refuse: "no" } });
  assert.ok((await outcome(gated)) instanceof Error);
  gated.close();

  // The WebSocket hub: a client that is welcomed, sends one message, gets its echo, closes 1000.
  const wsUrl = `${server.url.replace(/^http/, "ws")}/ws`;
  const hubClient = await Client.join({ wsUrl });
  await hubClient.send("hello");
  assert.equal(await hubClient.nextText(), "hello");

  // SSE: a subscriber, open while an event is published to its topic.
  const topic = "metrics-test";
  const source = new EventSource(streamUrl(server.url, [topic]));
  await new Promise((resolve, reject) => {
    source.onopen = resolve;
    source.onerror = reject;
  });
  const during = await scrape();
  assert.equal(during.get("tongxun_socketio_connections_open{namespace=/}") - zero("tongxun_socketio_connections_open{namespace=/}"), 2);
  assert.equal(during.get("tongxun_ws_clients{}"), 1);
  assert.equal(during.get("tongxun_sse_subscribers{}") - zero("tongxun_sse_subscribers{}"), 1);
  const received = new Promise((resolve) => source.addEventListener("tick", resolve, { once: true }));
  const published = await fetch(`${server.url}/events`, {
    method: "POST",
    headers: { authorization: `Bearer ${PUBLISH_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ topic, event: "tick", data: "1" }),
  });
  assert.equal(published.status, 200);
  await received;

  source.close();
  assert.equal((await hubClient.close()).code, 1000);
  polling.disconnect();
  websocket.disconnect();
  const openBefore = zero("tongxun_socketio_connections_open{namespace=/}");
  const subscribersBefore = zero("tongxun_sse_subscribers{}");
  const after = await scrapeUntil(
    (s) =>
      s.samples["tongxun_socketio_connections_open{namespace=/}"] === openBefore &&
      s.samples["tongxun_ws_clients{}"] === 0 &&
      s.samples["tongxun_sse_subscribers{}"] === subscribersBefore &&
      s.samples["tongxun_ws_closes_total{code=1000}"] === zero("tongxun_ws_closes_total{code=1000}") + 1,
  );
  const delta = (key) => after.get(key) - zero(key);

  assert.equal(delta("tongxun_socketio_connections_opened_total{namespace=/,transport=polling}"), 1);
  assert.equal(delta("tongxun_socketio_connections_opened_total{namespace=/,transport=websocket}"), 1);
  // Whatever the reason (the client's DISCONNECT or its transport closing first).
  const closed = (transport) =>
    Object.entries(after.samples)
      .filter(([key]) => key.startsWith("tongxun_socketio_connections_closed_total{namespace=/,") && key.endsWith(`transport=${transport}}`))
      .reduce((total, [key, value]) => total + value - zero(key), 0);
  assert.equal(closed("polling"), 1);
  assert.equal(closed("websocket"), 1);
  assert.equal(delta("tongxun_socketio_handshakes_refused_total{namespace=/auth,reason=auth}"), 1);
  assert.equal(delta("tongxun_socketio_handshakes_refused_total{namespace=,reason=allow_request}"), 1);
  // echo, echo, fail, ask-me, ask-me.
  assert.equal(delta("tongxun_socketio_events_received_total{namespace=/}"), 5);
  assert.equal(delta("tongxun_socketio_handler_duration_seconds_count{namespace=/}"), 5);
  // The two questions.
  assert.equal(delta("tongxun_socketio_events_emitted_total{namespace=/,target=socket}"), 2);
  assert.equal(delta("tongxun_socketio_acks_total{namespace=/,outcome=answered}"), 1);
  assert.equal(delta("tongxun_socketio_acks_total{namespace=/,outcome=timed_out}"), 1);
  assert.equal(delta("tongxun_socketio_acks_total{namespace=/,outcome=failed}"), 0);
  assert.equal(after.get("tongxun_socketio_acks_pending{namespace=/}"), 0);
  // echo, echo, and both ask-me answered with a value; fail answered with {"error": ...}.
  assert.equal(delta("tongxun_socketio_acks_answered_total{namespace=/,result=ok}"), 4);
  assert.equal(delta("tongxun_socketio_acks_answered_total{namespace=/,result=error}"), 1);
  assert.equal(after.get("tongxun_socketio_dispatch_queue_depth{namespace=/}"), 0);
  assert.equal(delta("tongxun_socketio_deliveries_dropped_total{}"), 0);

  assert.equal(delta("tongxun_ws_connections_total{}"), 1);
  assert.equal(delta("tongxun_ws_messages_received_total{}"), 1);
  // The welcome and the echo.
  assert.equal(delta("tongxun_ws_messages_sent_total{}"), 2);
  assert.equal(delta("tongxun_ws_closes_total{code=1000}"), 1);

  assert.equal(delta("tongxun_sse_events_published_total{}"), 1);
  assert.equal(delta("tongxun_sse_events_delivered_total{}"), 1);
  assert.equal(delta("tongxun_sse_resyncs_total{}"), 0);
  assert.ok(after.get("tongxun_sse_history_bytes{}") > 0);
  // No Redis configured: no bus series.
  assert.ok(!("tongxun_redis_up{}" in after.samples));
});
