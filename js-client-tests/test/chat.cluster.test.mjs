// Two chat nodes (examples/chat with --redis-url) on one Redis are one chat: stock
// socket.io-client users on each, and a python-socketio user, see one set of nicknames, one
// member list per room, private messages across nodes, one sequence of ids and one history.
// Then Redis is killed and restarted under acknowledged traffic: no message acknowledged as
// delivered is missing on the other node.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, test } from "node:test";
import { setTimeout as delay, setInterval } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { io } from "socket.io-client";
import { startRedis } from "./support/redis.mjs";
import { next, startExample } from "./support/server.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const PYTHON = "/usr/bin/python3";

let redis;
let nodes;
const clients = [];

before(async () => {
  redis = await startRedis();
  nodes = await Promise.all([0, 1].map(() => startExample("chat", ["--redis-url", redis.url])));
});
after(async () => {
  for (const c of clients) c.disconnect();
  await Promise.all(nodes.map((n) => n.stop()));
  await redis.stop();
});

/** A client of node `n` that records the events it receives, by name, in `got`. */
async function connect(n) {
  const socket = io(nodes[n].url + "/chat", { forceNew: true, reconnection: false, transports: ["websocket"] });
  clients.push(socket);
  socket.got = { message: [], notice: [], members: [], private: [] };
  for (const [event, list] of Object.entries(socket.got)) socket.on(event, (payload) => list.push(payload));
  await next(socket, "connect");
  return socket;
}

/** A user of node `n` with nickname `nick`, in `rooms`. */
async function user(n, nick, rooms = []) {
  const socket = await connect(n);
  assert.deepEqual(await socket.timeout(5_000).emitWithAck("nick", nick), { ok: nick });
  socket.nick = nick;
  for (const room of rooms) assert.equal((await socket.timeout(5_000).emitWithAck("join", room)).ok, true);
  return socket;
}

/** Resolves with the first event `event` of `socket` (recorded or to come) that `matches`. */
function received(socket, event, matches) {
  const found = socket.got[event].find(matches);
  if (found) return Promise.resolve(found);
  return new Promise((resolve) => {
    const check = (payload) => {
      if (!matches(payload)) return;
      socket.off(event, check);
      resolve(payload);
    };
    socket.on(event, check);
  });
}

const sameMembers = (want) => (m) => m.room === want.room && JSON.stringify(m.members) === JSON.stringify(want.members);

describe("two chat nodes on one Redis", () => {
  test("a nickname is taken on every node, whatever its case, until its user leaves", async () => {
    const ada = await user(0, "ada", ["nicks"]);
    const other = await connect(1);
    assert.deepEqual(await other.timeout(5_000).emitWithAck("nick", "ADA"), { error: 'the nickname "ADA" is taken' });
    const watcher = await user(1, "watcher", ["nicks"]);
    ada.disconnect();
    // The other node's member list without her says her node handled the leave.
    await received(watcher, "members", sameMembers({ room: "nicks", members: ["watcher"] }));
    assert.deepEqual(await other.timeout(5_000).emitWithAck("nick", "ADA"), { ok: "ADA" });
    watcher.disconnect();
    other.disconnect();
  });

  test("member lists hold the users of both nodes, on both, and lose a user who leaves on the other", async () => {
    const ada = await user(0, "ada2", ["members"]);
    const grace = await connect(1);
    await grace.timeout(5_000).emitWithAck("nick", "grace2");
    const joined = await grace.timeout(5_000).emitWithAck("join", "members");
    assert.deepEqual(joined.members, ["ada2", "grace2"]);
    await received(ada, "members", sameMembers({ room: "members", members: ["ada2", "grace2"] }));
    const linus = await user(1, "linus2", ["members"]);
    await received(ada, "members", sameMembers({ room: "members", members: ["ada2", "grace2", "linus2"] }));
    assert.deepEqual(
      (await ada.timeout(5_000).emitWithAck("leave", "members")).ok,
      "members",
    );
    await received(grace, "members", sameMembers({ room: "members", members: ["grace2", "linus2"] }));
    linus.disconnect();
    await received(grace, "members", sameMembers({ room: "members", members: ["grace2"] }));
    const notice = await received(grace, "notice", (n) => n.room === "members" && n.kind === "leave" && n.nick === "linus2");
    assert.equal(notice.text, "linus2 left");
    ada.disconnect();
    grace.disconnect();
  });

  test("private messages cross the nodes both ways", async () => {
    const ada = await user(0, "ada3");
    const grace = await user(1, "grace3");
    const sent = await ada.timeout(5_000).emitWithAck("private", { to: "GRACE3", text: "psst" });
    assert.equal(sent.ok, true);
    assert.equal(sent.local, undefined, "every node was told");
    const got = await received(grace, "private", (m) => m.text === "psst");
    assert.deepEqual([got.from, got.to, got.id], ["ada3", "grace3", sent.id]);
    const back = await grace.timeout(5_000).emitWithAck("private", { to: "ada3", text: "hi ada" });
    assert.equal(back.ok, true);
    assert.equal((await received(ada, "private", (m) => m.text === "hi ada")).id, back.id);
    assert.deepEqual(await ada.timeout(5_000).emitWithAck("private", { to: "nobody3", text: "?" }), {
      error: 'nobody called "nobody3" is online',
    });
    ada.disconnect();
    grace.disconnect();
  });

  test("ids increase across the nodes, and a newcomer on either node gets the shared history", async () => {
    const ada = await user(0, "ada4", ["history"]);
    const grace = await user(1, "grace4", ["history"]);
    const ids = [];
    for (let n = 0; n < 6; n += 1) {
      const from = n % 2 === 0 ? ada : grace;
      const sent = await from.timeout(5_000).emitWithAck("message", { room: "history", text: `m${n}` });
      assert.equal(sent.local, undefined);
      ids.push(sent.id);
    }
    assert.ok(ids.every((id, i) => i === 0 || id > ids[i - 1]), `ids increase: ${ids}`);
    for (const n of [0, 1]) {
      const newcomer = await user(n, `newcomer4-${n}`);
      const { history } = await newcomer.timeout(5_000).emitWithAck("join", "history");
      assert.deepEqual(history.map((m) => [m.id, m.text, m.from]), ids.map((id, i) => [id, `m${i}`, i % 2 === 0 ? "ada4" : "grace4"]));
      newcomer.disconnect();
    }
    // Each saw the other's messages, with the ids the senders were told.
    const fromGrace = await received(ada, "message", (m) => m.text === "m5");
    assert.equal(fromGrace.id, ids[5]);
    ada.disconnect();
    grace.disconnect();
  });

  test("a python-socketio user on one node and a socket.io-client user on the other chat together", async (t) => {
    const ada = await user(0, "ada5", ["general"]);
    const python = spawn(PYTHON, [join(here, "..", "python", "chat_user.py"), nodes[1].url, "py5"], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    const stderr = [];
    python.stderr.on("data", (chunk) => stderr.push(chunk));
    const exited = new Promise((resolve) => python.once("exit", resolve));
    t.after(() => python.kill());
    const lines = createInterface({ input: python.stdout });
    const answers = [];
    const waiting = [];
    lines.on("line", (line) => {
      const answer = JSON.parse(line);
      const resolve = waiting.shift();
      if (resolve) resolve(answer);
      else answers.push(answer);
    });
    exited.then((code) => {
      for (const resolve of waiting.splice(0)) resolve({ exited: code, stderr: Buffer.concat(stderr).toString() });
    });
    const answer = () => (answers.length ? Promise.resolve(answers.shift()) : new Promise((r) => waiting.push(r)));
    const ask = (command) => {
      python.stdin.write(JSON.stringify(command) + "\n");
      return answer();
    };

    const { ready } = await answer();
    assert.ok(ready, "python client connected, named and joined");
    assert.ok(ready.members.includes("ada5"), `the python user sees ada5 of the other node: ${ready.members}`);
    await received(ada, "members", (m) => m.room === "general" && m.members.includes("py5"));

    const fromAda = await ada.timeout(5_000).emitWithAck("message", { room: "general", text: "hello python" });
    const fromPython = await ask({ do: "emit", event: "message", data: { room: "general", text: "hello node" } });
    assert.equal(fromPython.ack.ok, true);
    assert.ok(fromPython.ack.id > fromAda.id, "one sequence of ids across both nodes");
    assert.equal((await received(ada, "message", (m) => m.text === "hello node")).from, "py5");
    const privately = await ask({ do: "emit", event: "private", data: { to: "ada5", text: "from python" } });
    assert.equal(privately.ack.ok, true);
    assert.equal((await received(ada, "private", (m) => m.text === "from python")).from, "py5");
    assert.deepEqual(
      (await ask({ do: "emit", event: "nick", data: "ADA5" })).ack,
      { error: 'the nickname "ADA5" is taken' },
    );
    // The python side answered its requests in order, so the message from ada had reached it.
    const { got } = await ask({ do: "got" });
    assert.ok(got.message.some((m) => m.text === "hello python" && m.id === fromAda.id), JSON.stringify(got.message));
    python.stdin.end(JSON.stringify({ do: "quit" }) + "\n");
    assert.equal(await exited, 0, Buffer.concat(stderr).toString());
    await received(ada, "members", (m) => m.room === "general" && !m.members.includes("py5"));
    ada.disconnect();
  });

  test("Redis killed and restarted under 50 acknowledged messages a second: nothing acknowledged as delivered is lost", async (t) => {
    const sender = await user(0, "sender6", ["outage"]);
    const receiver = await user(1, "receiver6", ["outage"]);
    const delivered = [];
    const local = [];
    const outageAcks = [];
    let phase = "before";
    const send = async (n) => {
      const started = performance.now();
      const sent = await sender.timeout(5_000).emitWithAck("message", { room: "outage", text: `n${n}` });
      const took = performance.now() - started;
      assert.equal(sent.ok, true, JSON.stringify(sent));
      (sent.local ? local : delivered).push(sent.id);
      if (phase === "away") outageAcks.push(took);
    };
    // The load: 50 messages a second, one every 20 ms, each awaited (the chat orders a user's
    // requests); a message whose answer takes longer starts the next at once.
    const pace = async (count) => {
      const ticks = setInterval(20, undefined, { ref: false })[Symbol.asyncIterator]();
      for (let n = 0; n < count; n += 1) {
        await send(`${phase}-${n}`);
        await ticks.next();
      }
      await ticks.return();
    };
    await pace(50);
    await redis.stop();
    phase = "away";
    await pace(100);
    redis = await startRedis(redis.port);
    phase = "back";
    await pace(150);
    // Everything acknowledged as delivered reaches the receiver, live or caught up once its node
    // is back on Redis (it may come twice: clients drop ids they have).
    const missing = () => {
      const seen = new Set(receiver.got.message.map((m) => m.id));
      return delivered.filter((id) => !seen.has(id));
    };
    const giveUp = new AbortController();
    const allThere = new Promise((resolve) => {
      const check = () => {
        if (missing().length > 0) return;
        receiver.off("message", check);
        resolve();
      };
      receiver.on("message", check);
      check();
    });
    // A bound on the failure, not a wait for the state: the catch-up comes within a second or so.
    const gaveUp = delay(20_000, "gave up", { signal: giveUp.signal }).catch(() => "done");
    const outcome = await Promise.race([allThere, gaveUp]);
    giveUp.abort();
    const redisLines = (node) =>
      [...node.output, ...node.stderr().split("\n")].filter((l) => /Redis|caught up|lapsed/.test(l));
    assert.notEqual(
      outcome,
      "gave up",
      `acknowledged as delivered, never received: ${missing()}\n` +
        `receiver's node:\n${redisLines(nodes[1]).join("\n")}\nsender's node:\n${redisLines(nodes[0]).join("\n")}`,
    );
    outageAcks.sort((a, b) => a - b);
    const median = outageAcks[Math.floor(outageAcks.length / 2)];
    t.diagnostic(
      `${delivered.length} delivered, ${local.length} this server only; acks while Redis was away: ` +
        `median ${median.toFixed(1)} ms, max ${outageAcks.at(-1).toFixed(1)} ms`,
    );
    assert.ok(local.length > 0, "messages sent while Redis was away said so");
    assert.ok(delivered.length > 150, "most messages were delivered");
    sender.disconnect();
    receiver.disconnect();
  });
});
