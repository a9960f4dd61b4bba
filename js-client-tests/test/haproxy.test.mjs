// Three nodes on a real redis-server behind a real HAProxy (Debian's, running
// js-client-tests/haproxy/haproxy.cfg, sticky sessions by cookie). Stock socket.io-client
// instances connect through it over polling then WebSocket, WebSocket only and polling only;
// each stays on one node, they chat across the nodes, and when a node is killed its clients
// reconnect through HAProxy to the other two and chat on.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, describe, test } from "node:test";
import { Manager } from "socket.io-client";
import { CONFIG, startHaproxy } from "./support/haproxy.mjs";
import { startRedis } from "./support/redis.mjs";
import { next, outcome, start } from "./support/server.mjs";

const TRANSPORTS = {
  upgrade: undefined, // the default: polling, then an upgrade to WebSocket
  websocket: ["websocket"],
  polling: ["polling"],
};
// HAProxy hands new clients to node1, node2, node3 in turn: in this order each node gets one
// client of each kind.
const KINDS = ["upgrade", "websocket", "polling", "websocket", "polling", "upgrade", "polling", "upgrade", "websocket"];

let redis;
let nodes = [];
let lb;
const clients = [];
let killed; // the name HAProxy gives the node the test kills

/** Rejects with `what` if `promise` does not settle within `ms`. */
function within(ms, promise, what) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/**
 * A stock client through HAProxy: one Manager (one Engine.IO session, so one node) carrying the
 * main namespace, which tells which node served the handshake, and `/rooms`, where it chats.
 */
function connect(kind) {
  const manager = new Manager(lb.url, {
    transports: TRANSPORTS[kind],
    // In Node, engine.io-client keeps the cookies a response sets (HAProxy's SERVERID) and sends
    // them back only with this; a browser does it by itself for its own origin.
    withCredentials: true,
    reconnectionDelay: 100,
    reconnectionDelayMax: 400,
    timeout: 5_000,
  });
  const client = { kind, manager, main: manager.socket("/"), rooms: manager.socket("/rooms"), heard: [] };
  client.rooms.on("hit", (mode, from) => client.heard.push(`${mode}:${from}`));
  return client;
}

/**
 * Waits until both namespaces of `client` are connected, joins `/rooms` room "chat" and records
 * the node that served this connection (HAProxy names it in the X-Tongxun-Node header).
 */
async function settle(client) {
  const connected = (socket) => (socket.connected ? Promise.resolve() : next(socket, "connect"));
  await within(10_000, Promise.all([connected(client.main), connected(client.rooms)]), `${client.kind} client connects`);
  const handshake = await client.main.timeout(5_000).emitWithAck("handshake");
  client.node = handshake.headers["x-tongxun-node"];
  assert.match(client.node ?? "", /^node[123]$/, "HAProxy names the node in the handshake");
  assert.ok((await client.rooms.timeout(5_000).emitWithAck("join", ["chat"])).includes("chat"), "joined the room");
  return client;
}

/** The transport `client` ends on: upgrade clients switch to WebSocket after connecting. */
async function transport(client) {
  const engine = client.manager.engine;
  if (client.kind === "upgrade" && engine.transport.name !== "websocket") {
    await within(5_000, next(engine, "upgrade"), "the upgrade to WebSocket");
  }
  return engine.transport.name;
}

/** `sender` says something in room "chat"; resolves once every one of `others` heard it. */
async function say(sender, others) {
  const hit = `to:${sender.rooms.id}`;
  assert.equal(await sender.rooms.timeout(5_000).emitWithAck("cast", { mode: "to", rooms: ["chat"] }), "done");
  await Promise.all(
    others.map((other) =>
      within(
        5_000,
        new Promise((resolve) => {
          const check = () => {
            if (!other.heard.includes(hit)) return;
            other.rooms.off("hit", check);
            resolve();
          };
          other.rooms.on("hit", check);
          check();
        }),
        `the ${other.kind} client on ${other.node} hears the ${sender.kind} client on ${sender.node}`,
      ),
    ),
  );
}

/** Every client says something and every other client hears it. */
async function everyoneChats() {
  for (const sender of clients) {
    await say(sender, clients.filter((c) => c !== sender));
  }
}

before(async () => {
  redis = await startRedis();
  nodes = await Promise.all([0, 1, 2].map(() => start(undefined, [], { TONGXUN_REDIS_URL: redis.url })));
  lb = await startHaproxy(nodes.map((n) => n.url));
  for (const kind of KINDS) clients.push(await settle(connect(kind)));
  for (const client of clients) {
    client.drops = 0;
    client.rooms.on("disconnect", () => client.drops++);
  }
});

after(async () => {
  for (const client of clients) {
    client.main.disconnect();
    client.rooms.disconnect();
  }
  await lb?.stop();
  await Promise.all(nodes.map((n) => n.stop()));
  await redis?.stop();
});

describe("three nodes behind HAProxy with sticky sessions", { timeout: 40_000 }, () => {
  test("clients of every transport reach every node, and polling then upgrading stays on one node", async () => {
    const seen = new Map();
    for (const client of clients) {
      const name = await transport(client);
      assert.equal(name, client.kind === "upgrade" ? "websocket" : client.kind, `${client.kind} client's transport`);
      seen.set(client.node, [...(seen.get(client.node) ?? []), client.kind]);
    }
    // An upgrade that reached another node would have failed, leaving the client on polling.
    for (const node of ["node1", "node2", "node3"]) {
      assert.deepEqual(seen.get(node)?.sort(), ["polling", "upgrade", "websocket"], `clients on ${node}`);
    }
  });

  test("they chat across the nodes: whatever one says in the room, every other hears", async () => {
    await everyoneChats();
    assert.deepEqual(clients.map((c) => c.drops), clients.map(() => 0), "no client lost its session");
  });

  test("a polling client that keeps no cookie is spread over the nodes and loses its session", async () => {
    const manager = new Manager(lb.url, { transports: ["polling"], reconnection: false, timeout: 5_000 });
    const socket = manager.socket("/");
    try {
      const result = await within(10_000, outcome(socket), "the cookieless client's outcome");
      assert.ok(result instanceof Error, `expected a connect_error, got ${result}`);
      // The node that did not open the session answers 400 (Session ID unknown).
      assert.equal(result.description, 400, result.message);
    } finally {
      socket.disconnect();
    }
  });

  test("a node killed: its clients reconnect through HAProxy to the other nodes and chat on", async () => {
    const victim = (killed = clients[0].node);
    const gone = clients.filter((c) => c.node === victim);
    const stay = clients.filter((c) => c.node !== victim);
    assert.deepEqual(gone.map((c) => c.kind).sort(), ["polling", "upgrade", "websocket"]);
    const back = gone.map((client) =>
      within(10_000, next(client.rooms, "disconnect"), `the ${client.kind} client on ${victim} notices`).then(() =>
        settle(client),
      ),
    );
    nodes[Number(victim.slice(-1)) - 1].child.kill("SIGKILL");
    await Promise.all(back);
    for (const client of gone) {
      assert.notEqual(client.node, victim, `the ${client.kind} client moved`);
      assert.equal(await transport(client), client.kind === "upgrade" ? "websocket" : client.kind);
    }
    assert.deepEqual(stay.map((c) => c.drops), stay.map(() => 0), "the other nodes' clients stayed connected");
    await everyoneChats();
  });

  test("HAProxy's health check marks the killed node down, and only it", async () => {
    assert.ok(killed, "a node was killed");
    await within(5_000, lb.printed(new RegExp(`Server nodes/${killed} is DOWN`)), `${killed} marked down`);
    const down = new Set([...lb.stderr().matchAll(/Server nodes\/(node\d) is DOWN/g)].map((m) => m[1]));
    assert.deepEqual([...down], [killed], "the nodes HAProxy marked down");
  });
});

test("docs/scaling.md shows the config this test runs, as it is", async () => {
  const config = (await readFile(CONFIG, "utf8")).trimEnd();
  const docs = await readFile(new URL("../../docs/scaling.md", import.meta.url), "utf8");
  assert.ok(docs.includes(`\`\`\`haproxy\n${config}\n\`\`\`\n`), "docs/scaling.md has haproxy.cfg in a haproxy block");
});
