// Rooms, broadcast helpers and per-socket storage, observed by ten stock clients.
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";
import { io } from "socket.io-client";
import { next, start } from "./support/server.mjs";

let server;
let clients = [];

async function connect(options = {}) {
  const socket = io(server.url + "/rooms", {
    forceNew: true,
    reconnection: false,
    transports: ["websocket"],
    ...options,
  });
  await next(socket, "connect");
  socket.hits = [];
  socket.on("hit", (mode, from) => socket.hits.push(`${mode}:${from}`));
  return socket;
}

// Room layout of the ten clients: c0..c9.
const LAYOUT = [["a"], ["a"], ["a", "b"], ["b"], ["b"], ["c"], ["c"], [], ["a", "c"], []];
const members = (room) => LAYOUT.flatMap((rooms, i) => (rooms.includes(room) ? [i] : []));

/**
 * Has client `from` perform a broadcast, then waits until every client has processed every
 * packet sent before it: each client's round trip is answered after the broadcast was queued to
 * it, so its hits are final. Returns the indexes of the clients that received it, one entry per
 * receipt (a double delivery would show twice).
 */
async function cast(from, request) {
  for (const c of clients) c.hits = [];
  assert.equal(await clients[from].emitWithAck("cast", request), "done");
  await Promise.all(clients.map((c) => c.emitWithAck("get", "barrier")));
  const received = [];
  clients.forEach((c, i) => c.hits.forEach(() => received.push(i)));
  return received.sort((x, y) => x - y);
}

before(async () => {
  server = await start();
});
after(async () => {
  await server.stop();
});

describe("ten clients over rooms", () => {
  beforeEach(async () => {
    for (const c of clients) c.disconnect();
    clients = await Promise.all(LAYOUT.map(() => connect()));
    await Promise.all(clients.map((c, i) => c.emitWithAck("join", LAYOUT[i])));
  });

  test("every socket is in its own room and those it joined", async () => {
    const rooms = await clients[2].emitWithAck("join", []);
    assert.deepEqual([...rooms].sort(), [clients[2].id, "a", "b"].sort());
    const after = await clients[2].emitWithAck("leave", "a");
    assert.deepEqual([...after].sort(), [clients[2].id, "b"].sort());
  });

  test("to everyone in the namespace", async () => {
    assert.deepEqual(await cast(0, { mode: "all" }), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  test("to everyone but the sender", async () => {
    assert.deepEqual(await cast(3, { mode: "broadcast" }), [0, 1, 2, 4, 5, 6, 7, 8, 9]);
  });

  test("to a room, sender excluded (socket.to)", async () => {
    assert.deepEqual(await cast(0, { mode: "to", rooms: ["a"] }), members("a").filter((i) => i !== 0));
    assert.deepEqual(await cast(7, { mode: "to", rooms: ["a"] }), members("a"));
  });

  test("to a room, sender included if a member (socket.within)", async () => {
    assert.deepEqual(await cast(0, { mode: "within", rooms: ["a"] }), members("a"));
  });

  test("to several rooms: each member once, even when in both", async () => {
    assert.deepEqual(await cast(9, { mode: "to", rooms: ["a", "b"] }), [0, 1, 2, 3, 4, 8]);
  });

  test("to everyone but the sender and a room (except)", async () => {
    assert.deepEqual(await cast(9, { mode: "except", except: ["a"] }), [3, 4, 5, 6, 7]);
  });

  test("to a room except another, from the namespace handle", async () => {
    assert.deepEqual(await cast(9, { mode: "io-to-except", rooms: ["a", "c"], except: ["b"] }), [0, 1, 5, 6, 8]);
  });

  test("to one socket by its id: a private message", async () => {
    const target = clients[6].id;
    assert.deepEqual(await cast(1, { mode: "to", rooms: [target] }), [6]);
  });

  test("volatile and local broadcasts reach connected clients that keep up", async () => {
    assert.deepEqual(await cast(0, { mode: "volatile" }), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.deepEqual(await cast(0, { mode: "local" }), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  test("leave and leave_all stop room deliveries", async () => {
    await clients[0].emitWithAck("leave", "a");
    const rooms = await clients[8].emitWithAck("leave-all");
    assert.deepEqual(rooms, []);
    assert.deepEqual(await cast(9, { mode: "to", rooms: ["a"] }), [1, 2]);
  });

  test("aggregated acks: every answer arrives and a silent client times out", async () => {
    clients.forEach((c, i) => {
      if (i !== 1) c.on("vote?", (callback) => callback(`yes from ${i}`));
      else c.on("vote?", () => {}); // never answers
    });
    const began = Date.now();
    const votes = await clients[9].timeout(5000).emitWithAck("votes", "a");
    const elapsed = Date.now() - began;
    const byId = Object.fromEntries(votes.map((v) => [v.id, v]));
    assert.equal(votes.length, members("a").length);
    for (const i of members("a")) {
      const vote = byId[clients[i].id];
      if (i === 1) assert.deepEqual(vote, { id: clients[1].id, error: "acknowledgement timed out" });
      else assert.deepEqual(vote, { id: clients[i].id, vote: `yes from ${i}` });
    }
    assert.ok(elapsed >= 700, `waited for the timeout (${elapsed} ms)`);
  });

  test("fetch_sockets lists a room's sockets", async () => {
    const ids = await clients[0].emitWithAck("fetch", "c");
    assert.deepEqual(ids, members("c").map((i) => clients[i].id).sort());
  });

  test("a selection joins and leaves rooms", async () => {
    await Promise.all(clients.map((c) => c.emitWithAck("join", ["lobby"])));
    assert.equal(await clients[0].emitWithAck("move", "b", "stage"), "moved");
    assert.deepEqual(await cast(9, { mode: "to", rooms: ["stage"] }), members("b"));
    const lobby = await cast(9, { mode: "to", rooms: ["lobby"] });
    assert.deepEqual(lobby, [0, 1, 5, 6, 7, 8]);
  });

  test("disconnect_sockets disconnects exactly a room's sockets", async () => {
    const gone = members("c").map((i) => next(clients[i], "disconnect"));
    assert.equal(await clients[0].emitWithAck("kick", "c"), "kicking");
    const reasons = (await Promise.all(gone)).map(([reason]) => reason);
    assert.deepEqual(reasons, members("c").map(() => "io server disconnect"));
    for (const [i, c] of clients.entries()) assert.equal(c.connected, !members("c").includes(i), `c${i}`);
  });
});

describe("storage", () => {
  test("entries survive across events and a type mismatch is a clear error", async () => {
    const s = await connect();
    assert.equal(await s.emitWithAck("set", "nick", "ada"), 1);
    assert.equal(await s.emitWithAck("set", "score", 41), 2);
    assert.equal(await s.emitWithAck("get", "nick"), "ada");
    assert.equal(await s.emitWithAck("get-number", "score"), 41);
    const wrong = await s.emitWithAck("get-number", "nick");
    assert.match(wrong.error, /value under "nick" is not of the requested type/);
    assert.deepEqual(await s.emitWithAck("get", "nothing"), { error: 'no value stored under "nothing"' });
    s.disconnect();
  });

  test("other sockets' entries are readable (the nicknames in a room)", async () => {
    const people = await Promise.all(["zoe", "yan", "xia"].map(() => connect()));
    await Promise.all(people.map((p, i) => p.emitWithAck("set", "nick", ["zoe", "yan", "xia"][i])));
    await Promise.all(people.slice(0, 2).map((p) => p.emitWithAck("join", ["tea"])));
    assert.deepEqual(await people[2].emitWithAck("nicks", "tea"), ["yan", "zoe"]);
    people.forEach((p) => p.disconnect());
  });

  test("the disconnect handler reads the store and the rooms; the store is freed after", async () => {
    const stay = await connect();
    const leave = await connect();
    await stay.emitWithAck("join", ["tea"]);
    await leave.emitWithAck("join", ["tea"]);
    await leave.emitWithAck("set", "nick", "bo");
    const notice = next(stay, "left");
    leave.disconnect();
    assert.deepEqual(await notice, ["bo"]);
    stay.disconnect();
  });

  test("live stores return to zero after 1,000 connect/disconnect cycles", async () => {
    for (const c of clients) c.disconnect();
    clients = [];
    for (let round = 0; round < 100; round++) {
      const batch = await Promise.all(Array.from({ length: 10 }, () => connect()));
      await Promise.all(batch.map((s) => s.emitWithAck("set", "blob", "x".repeat(100))));
      const gone = batch.map((s) => next(s, "disconnect"));
      batch.forEach((s) => s.disconnect());
      await Promise.all(gone);
    }
    // Disconnects finish asynchronously on the server: ask until the count settles at zero.
    let stats;
    for (let attempt = 0; attempt < 200; attempt++) {
      stats = await (await fetch(server.url + "/stats")).json();
      if (stats.live_stores === 0) break;
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.equal(stats.live_stores, 0);
  });
});
