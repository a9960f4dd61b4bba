// Stock clients of the three transports that follow one hub topic and resume it after a drop
// (resume-spec: "resume everywhere"), and a paced publisher for `POST /publish`.
//
// Each client records, in arrival order, the `n` of every `tick` ({ n } payloads) and a
// "resync" marker for every resync signal; `until(check, what, ms)` waits for a state of it.
import { isDeepStrictEqual } from "node:util";
import { setInterval } from "node:timers/promises";
import { EventSource } from "eventsource";
import { io } from "socket.io-client";
import WebSocket from "ws";
import { SUBSCRIBE_TOKEN, streamUrl } from "./sse-server.mjs";
import { TOKEN } from "./ws-server.mjs";

/** The bearer token of the fixture's `POST /publish`. */
export const HUB_TOKEN = "test-hub-token";

/** What one client received, and waiting for it. */
export class Received {
  constructor(kind, name) {
    this.kind = kind;
    this.name = `${kind} ${name}`;
    /** Tick `n`s and "resync" markers, in arrival order. */
    this.log = [];
    /** The id each tick came with, by `n` (the last one if it came twice). */
    this.ids = new Map();
    /** The data of each resync signal. */
    this.resyncs = [];
    /** Connections made (Socket.IO `connect`, WebSocket open, SSE `ready`). */
    this.connects = 0;
    /** Connections lost (or attempts failed). */
    this.disconnects = 0;
    /** Subscriptions confirmed (first subscribes, and Socket.IO's and SSE's resumed ones). */
    this.subscribed = 0;
    /** Anything a well-behaved server never sends (the first 10, and how many in all). */
    this.problems = [];
    this.problemCount = 0;
    this.lastId = undefined;
    this.waiters = [];
  }

  tick(n, id) {
    this.log.push(n);
    this.ids.set(n, id);
    if (typeof id === "string") this.lastId = id;
    else this.problem(`tick ${n} came without an id: ${JSON.stringify(id)}`);
    this.changed();
  }

  resync(data) {
    this.log.push("resync");
    this.resyncs.push(data);
    this.changed();
  }

  problem(text) {
    this.problemCount++;
    if (this.problems.length < 10) this.problems.push(text);
    else this.problems[10] = `... ${this.problemCount} in all`;
    this.changed();
  }

  count(field) {
    this[field]++;
    this.changed();
  }

  /** The tick `n`s, without the resync markers. */
  get ticks() {
    return this.log.filter((entry) => entry !== "resync");
  }

  has(n) {
    return this.ids.has(n);
  }

  changed() {
    this.waiters = this.waiters.filter((waiter) => !waiter());
  }

  /** A short account for failure messages. */
  summary() {
    const ticks = this.ticks;
    return JSON.stringify({
      client: this.name,
      ticks: ticks.length,
      first: ticks[0],
      last: ticks.at(-1),
      resyncs: this.resyncs,
      connects: this.connects,
      disconnects: this.disconnects,
      problems: this.problems.slice(0, 5),
      tail: this.log.slice(-8),
    });
  }

  /** Resolves once `check(this)` holds; rejects after `ms` with a summary. */
  until(check, what, ms = 30_000) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`timed out waiting for ${what}: ${this.summary()}`));
      }, ms);
      const waiter = () => {
        if (!check(this)) return false;
        clearTimeout(timer);
        resolve();
        return true;
      };
      if (!waiter()) this.waiters.push(waiter);
    });
  }
}

/**
 * How `log` differs from `expected` (a list of numbers and "resync" markers), briefly: `{}`
 * when it does not.
 */
export function difference(log, expected) {
  if (isDeepStrictEqual(log, expected)) return {};
  const counts = new Map();
  for (const entry of log) counts.set(entry, (counts.get(entry) ?? 0) + 1);
  const firstDiff = log.findIndex((entry, i) => entry !== expected[i]);
  return {
    length: log.length,
    expectedLength: expected.length,
    missing: expected.filter((entry) => !counts.has(entry)).slice(0, 10),
    twice: [...counts].filter(([entry, c]) => c > 1 && entry !== "resync").map(([entry]) => entry).slice(0, 10),
    firstDifference: firstDiff === -1 ? log.length : firstDiff,
    around: log.slice(Math.max(0, firstDiff - 3), firstDiff + 4),
  };
}

/**
 * A socket.io-client on namespace `/live` at `url` following `topic`: its `auth` sends the last
 * id it received (`{ since }`, starting with `since`) at every (re)connection; with no id yet it
 * sends `subscribe` with `subscribeWith` (by default `topic`). Further `options` go to `io()`.
 * Returns `{ received, socket, close() }`.
 */
export function socketioSubscriber(url, topic, name, { since, subscribeWith = topic, ...options } = {}) {
  const received = new Received("socketio", name);
  received.lastId = since;
  const socket = io(`${url}/live`, {
    forceNew: true,
    transports: ["websocket"],
    reconnectionDelay: 100,
    reconnectionDelayMax: 1000,
    auth: (cb) => cb({ since: received.lastId }),
    ...options,
  });
  socket.on("tick", (data, meta) => {
    if (meta?.topic !== topic) received.problem(`tick meta ${JSON.stringify(meta)}`);
    received.tick(data?.n, meta?.id);
  });
  socket.on("resync", (data) => received.resync(data));
  socket.on("disconnect", () => received.count("disconnects"));
  socket.on("connect_error", () => received.count("disconnects"));
  socket.on("connect", async () => {
    received.count("connects");
    if (received.lastId !== undefined) return received.count("subscribed");
    const ack = await socket.emitWithAck("subscribe", subscribeWith);
    if (isDeepStrictEqual(ack, { ok: [topic] })) received.count("subscribed");
    else received.problem(`subscribe answered ${JSON.stringify(ack)}`);
  });
  return { received, socket, close: () => socket.disconnect() };
}

/**
 * An npm `ws` client of the WebSocket hub at `wsUrl` following `topic`, reconnecting by itself
 * as an app would (100 ms after a close) and subscribing with the last id it received
 * (`{"subscribe": topic, "since": id}`, starting with `since`). Returns `{ received, close() }`.
 */
export function wsSubscriber(wsUrl, topic, name, { since } = {}) {
  const received = new Received("ws", name);
  received.lastId = since;
  let ws;
  let closed = false;
  let retry;
  const connect = () => {
    ws = new WebSocket(`${wsUrl}?token=${TOKEN}`);
    ws.on("open", () => {
      received.count("connects");
      ws.send(JSON.stringify({ subscribe: topic, since: received.lastId }));
    });
    ws.on("message", (data, isBinary) => {
      if (isBinary) return received.problem("a binary frame");
      const text = data.toString();
      if (/^welcome \d+$/.test(text)) return;
      let frame;
      try {
        frame = JSON.parse(text);
      } catch {
        return received.problem(`not JSON: ${text}`);
      }
      if (frame.subscribed === topic) received.count("subscribed");
      else if (frame.topic === topic && frame.event === "tick") received.tick(frame.data?.n, frame.id);
      else if (frame.event === "resync") received.resync(frame.data);
      else received.problem(`unexpected frame: ${text}`);
    });
    ws.on("error", () => {}); // a close follows
    ws.on("close", () => {
      received.count("disconnects");
      if (!closed) retry = setTimeout(connect, 100);
    });
  };
  connect();
  return {
    received,
    close() {
      closed = true;
      clearTimeout(retry);
      ws.terminate();
    },
  };
}

/**
 * An npm `eventsource` client of `/events?topic=<topic>` at `url` (from `since` on, with the
 * `lastEventId` parameter); it resumes by itself (`Last-Event-ID`).
 * Returns `{ received, source, close() }`.
 */
export function sseSubscriber(url, topic, name, { since } = {}) {
  const received = new Received("sse", name);
  const source = new EventSource(streamUrl(url, [topic], { token: SUBSCRIBE_TOKEN, lastEventId: since }));
  source.addEventListener("ready", () => {
    received.count("connects");
    received.count("subscribed");
  });
  source.addEventListener("tick", (event) => received.tick(JSON.parse(event.data)?.n, event.lastEventId));
  source.addEventListener("resync", (event) => received.resync(JSON.parse(event.data)));
  source.addEventListener("error", () => received.count("disconnects"));
  return { received, source, close: () => source.close() };
}

/**
 * The three kinds of subscriber, by name, for loops over them: each takes a server or proxy
 * (its `url` and `wsUrl`), the topic, a name and options (`since`).
 */
export const SUBSCRIBERS = {
  socketio: (server, topic, name, options) => socketioSubscriber(server.url, topic, name, options),
  ws: (server, topic, name, options) => wsSubscriber(server.wsUrl, topic, name, options),
  sse: (server, topic, name, options) => sseSubscriber(server.url, topic, name, options),
};

/**
 * Publishes `{ n }` ticks on `topic` through `POST /publish` of `node`, one at a time (each
 * awaits the previous answer, so publish order is `n` order), `rate` a second on a fixed timer
 * schedule. `published` is the last `n`; `ids[n]` the id `/publish` answered for it.
 */
export function publisher(node, topic, rate = 200) {
  const ids = [undefined];
  let published = 0;
  const one = async (n) => {
    const response = await fetch(`${node.url}/publish`, {
      method: "POST",
      headers: { authorization: `Bearer ${HUB_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ topic, event: "tick", data: { n } }),
    });
    const text = await response.text();
    if (response.status !== 200) throw new Error(`publish ${n} failed: ${response.status} ${text}`);
    const delivery = JSON.parse(text);
    if (typeof delivery.id !== "string") throw new Error(`publish ${n} answered no id: ${text}`);
    return delivery.id;
  };
  return {
    ids,
    get published() {
      return published;
    },
    /**
     * Publishes `count` more ticks, or until `until` (a promise) settles; `at[n]`, when given,
     * runs (and is awaited) once tick `n` was accepted.
     */
    async run({ count = Infinity, until, at = {} }) {
      let stop = false;
      until?.then(
        () => (stop = true),
        () => (stop = true),
      );
      const last = published + count;
      for await (const _ of setInterval(1000 / rate)) {
        if (stop || published >= last) break;
        const n = published + 1;
        ids[n] = await one(n);
        published = n;
        await at[n]?.();
      }
    },
  };
}
