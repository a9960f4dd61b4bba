// One publish, three transports: a stock socket.io-client, an npm `ws` client and an npm
// `eventsource` client on the same topic receive every published event exactly once, in order.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { EventSource } from "eventsource";
import { io } from "socket.io-client";
import WebSocket from "ws";
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

/** Subscribes one client of each transport to `topic`; each collects the `tick` payloads. */
async function subscribers(topic) {
  const received = { socketio: [], ws: [], sse: [] };

  const socket = io(`${server.url}/live`, { forceNew: true, reconnection: false, transports: ["websocket"] });
  socket.on("tick", (data) => received.socketio.push(data));
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
      if (frame.topic === topic && frame.event === "tick") received.ws.push(frame.data);
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
  sse.addEventListener("tick", (event) => received.sse.push(JSON.parse(event.data)));

  return {
    received,
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
  for (let n = 0; n < 50; n++) {
    const response = await publish({ topic, event: "tick", data: { n } });
    assert.equal(response.status, 200);
    const delivery = await response.json();
    assert.deepEqual([delivery.socketio, delivery.ws, typeof delivery.sse], [1, 1, "string"]);
  }
  // Concurrent publishes: whatever order the server took them in, every transport sees that one.
  const concurrent = await Promise.all(
    Array.from({ length: 50 }, (_, i) => publish({ topic, event: "tick", data: { n: 50 + i } })),
  );
  assert.ok(concurrent.every((r) => r.status === 200));
  await until(clients.received, 100);

  const { socketio, ws, sse } = clients.received;
  assert.deepEqual(socketio.slice(0, 50), Array.from({ length: 50 }, (_, n) => ({ n })));
  assert.equal(socketio.length, 100);
  assert.deepEqual(ws, socketio, "WebSocket saw the same events in the same order");
  assert.deepEqual(sse, socketio, "SSE saw the same events in the same order");
  assert.equal(new Set(socketio.map((e) => e.n)).size, 100, "each event exactly once");
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
