// The chat's Admin UI server side (namespace /admin, the protocol of @socket.io/admin-ui's
// instrument()) across two chat nodes on one throwaway redis-server, driven by stock
// socket.io-client instances: an admin connected to node A sees and acts on node B's sockets as
// on its own. Plus the refusals: a wrong password, and a read-only node's ignored commands.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { io } from "socket.io-client";
import { startRedis } from "./support/redis.mjs";
import { next, outcome, startExample } from "./support/server.mjs";

const PASSWORD = "tongxun-dev";
// bcrypt (cost 10) of "s3cret-ops", for the read-only node's own credentials.
const OPS_HASH = "$2a$10$zlXFJRs12EBX/6223e/JZ.BDBnsY6/S3ds7YCQ4BhxFO3XInmtl72";
// What instrument() offers unless read-only; a read-only one offers none of these.
const MUTATING = ["EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT"];
const WAIT = 15_000; // the most any condition below may take (server_stats come every 2 s)

let redis;
let a; // node "node-a"
let b; // node "node-b"
let ro; // a read-only node of its own, without Redis
const sockets = [];

before(async () => {
  redis = await startRedis();
  [a, b, ro] = await Promise.all([
    startExample("chat", ["--redis-url", redis.url, "--server-id", "node-a"]),
    startExample("chat", ["--redis-url", redis.url, "--server-id", "node-b"]),
    startExample("chat", ["--server-id", "node-ro", "--admin-readonly", "--admin-user", "ops", "--admin-password-hash", OPS_HASH]),
  ]);
});
after(async () => {
  for (const s of sockets) s.disconnect();
  await Promise.all([a, b, ro].map((n) => n?.stop()));
  await redis?.stop();
});

/** A stock client of the chat on `node` with nickname `nick`, in chat rooms `rooms`. */
async function user(node, nick, rooms = []) {
  const socket = io(node.url + "/chat", { forceNew: true, reconnection: false, transports: ["websocket"] });
  sockets.push(socket);
  socket.messages = [];
  socket.checks = new Set(); // for when()
  socket.summary = () => JSON.stringify(socket.messages);
  socket.on("message", (m) => {
    socket.messages.push(m);
    for (const check of [...socket.checks]) check();
  });
  await next(socket, "connect");
  assert.deepEqual(await socket.emitWithAck("nick", nick), { ok: nick });
  for (const room of rooms) assert.equal((await socket.emitWithAck("join", room)).ok, true, `${nick} joins ${room}`);
  socket.nick = nick;
  return socket;
}

/** Waits until each client has received what the server sent it so far (see chat.test.mjs). */
async function barrier(...users) {
  for (const u of users) assert.deepEqual(await u.emitWithAck("nick", u.nick), { ok: u.nick });
}

/** Resolves with the first value of `predicate()` that is truthy, checked on every `subject` event. */
function when(subject, predicate, what, ms = WAIT) {
  const found = predicate();
  if (found) return Promise.resolve(found);
  return new Promise((resolve, reject) => {
    const check = () => {
      const found = predicate();
      if (!found) return;
      done();
      resolve(found);
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`timed out after ${ms} ms waiting for ${what}; the admin got: ${subject.summary()}`));
    }, ms);
    const done = () => {
      clearTimeout(timer);
      subject.checks.delete(check);
    };
    subject.checks.add(check);
  });
}

/**
 * A stock client on `node`'s admin namespace, as the Admin UI connects (`auth: {username,
 * password}`). It records every event (`got`), and keeps the sockets it was told of (`known`,
 * by id: `all_sockets`, then `socket_connected`, `room_joined`, `room_left`,
 * `socket_disconnected`) and the last `server_stats` of each server id (`stats`).
 */
function admin(node, auth = { username: "admin", password: PASSWORD }) {
  const socket = io(node.url + "/admin", { forceNew: true, reconnection: false, transports: ["websocket"], auth });
  sockets.push(socket);
  socket.got = [];
  socket.known = new Map();
  socket.stats = new Map();
  socket.checks = new Set();
  socket.summary = () => JSON.stringify(socket.got.map(([event, ...args]) => (event === "server_stats" ? [event, args[0]?.serverId, args[0]?.namespaces] : [event, ...args])).slice(-30));
  socket.onAny((event, ...args) => {
    socket.got.push([event, ...args]);
    const [first, second, third] = args;
    if (event === "all_sockets") {
      socket.known.clear();
      for (const s of first) socket.known.set(s.id, s);
    } else if (event === "socket_connected") {
      socket.known.set(first.id, first);
    } else if (event === "socket_disconnected") {
      socket.known.delete(second);
    } else if (event === "room_joined") {
      const s = socket.known.get(third);
      if (s && !s.rooms.includes(second)) s.rooms.push(second);
    } else if (event === "room_left") {
      const s = socket.known.get(third);
      if (s) s.rooms = s.rooms.filter((r) => r !== second);
    } else if (event === "server_stats") {
      socket.stats.set(first.serverId, first);
    }
    for (const check of [...socket.checks]) check();
  });
  return socket;
}

/** The events called `name` the admin got, as argument lists. */
const events = (admin, name) => admin.got.filter(([event]) => event === name).map(([, ...args]) => args);

/** The `/chat` socket count `stats` report. */
const chatCount = (stats) => stats?.namespaces?.find((n) => n.name === "/chat")?.socketsCount;

/** Waits for the next `server_stats` of `serverId`, and returns it. */
function nextStats(subject, serverId) {
  const seen = events(subject, "server_stats").length;
  return when(subject, () => events(subject, "server_stats").slice(seen).map(([s]) => s).find((s) => s.serverId === serverId), `the next server_stats of ${serverId}`);
}

describe("an admin on node A of two nodes on Redis", { timeout: 90_000 }, () => {
  let ada; // on A, in #general
  let grace; // on B, in #general and #random
  let alan; // on B, in #random
  let bob; // on B, in no room
  let ops; // the admin, on A

  before(async () => {
    ada = await user(a, "ada", ["general"]);
    grace = await user(b, "grace", ["general", "random"]);
    alan = await user(b, "alan", ["random"]);
    bob = await user(b, "bob");
    ops = admin(a);
    assert.equal(await outcome(ops), "connect");
  });

  test("gets a session, the full feature set, then every node's sockets with their rooms", async () => {
    await when(ops, () => events(ops, "all_sockets").length > 0, "all_sockets");
    const order = ops.got.map(([event]) => event);
    assert.ok(order.indexOf("config") < order.indexOf("all_sockets"), `config before all_sockets: ${order}`);
    const [[session]] = events(ops, "session");
    assert.equal(typeof session, "string");
    assert.ok(session.length > 0);
    const [[config]] = events(ops, "config");
    for (const feature of ["EMIT", "JOIN", "LEAVE", "DISCONNECT", "AGGREGATED_EVENTS", "ALL_EVENTS"]) {
      assert.ok(config.supportedFeatures.includes(feature), `${feature} in ${config.supportedFeatures}`);
    }

    // Node B's sockets may come as socket_connected right after all_sockets.
    const users = [ada, grace, alan, bob];
    await when(ops, () => users.every((u) => ops.known.has(u.id)), "the four users' sockets");
    const rooms = (u) => [...ops.known.get(u.id).rooms].sort();
    assert.deepEqual(rooms(ada), ["#general", ada.id].sort());
    assert.deepEqual(rooms(grace), ["#general", "#random", grace.id].sort());
    assert.deepEqual(rooms(alan), ["#random", alan.id].sort());
    assert.deepEqual(rooms(bob), [bob.id]);

    // As instrument() serializes a socket, the local one and the remote ones alike.
    for (const u of users) {
      const s = ops.known.get(u.id);
      assert.equal(s.nsp, "/chat");
      assert.equal(s.transport, "websocket");
      assert.equal(typeof s.clientId, "string");
      assert.equal(typeof s.data, "object");
      const h = s.handshake;
      assert.equal(typeof h.address, "string");
      assert.match(h.address, /127\.0\.0\.1/);
      assert.equal(typeof h.headers, "object");
      assert.equal(typeof h.query, "object");
      assert.equal(h.query.transport, "websocket");
      assert.equal(typeof h.issued, "number");
      assert.ok(Math.abs(Date.now() - h.issued) < 60_000, `issued ${h.issued} is a time in ms`);
      assert.equal(typeof h.time, "string");
      assert.equal(typeof h.secure, "boolean");
      assert.equal(typeof h.xdomain, "boolean");
      assert.match(h.url, /^\/socket\.io\/\?/);
    }
  });

  test("server_stats come from both server ids with each node's own counts", async () => {
    const [sa, sb] = await when(
      ops,
      () => {
        const [sa, sb] = [ops.stats.get("node-a"), ops.stats.get("node-b")];
        return chatCount(sa) === 1 && chatCount(sb) === 3 && [sa, sb];
      },
      "server_stats of node-a with 1 /chat socket and of node-b with 3",
    );
    for (const s of [sa, sb]) {
      assert.equal(typeof s.hostname, "string");
      assert.equal(typeof s.pid, "number");
      assert.equal(typeof s.uptime, "number");
      assert.equal(typeof s.clientsCount, "number");
      assert.equal(typeof s.pollingClientsCount, "number");
      assert.ok(Array.isArray(s.aggregatedEvents));
      assert.ok(Array.isArray(s.namespaces));
    }
    assert.ok(sa.clientsCount >= 2, `node-a has ada and the admin: ${sa.clientsCount}`);
    assert.equal(sb.clientsCount, 3);
    assert.equal(sb.pollingClientsCount, 0);
    assert.notEqual(sa.pid, sb.pid);
  });

  test("the events a socket receives are reported, from either node, without the ack", async () => {
    assert.deepEqual(await ada.emitWithAck("nick", "ada"), { ok: "ada" });
    const local = await when(ops, () => events(ops, "event_received").find(([nsp, id]) => nsp === "/chat" && id === ada.id), "event_received for ada");
    assert.deepEqual(local[2], ["nick", "ada"]);
    assert.ok(!Number.isNaN(Date.parse(local[3])), `a date: ${local[3]}`);
    assert.equal((await grace.emitWithAck("message", { room: "general", text: "hello from B" })).ok, true);
    const remote = await when(ops, () => events(ops, "event_received").find(([nsp, id]) => nsp === "/chat" && id === grace.id), "event_received for grace, on node B");
    assert.deepEqual(remote[2], ["message", { room: "general", text: "hello from B" }]);
  });

  test("the events a socket is sent are reported, broadcasts included (as instrument() does)", async () => {
    // The chat sends its events to rooms: ada (node A) is sent a message of #general.
    const { id } = await grace.emitWithAck("message", { room: "general", text: "sent to ada" });
    const [, , args, at] = await when(
      ops,
      () => events(ops, "event_sent").find(([nsp, sid, args]) => nsp === "/chat" && sid === ada.id && args[0] === "message" && args[1]?.id === id),
      "event_sent of the #general message to ada",
    );
    assert.deepEqual(args[1], { id, room: "general", from: "grace", text: "sent to ada", at: args[1].at });
    assert.ok(!Number.isNaN(Date.parse(at)), `a date: ${at}`);
  });

  test("join from the admin puts a socket of node B in a room: room_joined, and the room's messages reach it", async () => {
    ops.emit("join", "/chat", "#general", bob.id);
    await when(ops, () => events(ops, "room_joined").some(([nsp, room, id]) => nsp === "/chat" && room === "#general" && id === bob.id), "room_joined #general for bob");
    assert.ok(ops.known.get(bob.id).rooms.includes("#general"));
    const { id } = await ada.emitWithAck("message", { room: "general", text: "bob, are you there?" });
    await when(bob, () => bob.messages.some((m) => m.id === id), "bob receiving the #general message");

    ops.emit("leave", "/chat", "#general", bob.id);
    await when(ops, () => events(ops, "room_left").some(([nsp, room, id]) => nsp === "/chat" && room === "#general" && id === bob.id), "room_left #general for bob");
    assert.ok(!ops.known.get(bob.id).rooms.includes("#general"));
  });

  test("emit from the admin reaches a socket of node B", async () => {
    const heard = next(bob, "notice");
    ops.emit("emit", "/chat", bob.id, "notice", { text: "from the admin" });
    assert.deepEqual(await heard, [{ text: "from the admin" }]);
  });

  test("a user leaving on node B is reported as socket_disconnected", async () => {
    const alanId = alan.id; // the client forgets it on disconnect
    alan.disconnect();
    const [nsp, , reason, at] = await when(ops, () => events(ops, "socket_disconnected").find(([, id]) => id === alanId), "socket_disconnected for alan");
    assert.equal(nsp, "/chat");
    assert.equal(reason, "client namespace disconnect");
    assert.ok(!Number.isNaN(Date.parse(at)), `a date: ${at}`);
    assert.ok(!ops.known.has(alanId));
  });

  test("_disconnect from the admin on A disconnects a client of node B, with io server disconnect", async () => {
    const graceId = grace.id;
    const gone = next(grace, "disconnect");
    ops.emit("_disconnect", "/chat", false, graceId);
    assert.equal((await gone)[0], "io server disconnect");
    const [, , reason] = await when(ops, () => events(ops, "socket_disconnected").find(([, id]) => id === graceId), "socket_disconnected for grace");
    assert.equal(reason, "server namespace disconnect");
    assert.ok(!ops.known.has(graceId));
    // The others stay.
    await barrier(bob, ada);
    assert.equal(bob.connected, true);
    assert.equal(ada.connected, true);
    await when(ops, () => chatCount(ops.stats.get("node-b")) === 1, "node-b's stats down to bob alone");
  });

  test("a wrong password or user is refused with invalid credentials", async () => {
    for (const auth of [{ username: "admin", password: "nope" }, { username: "root", password: PASSWORD }, {}]) {
      const intruder = admin(a, auth);
      const result = await outcome(intruder);
      assert.ok(result instanceof Error, `refused: ${JSON.stringify(auth)}`);
      assert.equal(result.message, "invalid credentials");
      assert.deepEqual(intruder.got, [], "no session, no config, no sockets");
    }
  });
});

describe("a read-only node (--admin-readonly, its own user and bcrypt hash)", { timeout: 30_000 }, () => {
  test("refuses the default credentials, offers no command and ignores _disconnect", async () => {
    const refused = await outcome(admin(ro));
    assert.ok(refused instanceof Error);
    assert.equal(refused.message, "invalid credentials");

    const ada = await user(ro, "ada", ["general"]);
    const viewer = admin(ro, { username: "ops", password: "s3cret-ops" });
    assert.equal(await outcome(viewer), "connect");
    await when(viewer, () => events(viewer, "config").length && viewer.known.has(ada.id), "config and ada's socket");
    const [[config]] = events(viewer, "config");
    for (const feature of MUTATING) assert.ok(!config.supportedFeatures.includes(feature), `no ${feature}: ${config.supportedFeatures}`);
    assert.ok(config.supportedFeatures.includes("AGGREGATED_EVENTS"));
    assert.ok(config.supportedFeatures.includes("ALL_EVENTS"));

    ada.reasons = [];
    ada.on("disconnect", (reason) => ada.reasons.push(reason));
    viewer.emit("_disconnect", "/chat", false, ada.id);
    viewer.emit("_disconnect", "/chat", true, ada.id);
    viewer.emit("join", "/chat", "#random", ada.id);
    // The commands are handled in order long before two more stats reports (2 s apart) go out:
    // both still count ada, and she is still there, in no new room.
    await nextStats(viewer, "node-ro");
    const later = await nextStats(viewer, "node-ro");
    assert.equal(chatCount(later), 1);
    await barrier(ada);
    assert.equal(ada.connected, true);
    assert.deepEqual(ada.reasons, []);
    assert.deepEqual([...viewer.known.get(ada.id).rooms].sort(), ["#general", ada.id].sort());
    assert.deepEqual(events(viewer, "room_joined").filter(([, room]) => room === "#random"), []);
  });
});
