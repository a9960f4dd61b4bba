// One publish, three transports: a stock socket.io-client, an npm `ws` client and an npm
// `eventsource` client on the same topic receive every published event exactly once, in order,
// with one id (the Socket.IO meta's, the WebSocket envelope's, the SSE event's), and resume
// from it (resume-spec, issue #19).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { EventSource } from "eventsource";
import { io } from "socket.io-client";
import WebSocket from "ws";
import { socketioSubscriber, sseSubscriber, wsSubscriber } from "./support/resume.mjs";
import { next, start } from "./support/server.mjs";

const HUB_TOKEN = "test-hub-token";
const WS_TOKEN = "fixture-token";
const SSE_TOKEN = "test-subscribe-token";

let server;
before(async () => {
  server = await start();
});
after(async () => {
  await server.stop();
});

function publish(body, token = HUB_TOKEN, contentType = "application/json") {
  return fetch(`${server.url}/publish`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": contentType },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

/**
 * Subscribes one client of each transport to `topic`; each collects the `tick` payloads in
 * `received` and their ids in `ids`; `frames` holds the WebSocket envelopes, `metas` the
 * Socket.IO events' second arguments.
 */
async function subscribers(topic) {
  const received = { socketio: [], ws: [], sse: [] };
  const ids = { socketio: [], ws: [], sse: [] };
  const frames = [];
  const metas = [];

  const socket = io(`${server.url}/live`, { forceNew: true, reconnection: false, transports: ["websocket"] });
  socket.on("tick", (data, meta) => {
    received.socketio.push(data);
    metas.push(meta);
    ids.socketio.push(meta?.id);
  });
  await next(socket, "connect");
  assert.deepEqual(await socket.emitWithAck("subscribe", topic), { ok: [topic] });

  const ws = new WebSocket(`${server.url.replace("http", "ws")}/ws?token=${WS_TOKEN}`);
  const subscribed = new Promise((resolve) => {
    ws.on("message", (data, isBinary) => {
      if (isBinary) return;
      let frame;
      try {
        frame = JSON.parse(data.toString());
      } catch {
        return; // the fixture's greeting
      }
      if (frame.subscribed === topic) resolve();
      if (frame.topic === topic && frame.event === "tick") {
        received.ws.push(frame.data);
        frames.push(frame);
        ids.ws.push(frame.id);
      }
    });
  });
  await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
  ws.send(JSON.stringify({ subscribe: topic }));
  await subscribed;

  const sse = new EventSource(`${server.url}/events?topic=${topic}&token=${SSE_TOKEN}`);
  await new Promise((resolve, reject) => {
    sse.addEventListener("ready", resolve, { once: true });
    sse.onerror = reject;
  });
  sse.addEventListener("tick", (event) => {
    received.sse.push(JSON.parse(event.data));
    ids.sse.push(event.lastEventId);
  });

  return {
    received,
    ids,
    frames,
    metas,
    close() {
      socket.disconnect();
      ws.close();
      sse.close();
    },
  };
}

/** Resolves once every transport received `count` events (bounded by the test's timeout). */
async function until(received, count) {
  while (Object.values(received).some((list) => list.length < count)) {
    await new Promise((resolve) => setImmediate(resolve));
  }
}

test("every transport receives every event exactly once, in publish order", { timeout: 30_000 }, async () => {
  const topic = "hub-order";
  const clients = await subscribers(topic);
  // Sequential publishes: publish order is known.
  const published = [];
  for (let n = 0; n < 50; n++) {
    const response = await publish({ topic, event: "tick", data: { n } });
    assert.equal(response.status, 200);
    const delivery = await response.json();
    assert.deepEqual([delivery.socketio, delivery.ws, typeof delivery.sse], [1, 1, "string"]);
    assert.equal(delivery.id, delivery.sse, "one id: the SSE event's");
    published.push(delivery.id);
  }
  assert.match(published[0], /^[^;]+;hub-order:1$/, "<epoch>;<topic>:<seq>");
  // Concurrent publishes: whatever order the server took them in, every transport sees that one.
  const concurrent = await Promise.all(
    Array.from({ length: 50 }, (_, i) => publish({ topic, event: "tick", data: { n: 50 + i } })),
  );
  assert.ok(concurrent.every((r) => r.status === 200));
  const concurrentIds = await Promise.all(concurrent.map(async (r) => (await r.json()).id));
  await until(clients.received, 100);

  const { socketio, ws, sse } = clients.received;
  assert.deepEqual(socketio.slice(0, 50), Array.from({ length: 50 }, (_, n) => ({ n })));
  assert.equal(socketio.length, 100);
  assert.deepEqual(ws, socketio, "WebSocket saw the same events in the same order");
  assert.deepEqual(sse, socketio, "SSE saw the same events in the same order");
  assert.equal(new Set(socketio.map((e) => e.n)).size, 100, "each event exactly once");

  const { ids, frames, metas } = clients;
  assert.deepEqual(ids.socketio.slice(0, 50), published, "the ids /publish answered");
  assert.deepEqual(new Set(ids.socketio.slice(50)), new Set(concurrentIds));
  assert.equal(new Set(ids.socketio).size, 100, "one id per event");
  assert.deepEqual(ids.ws, ids.socketio, "the WebSocket envelope's id is the Socket.IO meta's");
  assert.deepEqual(ids.sse, ids.socketio, "the SSE event's lastEventId is the same string");
  assert.deepEqual(metas[0], { topic, id: published[0] }, "Socket.IO's second argument");
  assert.ok(metas.every((meta) => meta.topic === topic));
  assert.deepEqual(frames[0], { topic, event: "tick", data: { n: 0 }, id: published[0] }, "the envelope");
  clients.close();
});

test("the publish endpoint refuses bad requests with clear errors, sending nothing", async () => {
  const topic = "hub-errors";
  const clients = await subscribers(topic);
  const cases = [
    [publish({ topic, event: "tick", data: 1 }, "wrong"), 401, /bearer token/],
    [publish("{not json", HUB_TOKEN), 400, /malformed JSON/],
    [publish({ topic, event: "tick", data: 1 }, HUB_TOKEN, "text/plain"), 415, /application\/json/],
    [publish({ topic: "bad topic", event: "tick", data: 1 }), 422, /invalid topic/],
    [publish({ topic, event: "connect", data: 1 }), 422, /reserved/],
    [publish({ topic, data: 1 }), 422, /missing field `event`/],
    [publish({ topic, event: "tick", data: "x".repeat(300_000) }), 413, /"error":".*length limit/],
  ];
  for (const [pending, status, message] of cases) {
    const response = await pending;
    assert.equal(response.status, status);
    const text = await response.text();
    assert.match(text, message);
  }
  // A last valid event proves nothing before it was delivered anywhere.
  assert.equal((await publish({ topic, event: "tick", data: "last" })).status, 200);
  await until(clients.received, 1);
  assert.deepEqual(clients.received, { socketio: ["last"], ws: ["last"], sse: ["last"] });
  clients.close();
});

/** Publishes `{ n }` ticks `from..to` on `topic`; resolves with their ids, by `n`. */
async function publishTicks(topic, from, to, ids = []) {
  for (let n = from; n <= to; n++) {
    const response = await publish({ topic, event: "tick", data: { n } });
    assert.equal(response.status, 200);
    ids[n] = (await response.json()).id;
  }
  return ids;
}

test("a client back with its last id gets what it missed, then live, on every transport", async (t) => {
  const topic = "hub-resume";
  const ids = await publishTicks(topic, 1, 3);
  const wsUrl = `${server.url.replace("http", "ws")}/ws`;
  // Each comes back with the id of tick 1.
  const since = ids[1];
  const clients = [
    socketioSubscriber(server.url, topic, "with auth since", { since }),
    socketioSubscriber(server.url, topic, "with subscribe since", { subscribeWith: { topics: [topic], since } }),
    wsSubscriber(wsUrl, topic, "with since", { since }),
    sseSubscriber(server.url, topic, "with lastEventId", { since }),
  ];
  t.after(() => clients.forEach((client) => client.close()));
  await Promise.all(clients.map(({ received }) => received.until((r) => r.has(3), "ticks 2 and 3")));
  // Subscribing again to a topic the socket has is a no-op.
  assert.deepEqual(await clients[0].socket.emitWithAck("subscribe", topic), { ok: [topic] });
  assert.deepEqual(await clients[1].socket.emitWithAck("subscribe", { topics: [topic], since }), { ok: [topic] });
  await publishTicks(topic, 4, 4, ids);
  for (const { received } of clients) {
    await received.until((r) => r.has(4), "tick 4");
    assert.deepEqual(received.log, [2, 3, 4], received.name);
    assert.deepEqual([...received.ids.values()], ids.slice(2), received.name);
    assert.deepEqual(received.problems, [], received.name);
  }
});

test("an id of another epoch is answered with resync unknown_id on every transport, then live", async (t) => {
  const topic = "hub-unknown";
  const ids = await publishTicks(topic, 1, 2);
  const since = ids[1].replace(/^[^;]+/, "otherepoch");
  const wsUrl = `${server.url.replace("http", "ws")}/ws`;
  const clients = [
    socketioSubscriber(server.url, topic, "stale", { since }),
    wsSubscriber(wsUrl, topic, "stale", { since }),
    sseSubscriber(server.url, topic, "stale", { since }),
  ];
  t.after(() => clients.forEach((client) => client.close()));
  await Promise.all(clients.map(({ received }) => received.until((r) => r.resyncs.length === 1, "the resync")));
  await publishTicks(topic, 3, 3, ids);
  for (const { received } of clients) {
    await received.until((r) => r.has(3), "tick 3");
    assert.deepEqual(received.resyncs, [{ topics: [topic], reason: "unknown_id" }], received.name);
    assert.deepEqual(received.log, ["resync", 3], received.name);
    assert.deepEqual(received.problems, [], received.name);
  }
});

test("a Socket.IO client can never subscribe to a room of a socket id's shape, connected or not", async () => {
  const socket = io(`${server.url}/live`, { forceNew: true, reconnection: false });
  await next(socket, "connect");
  const other = io(`${server.url}/live`, { forceNew: true, reconnection: false });
  await next(other, "connect");
  assert.match((await socket.emitWithAck("subscribe", socket.id)).error, /socket id/);
  assert.match((await socket.emitWithAck("subscribe", ["ok", other.id])).error, /socket id/);
  // A socket that is not connected yet, here or on another node, keeps its room too.
  assert.equal("temperature_room".length, 16);
  assert.match((await socket.emitWithAck("subscribe", "temperature_room")).error, /socket id/);
  assert.deepEqual(await socket.emitWithAck("subscribe", "temperature:room"), { ok: ["temperature:room"] });
  assert.deepEqual(await socket.emitWithAck("subscribe", ["a", "b"]), { ok: ["a", "b"] });
  assert.deepEqual(await socket.emitWithAck("unsubscribe", "a"), { ok: ["a"] });
  socket.disconnect();
  other.disconnect();
});
