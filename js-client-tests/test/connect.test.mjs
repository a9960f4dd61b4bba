// Connecting with the stock socket.io-client: transports, namespaces, auth, disconnects, shutdown.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { io } from "socket.io-client";
import { next, start } from "./support/server.mjs";

let server;
const sockets = [];
function connect(path = "/", options = {}) {
  const socket = io(server.url + path, { forceNew: true, reconnection: false, ...options });
  sockets.push(socket);
  return socket;
}

before(async () => {
  server = await start();
});
after(async () => {
  for (const socket of sockets) socket.disconnect();
  await server.stop();
});

describe("socket.handshake", () => {
  for (const transport of ["polling", "websocket"]) {
    test(`the server reads what the client sent at connect, over ${transport}`, async () => {
      const before = Date.now();
      const socket = connect("/", {
        transports: [transport],
        auth: { token: "t0k3n", user: 7 },
        query: { room: "lobby" },
        extraHeaders: { "x-client": "tests", origin: "http://elsewhere.test" },
      });
      await next(socket, "connect");
      const handshake = await socket.emitWithAck("handshake");
      assert.deepEqual(handshake.auth, { token: "t0k3n", user: 7 });
      assert.equal(handshake.query.room, "lobby");
      assert.equal(handshake.query.EIO, "4");
      assert.equal(handshake.query.transport, transport);
      assert.equal(handshake.headers["x-client"], "tests");
      assert.equal(handshake.address, "127.0.0.1");
      assert.match(handshake.url, /^\/socket\.io\/\?/);
      assert.match(handshake.url, /room=lobby/);
      assert.equal(handshake.secure, false);
      assert.equal(handshake.xdomain, true);
      assert.ok(handshake.issued >= before - 1000 && handshake.issued <= Date.now() + 1000);
      assert.equal(new Date(handshake.time).getTime(), Math.floor(handshake.issued / 1000) * 1000);
    });
  }

  test("a client without auth reads as {} and without Origin is not cross-domain", async () => {
    const socket = connect("/", { transports: ["websocket"] });
    await next(socket, "connect");
    const handshake = await socket.emitWithAck("handshake");
    assert.deepEqual(handshake.auth, {});
    assert.equal(handshake.xdomain, false);
  });
});

describe("transports", () => {
  test("connects to / over long-polling, then upgrades to WebSocket", async () => {
    const socket = connect("/", { autoConnect: false });
    // Listen before connecting: on a fast machine the upgrade may finish right after "connect".
    const opened = new Promise((resolve) =>
      socket.io.once("open", () => resolve(socket.io.engine.transport.name)),
    );
    const upgraded = new Promise((resolve) =>
      socket.io.once("open", () => socket.io.engine.once("upgrade", (transport) => resolve(transport.name))),
    );
    socket.connect();
    assert.equal(await opened, "polling", "the session opens over long-polling");
    assert.equal(await upgraded, "websocket");
    assert.equal(socket.io.engine.transport.name, "websocket");
    assert.equal(await socket.emitWithAck("echo", "after upgrade"), "after upgrade");
  });

  test("connects over WebSocket only", async () => {
    const socket = connect("/", { transports: ["websocket"] });
    await next(socket, "connect");
    assert.equal(socket.io.engine.transport.name, "websocket");
    assert.equal(await socket.emitWithAck("echo", 42), 42);
  });

  test("connects over long-polling only and exchanges events", async () => {
    const socket = connect("/", { transports: ["polling"] });
    await next(socket, "connect");
    assert.equal(socket.io.engine.transport.name, "polling");
    assert.deepEqual(await socket.emitWithAck("echo", { a: [1, 2] }), { a: [1, 2] });
  });
});

describe("namespaces", () => {
  test("/ and /chat are multiplexed on one connection", async () => {
    const main = connect("/");
    const chat = main.io.socket("/chat");
    sockets.push(chat);
    chat.connect();
    await Promise.all([next(main, "connect"), next(chat, "connect")]);
    assert.equal(main.io, chat.io, "one Manager");
    const who = await chat.emitWithAck("whoami");
    assert.equal(who.ns, "/chat");
    assert.equal(await main.emitWithAck("echo", "main"), "main");
    // Only one Engine.IO session carries both namespaces.
    assert.equal(main.io.engine.id, chat.io.engine.id);
  });

  test("/chat alone over WebSocket", async () => {
    const chat = connect("/chat", { transports: ["websocket"] });
    await next(chat, "connect");
    assert.equal((await chat.emitWithAck("whoami")).ns, "/chat");
  });

  test("a dynamic namespace /tenant/{id} is joined by its concrete path", async () => {
    const tenant = connect("/tenant/42");
    await next(tenant, "connect");
    assert.equal(await tenant.emitWithAck("tenant"), "/tenant/42");
  });

  test("an unknown namespace gets connect_error 'Invalid namespace'", async () => {
    const socket = connect("/nowhere");
    const [err] = await next(socket, "connect_error");
    assert.equal(err.message, "Invalid namespace");
    assert.equal(socket.connected, false);
  });
});

describe("auth", () => {
  test("the auth payload reaches the server, which keeps what it learnt", async () => {
    const socket = connect("/auth", { auth: { token: "secret" } });
    await next(socket, "connect");
    assert.equal(await socket.emitWithAck("user"), "ada");
  });

  test("a bad token gets connect_error with its message, and the client does not retry", async () => {
    const socket = connect("/auth", { auth: { token: "wrong" }, reconnection: true });
    let attempts = 0;
    socket.io.on("reconnect_attempt", () => attempts++);
    const [err] = await next(socket, "connect_error");
    assert.equal(err.message, "invalid token");
    assert.equal(socket.active, false, "a refused socket is not retried");
    // A follow-up round trip on another namespace of the same manager proves the manager is idle.
    const main = socket.io.socket("/");
    sockets.push(main);
    main.connect();
    await next(main, "connect");
    assert.equal(await main.emitWithAck("echo", "still here"), "still here");
    assert.equal(attempts, 0);
  });

  test("a missing auth payload is refused with its own message", async () => {
    const socket = connect("/auth");
    const [err] = await next(socket, "connect_error");
    assert.equal(err.message, "missing token");
  });

  test("a refusal with data carries it as JSON in the message", async () => {
    const socket = connect("/auth", { auth: { token: "banned" } });
    const [err] = await next(socket, "connect_error");
    assert.deepEqual(JSON.parse(err.message), { message: "banned", data: { until: "tomorrow" } });
  });
});

describe("disconnects", () => {
  test("a server-side disconnect is seen as 'io server disconnect'", async () => {
    const socket = connect("/", { reconnection: true });
    await next(socket, "connect");
    socket.emit("disconnect-me");
    const [reason] = await next(socket, "disconnect");
    assert.equal(reason, "io server disconnect");
    assert.equal(socket.active, false, "the client does not reconnect by itself");
  });
});

describe("client bundle", () => {
  test("the npm socket.io-client bundle is served at /socket.io/socket.io.js, as Node does", async () => {
    const { readFile } = await import("node:fs/promises");
    const dist = new URL("../node_modules/socket.io-client/dist/socket.io.min.js", import.meta.url);
    const expected = await readFile(dist);
    for (const name of ["socket.io.js", "socket.io.min.js"]) {
      const response = await fetch(`${server.url}/socket.io/${name}`);
      assert.equal(response.status, 200, name);
      assert.equal(response.headers.get("content-type"), "application/javascript; charset=utf-8");
      const body = Buffer.from(await response.arrayBuffer());
      if (name === "socket.io.min.js") assert.ok(body.equals(expected), "byte for byte the npm file");
      const etag = response.headers.get("etag");
      const again = await fetch(`${server.url}/socket.io/${name}`, { headers: { "if-none-match": etag } });
      assert.equal(again.status, 304);
    }
    // The Socket.IO endpoint itself is untouched.
    const socket = connect("/");
    await next(socket, "connect");
  });
});

describe("allowRequest", () => {
  test("a refused handshake gets Node's 403 with code 4 and the app's message", async () => {
    const refused = await fetch(`${server.url}/socket.io/?EIO=4&transport=polling&refuse=not+today`);
    assert.equal(refused.status, 403);
    assert.equal(refused.headers.get("content-type"), "application/json");
    assert.deepEqual(await refused.json(), { code: 4, message: "not today" });
  });

  for (const transport of ["polling", "websocket"]) {
    test(`the stock client sees a connect_error and no session opens, over ${transport}`, async () => {
      const socket = connect("/", { transports: [transport], query: { refuse: "no" } });
      const [err] = await next(socket, "connect_error");
      assert.equal(err.message, transport === "polling" ? "xhr poll error" : "websocket error");
      if (transport === "polling") assert.equal(err.description, 403);
      assert.equal(socket.connected, false);
      // The same client without the refusal connects.
      const allowed = connect("/", { transports: [transport] });
      await next(allowed, "connect");
    });
  }
});
