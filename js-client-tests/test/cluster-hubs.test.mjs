// The WebSocket and SSE hubs across three nodes sharing a real redis-server: npm `ws` and
// `eventsource` clients on different nodes receive every published event, with the id its
// publisher was told whichever node and transport delivers it, an SSE subscriber that drops and
// reconnects to another node resumes with no loss, and a Redis restart costs nothing that was
// accepted.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { EventSource } from "eventsource";
import { balancer } from "./support/proxy.mjs";
import { startRedis } from "./support/redis.mjs";
import { SUBSCRIBERS } from "./support/resume.mjs";
import { start } from "./support/server.mjs";
import { PUBLISH_TOKEN, SUBSCRIBE_TOKEN, next, record, streamUrl } from "./support/sse-server.mjs";
import { Client, TOKEN } from "./support/ws-server.mjs";

const HUB_TOKEN = "test-hub-token";

let redis;
let nodes = [];
const closers = [];

before(async () => {
  redis = await startRedis();
  const env = { TONGXUN_REDIS_URL: redis.url, RUST_LOG: process.env.RUST_LOG ?? "tongxun=error" };
  nodes = await Promise.all([0, 1, 2].map(() => start(undefined, [], env)));
  for (const node of nodes) node.wsUrl = `${node.url.replace(/^http/, "ws")}/ws`;
});
after(async () => {
  for (const close of closers) close();
  await Promise.all(nodes.map((n) => n.stop()));
  await redis?.stop();
});

/** `POST /events` on `node`; resolves to `{ status, body }`. */
async function ssePublish(node, topic, data) {
  const response = await fetch(`${node.url}/events`, {
    method: "POST",
    headers: { authorization: `Bearer ${PUBLISH_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ topic, event: "tick", data }),
  });
  return { status: response.status, body: await response.json() };
}

/**
 * `POST /publish` (the cross-transport hub) on `node`; resolves to the delivery report (or, for
 * another `status`, the error body).
 */
async function hubPublish(node, topic, data, status = 200) {
  const response = await fetch(`${node.url}/publish`, {
    method: "POST",
    headers: { authorization: `Bearer ${HUB_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ topic, event: "tick", data }),
  });
  assert.equal(response.status, status, await response.clone().text());
  return response.json();
}

/**
 * A `ws` client on `node`, subscribed to `topic`, collecting the hub's `tick` payloads (`ticks`),
 * their envelopes' ids (`ids`) and every text it receives (`texts`). `until(check, ms)` resolves once `check(client)` holds
 * and rejects after `ms`.
 */
async function wsSubscriber(node, topic) {
  const client = await Client.join(node);
  closers.push(() => client.ws.terminate());
  await client.send(JSON.stringify({ subscribe: topic }));
  assert.deepEqual(JSON.parse(await client.nextText()), { subscribed: topic });
  client.ticks = [];
  client.ids = [];
  client.texts = [];
  let waiters = [];
  client.ws.on("message", (data, isBinary) => {
    if (isBinary) return;
    const text = data.toString();
    client.texts.push(text);
    try {
      const frame = JSON.parse(text);
      if (frame.topic === topic && frame.event === "tick") {
        client.ticks.push(frame.data);
        client.ids.push(frame.id);
      }
    } catch {
      // not a hub envelope
    }
    waiters = waiters.filter((waiter) => !waiter());
  });
  client.until = (check, ms = 10_000) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters = waiters.filter((w) => w !== waiter);
        reject(new Error(`timed out; got ${JSON.stringify(client.texts.slice(-5))}`));
      }, ms);
      const waiter = () => {
        if (!check(client)) return false;
        clearTimeout(timer);
        resolve();
        return true;
      };
      if (!waiter()) waiters.push(waiter);
    });
  return client;
}

/** An EventSource on `topic` at `url`, recording `tick`, `ready` and `resync` events. */
async function sseSubscriber(url) {
  const source = new EventSource(url);
  closers.push(() => source.close());
  const events = record(source, ["tick", "ready", "resync"]);
  await events.until((all) => all.some((e) => e.type === "ready"), "ready");
  return { source, events, ticks: () => events.of("tick").map((e) => e.data) };
}

describe("the hubs across three nodes", { timeout: 60_000 }, () => {
  test("ws clients on every node receive every published event, each node's in order", async () => {
    const subscribers = await Promise.all(nodes.map((node) => wsSubscriber(node, "ws-ticker")));
    const sent = [];
    const ids = new Map();
    for (let i = 0; i < 30; i++) {
      const from = i % 3;
      sent.push({ from, i });
      const delivery = await hubPublish(nodes[from], "ws-ticker", { from, i });
      assert.equal(delivery.ws, 1, "the publishing node's own subscriber took it at once");
      assert.equal(typeof delivery.id, "string");
      ids.set(i, delivery.id);
    }
    for (const client of subscribers) {
      await client.until((c) => c.ticks.length >= sent.length);
      assert.equal(client.ticks.length, sent.length, "nothing twice");
      for (const from of [0, 1, 2]) {
        assert.deepEqual(
          client.ticks.filter((t) => t.from === from).map((t) => t.i),
          sent.filter((s) => s.from === from).map((s) => s.i),
          `node ${from}'s events in the order it published them`,
        );
      }
      assert.deepEqual(
        client.ids,
        client.ticks.map((t) => ids.get(t.i)),
        "every envelope has the id /publish answered, whichever node relayed it",
      );
    }
  });

  test("one publish has one id on every node and transport", async () => {
    const topic = "one-id";
    const subscribers = nodes.flatMap((node, k) =>
      Object.values(SUBSCRIBERS).map((make) => make(node, topic, `on node ${k}`)),
    );
    for (const subscriber of subscribers) closers.push(() => subscriber.close());
    await Promise.all(subscribers.map(({ received }) => received.until((r) => r.subscribed >= 1, "subscribed")));
    const ids = [undefined];
    for (let n = 1; n <= 9; n++) ids.push((await hubPublish(nodes[n % 3], topic, { n })).id);
    assert.equal(new Set(ids).size, 10, "one id per publish");
    // Publishes from different nodes may interleave differently on each node and transport
    // (the ws test above); what they carry may not.
    for (const { received } of subscribers) {
      await received.until((r) => [1, 2, 3, 4, 5, 6, 7, 8, 9].every((n) => r.has(n)), "ticks 1 to 9");
      assert.deepEqual(received.log.toSorted((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 8, 9], received.name);
      for (let n = 1; n <= 9; n++) assert.equal(received.ids.get(n), ids[n], `${received.name}: tick ${n}'s id`);
      assert.deepEqual(received.problems, [], received.name);
    }
  });

  test("a ws client's broadcast reaches ws clients of the other nodes", async () => {
    const clients = await Promise.all(nodes.map((node) => wsSubscriber(node, "unused")));
    await clients[1].send("all:hello from node 1");
    await Promise.all(clients.map((client) => client.until((c) => c.texts.includes("all:hello from node 1"))));
  });

  test("eventsource clients on every node receive every event, in one order, with the same ids", async () => {
    const topic = "sse-ticker";
    const subscribers = await Promise.all(
      nodes.map((node) => sseSubscriber(streamUrl(node.url, [topic], { token: SUBSCRIBE_TOKEN }))),
    );
    const ids = [];
    for (let i = 0; i < 30; i++) {
      const { status, body } = await ssePublish(nodes[i % 3], topic, `e${i}`);
      assert.equal(status, 200, JSON.stringify(body));
      assert.equal(body.seq, i + 1, "one sequence for the topic, whichever node publishes");
      ids.push(body.id);
    }
    const expected = ids.map((_, i) => `e${i}`);
    for (const { events, ticks } of subscribers) {
      await events.until(() => ticks().length >= 30, "30 ticks");
      assert.deepEqual(ticks(), expected);
      assert.deepEqual(
        events.of("tick").map((e) => e.lastEventId),
        ids,
        "every node gives an event the id its publisher was told",
      );
    }
  });

  test("an SSE subscriber that drops and reconnects to another node resumes with no loss", async () => {
    const topic = "sse-failover";
    const lb = await balancer(nodes[0]);
    closers.push(() => lb.close());
    const { source, events, ticks } = await sseSubscriber(streamUrl(lb.url, [topic]));
    for (let i = 0; i < 10; i++) assert.equal((await ssePublish(nodes[i % 3], topic, `e${i}`)).status, 200);
    await events.until(() => ticks().length === 10, "the first 10 ticks");

    // Node 0 "goes away": its connections are cut and the balancer sends newcomers to node 1.
    // Events published meanwhile are in Redis only.
    lb.pointTo(nodes[1]);
    const reopened = next(source, "open");
    lb.cut();
    for (let i = 10; i < 20; i++) assert.equal((await ssePublish(nodes[2], topic, `e${i}`)).status, 200);
    await reopened;
    for (let i = 20; i < 25; i++) assert.equal((await ssePublish(nodes[i % 3], topic, `e${i}`)).status, 200);

    await events.until(() => ticks().length >= 25, "25 ticks");
    assert.deepEqual(ticks(), Array.from({ length: 25 }, (_, i) => `e${i}`), "each event once, in order");
    assert.equal(events.of("resync").length, 0, "resumed from history, not resynchronised");
    assert.equal(events.of("ready").length, 2, "the stream was opened twice");
  });

  test("Redis restarting: SSE and the hub refuse what they cannot record, then all resumes", async () => {
    const topic = "sse-outage";
    const sse = await Promise.all(nodes.map((node) => sseSubscriber(streamUrl(node.url, [topic]))));
    const ws = await Promise.all(nodes.map((node) => wsSubscriber(node, topic)));
    assert.equal((await ssePublish(nodes[0], topic, "before")).status, 200);

    const port = redis.port;
    await redis.stop();
    const refused = await ssePublish(nodes[1], topic, "during");
    assert.equal(refused.status, 503, "an event that cannot be recorded is refused, not lost");
    assert.match(refused.body.error, /Redis/);
    // The hub's log is the SSE history: what it cannot record goes to no transport.
    const hubRefused = await hubPublish(nodes[1], topic, "during", 503);
    assert.match(hubRefused.error, /history is unreachable: nothing was published/);

    redis = await startRedis(port);
    // Nodes reconnect by themselves (a heartbeat every second, then backoff). Once a node is
    // back it ends its SSE streams so that they resume; until then a reconnecting stream is
    // told to retry later. So a second `ready` on every node's stream means every node is back.
    // This Redis kept nothing, so the streams resynchronise: what was published between the
    // restart and their return is the documented gap.
    for (const { events } of sse) {
      await events.until((all) => all.filter((e) => e.type === "ready").length >= 2, "the stream reopened", 30_000);
    }
    assert.equal((await ssePublish(nodes[0], topic, "after")).status, 200);
    for (const { events, ticks } of sse) {
      await events.until(() => ticks().includes("after"), "the event published after the restart");
      assert.ok(!ticks().includes("during"), "nothing refused is delivered");
      assert.equal(ticks().filter((t) => t === "after").length, 1);
    }
    // WebSocket subscribers are fed from the same log, on every node.
    await hubPublish(nodes[0], topic, "ws-after");
    await Promise.all(ws.map((client) => client.until((c) => c.ticks.includes("ws-after"))));
    // This Redis kept nothing: its ids start again, in a new epoch, and a WebSocket subscriber is
    // told to resync as an SSE stream is, then gets what was published after the restart.
    for (const client of ws) {
      assert.deepEqual(client.ticks, ["before", "after", "ws-after"], `nothing refused, nothing lost: ${client.texts}`);
      const frames = client.texts.map((text) => JSON.parse(text));
      const resync = frames.findIndex((frame) => frame.event === "resync");
      assert.ok(resync > 0 && resync < frames.findIndex((frame) => frame.data === "after"), "resync first");
      const [before, last] = [frames[0].id, frames.at(-1).id];
      assert.notEqual(last.split(";")[0], before.split(";")[0], `a new epoch, so ids never repeat: ${client.texts}`);
    }
    // So a client that saw "before" and comes back with its id now is told to resync, on every
    // transport, rather than taken to have seen "after".
    const since = JSON.parse(ws[0].texts[0]).id;
    const back = Object.values(SUBSCRIBERS).map((make) => make(nodes[2], topic, "back from before", { since }));
    back.forEach((client) => closers.push(() => client.close()));
    await Promise.all(back.map(({ received }) => received.until((r) => r.subscribed >= 1, "subscribed")));
    await hubPublish(nodes[0], topic, { n: 99 });
    await Promise.all(back.map(({ received }) => received.until((r) => r.has(99), "the event after the return")));
    assert.deepEqual(
      back.map(({ received }) => [received.name, received.log]),
      back.map(({ received }) => [received.name, ["resync", 99]]),
      `back with ${since}, the id of "before"`,
    );
  });
});
