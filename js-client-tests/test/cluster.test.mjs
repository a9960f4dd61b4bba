// Three nodes sharing rooms through a real redis-server: stock socket.io-client instances on
// different nodes see broadcasts, private messages, aggregated acks and fetch_sockets exactly as
// on one node; a node dying or Redis restarting does not stop the others.
import assert from "node:assert/strict";
import { once } from "node:events";
import { after, before, describe, test } from "node:test";
import { io } from "socket.io-client";
import { startRedis } from "./support/redis.mjs";
import { next, start, startExample } from "./support/server.mjs";

let redis;
let nodes = [];
const clients = [];
// Two clients per node: c0 c1 on node 0, c2 c3 on node 1, c4 c5 on node 2.
const NODE_OF = [0, 0, 1, 1, 2, 2];
const LAYOUT = [["a"], ["b"], ["a"], ["b"], ["a"], []];
const members = (room, alive = clients.map((_, i) => i)) =>
  LAYOUT.flatMap((rooms, i) => (rooms.includes(room) && alive.includes(i) ? [i] : []));

async function connect(node) {
  const socket = io(`${nodes[node].url}/rooms`, { forceNew: true, reconnection: false, transports: ["websocket"] });
  await next(socket, "connect");
  socket.hits = [];
  socket.on("hit", (mode, from) => socket.hits.push(`${mode}:${from}`));
  socket.on("vote?", (callback) => callback(`yes from ${socket.id}`));
  return socket;
}

/**
 * Client `from` performs a broadcast, then a `marker` broadcast to everyone. Redis keeps one
 * node's messages in order, so once every client in `alive` has the marker, each has received
 * whatever the first broadcast sent it. Returns who received the first one, once per receipt.
 */
async function cast(from, request, alive = clients.map((_, i) => i)) {
  for (const c of clients) c.hits = [];
  const sender = clients[from].id;
  assert.equal(await clients[from].emitWithAck("cast", request), "done");
  const marked = alive.map((i) =>
    clients[i].hits.includes(`marker:${sender}`) ? null : waitFor(clients[i], `marker:${sender}`),
  );
  assert.equal(await clients[from].emitWithAck("cast", { mode: "marker" }), "done");
  await Promise.all(marked);
  const received = [];
  alive.forEach((i) => clients[i].hits.forEach((hit) => hit === `${request.mode}:${sender}` && received.push(i)));
  return received;
}

function waitFor(socket, hit, signal) {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (socket.hits.includes(hit)) {
        socket.off("hit", check);
        resolve();
      }
    };
    socket.on("hit", check);
    signal?.addEventListener("abort", () => {
      socket.off("hit", check);
      reject(signal.reason);
    });
    check();
  });
}

before(async () => {
  redis = await startRedis();
  nodes = await Promise.all([0, 1, 2].map(() => start(undefined, [], { TONGXUN_REDIS_URL: redis.url })));
  for (const node of NODE_OF) clients.push(await connect(node));
  await Promise.all(clients.map((c, i) => c.emitWithAck("join", LAYOUT[i])));
});
after(async () => {
  for (const c of clients) c.disconnect();
  await Promise.all(nodes.map((n) => n.stop()));
  await redis?.stop();
});

describe("across three nodes", { timeout: 60_000 }, () => {
  test("a broadcast to the namespace reaches every client of every node, once", async () => {
    assert.deepEqual(await cast(0, { mode: "all" }), [0, 1, 2, 3, 4, 5]);
  });

  test("to everyone but the sender", async () => {
    assert.deepEqual(await cast(2, { mode: "broadcast" }), [0, 1, 3, 4, 5]);
  });

  test("to a room whose members are on several nodes", async () => {
    assert.deepEqual(await cast(1, { mode: "to", rooms: ["a"] }), members("a"));
    assert.deepEqual(await cast(5, { mode: "except", except: ["a"] }), [1, 3]);
  });

  test("a private message reaches exactly one socket on another node", async () => {
    assert.deepEqual(await cast(0, { mode: "to", rooms: [clients[5].id] }), [5]);
  });

  test("aggregated acks gather every node's answers", async () => {
    const votes = await clients[1].timeout(10_000).emitWithAck("votes", "a");
    const byId = Object.fromEntries(votes.map((v) => [v.id, v.vote]));
    assert.deepEqual(
      Object.keys(byId).sort(),
      members("a").map((i) => clients[i].id).sort(),
    );
    for (const i of members("a")) assert.equal(byId[clients[i].id], `yes from ${clients[i].id}`);
  });

  test("fetch_sockets lists a room's sockets on every node", async () => {
    const ids = await clients[3].emitWithAck("fetch", "a");
    assert.deepEqual(ids, members("a").map((i) => clients[i].id).sort());
  });

  test("Redis restarting: nodes keep serving their own clients, then cross-node delivery resumes", async () => {
    const port = redis.port;
    await redis.stop();
    // During the outage each node serves its own clients (the cross-node gap is documented).
    const local = [0, 1];
    const sender = clients[0].id;
    const heard = local.map((i) => waitFor(clients[i], `all:${sender}`));
    for (const c of clients) c.hits = [];
    // The ack says that the other nodes were not told.
    assert.equal(await clients[0].emitWithAck("cast", { mode: "all" }), "this node only");
    await Promise.all(heard);

    redis = await startRedis(port);
    // Nodes reconnect by themselves (a heartbeat every second, then backoff): retry a marker
    // until a client of another node hears one, for at most 30 attempts.
    let resumed = false;
    for (let attempt = 0; attempt < 30 && !resumed; attempt++) {
      for (const c of clients) c.hits = [];
      await clients[0].emitWithAck("cast", { mode: "marker" });
      try {
        await waitFor(clients[2], `marker:${sender}`, AbortSignal.timeout(500));
        await waitFor(clients[4], `marker:${sender}`, AbortSignal.timeout(500));
        resumed = true;
      } catch {
        // not yet
      }
    }
    assert.ok(resumed, "cross-node delivery resumed after Redis came back");
    assert.deepEqual(await cast(3, { mode: "all" }), [0, 1, 2, 3, 4, 5]);
  });

  test("a node dying leaves the others working", async () => {
    const gone = [4, 5].map((i) => next(clients[i], "disconnect"));
    nodes[2].child.kill("SIGKILL");
    await Promise.all(gone);
    const alive = [0, 1, 2, 3];
    assert.deepEqual(await cast(0, { mode: "all" }, alive), alive);
    assert.deepEqual(await cast(3, { mode: "to", rooms: ["a"] }, alive), members("a", alive));
    const ids = await clients[1].timeout(10_000).emitWithAck("fetch", "a");
    assert.deepEqual(ids, members("a", alive).map((i) => clients[i].id).sort());
  });
});

test("the chat example runs on two nodes with --redis-url: a room spans both", { timeout: 30_000 }, async () => {
  const chats = await Promise.all([0, 1].map(() => startExample("chat", ["--redis-url", redis.url])));
  const [ada, grace] = await Promise.all(
    chats.map(async (chat) => {
      const socket = io(`${chat.url}/chat`, { forceNew: true, reconnection: false, transports: ["websocket"] });
      await next(socket, "connect");
      return socket;
    }),
  );
  try {
    assert.deepEqual(await ada.emitWithAck("nick", "ada"), { ok: "ada" });
    assert.deepEqual(await grace.emitWithAck("nick", "grace"), { ok: "grace" });
    assert.equal((await ada.emitWithAck("join", "general")).ok, true);
    assert.equal((await grace.emitWithAck("join", "general")).ok, true);
    const heard = once(grace, "message");
    const ack = await ada.emitWithAck("message", { room: "general", text: "hello from node A" });
    assert.equal(ack.ok, true);
    const [message] = await heard;
    assert.deepEqual([message.from, message.text], ["ada", "hello from node A"]);
  } finally {
    ada.disconnect();
    grace.disconnect();
    await Promise.all(chats.map((chat) => chat.stop()));
  }
});
