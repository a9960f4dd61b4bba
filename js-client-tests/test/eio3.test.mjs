// socket.io-client 2.x (Engine.IO 3, Socket.IO protocol v4), against the fixture started with
// TONGXUN_ALLOW_EIO3 (Node: `new Server({ allowEIO3: true })`), and refused without it.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { io } from "socket.io-client";
import ioV2 from "socket.io-client-v2";
import { ask, assertBinaryRoundTrip } from "./support/binary.mjs";
import { next, outcome, start } from "./support/server.mjs";

let allowing; // the fixture with TONGXUN_ALLOW_EIO3
let refusing; // the fixture as every other suite starts it
const sockets = [];
function connect(server, path = "/", options = {}) {
  const socket = ioV2(server.url + path, { forceNew: true, reconnection: false, ...options });
  sockets.push(socket);
  return socket;
}

before(async () => {
  [allowing, refusing] = await Promise.all([start(undefined, [], { TONGXUN_ALLOW_EIO3: "1" }), start()]);
});
after(async () => {
  for (const socket of sockets) socket.close();
  await Promise.all([allowing.stop(), refusing.stop()]);
});

describe("without allowEIO3", () => {
  test("an Engine.IO 3 handshake is answered 400, code 5", async () => {
    const response = await fetch(`${refusing.url}/socket.io/?EIO=3&transport=polling`);
    assert.equal(response.status, 400);
    assert.deepEqual(await response.json(), { code: "5", message: "Unsupported protocol version" });
  });

  for (const transport of ["polling", "websocket"]) {
    test(`a socket.io-client 2.x cannot connect over ${transport}`, async () => {
      const socket = connect(refusing, "/", { transports: [transport] });
      const result = await outcome(socket);
      assert.notEqual(result, "connect");
      assert.equal(socket.connected, false);
    });
  }

  test("socket.io-client 4.x still connects", async () => {
    const socket = io(refusing.url, { forceNew: true, reconnection: false });
    sockets.push(socket);
    await next(socket, "connect");
    assert.equal(socket.connected, true);
  });
});

describe("with allowEIO3", () => {
  test("the polling handshake is framed as Engine.IO 3: length-prefixed, then the implicit CONNECT to /", async () => {
    const response = await fetch(`${allowing.url}/socket.io/?EIO=3&transport=polling&b64=1`);
    assert.equal(response.status, 200);
    const body = await response.text();
    const match = /^(\d+):0(\{.*\})$/.exec(body);
    assert.ok(match, `EIO3 open packet: ${body}`);
    assert.equal(Number(match[1]), match[2].length + 1);
    const open = JSON.parse(match[2]);
    assert.equal(open.pingInterval, 25000);
    assert.equal(open.pingTimeout, 20000);
    const poll = await fetch(`${allowing.url}/socket.io/?EIO=3&transport=polling&b64=1&sid=${open.sid}`);
    assert.equal(await poll.text(), "2:40", "the server joined the client to / without a CONNECT");
  });

  for (const transport of ["polling", "websocket"]) {
    describe(`a socket.io-client 2.x over ${transport}`, () => {
      test("connects to /, with the socket id of its Engine.IO session", async () => {
        const socket = connect(allowing, "/", { transports: [transport] });
        assert.equal(await outcome(socket), "connect");
        assert.equal(socket.io.engine.transport.name, transport);
        const [handshake] = await ask(socket, "handshake");
        assert.equal(handshake.query.EIO, "3");
        assert.equal(socket.id, socket.io.engine.id);
      });

      test("emits with an ack, several arguments each way", async () => {
        const socket = connect(allowing, "/", { transports: [transport] });
        await next(socket, "connect");
        assert.deepEqual(await ask(socket, "multi", "abc", 21, false), ["ABC", 42, true]);
        assert.deepEqual(await ask(socket, "echo", 1, "two", { three: [3] }, null), [1, "two", { three: [3] }, null]);
      });

      test("a binary Buffer reaches the server byte for byte", async () => {
        const socket = connect(allowing, "/", { transports: [transport] });
        await next(socket, "connect");
        const bytes = Buffer.alloc(70_000);
        for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31) & 0xff;
        const sum = bytes.reduce((total, byte) => total + byte, 0);
        assert.deepEqual(await ask(socket, "digest", bytes), [bytes.length, sum]);
      });
    });
  }

  // engineioxide 0.17.9 sends the attachments of a binary packet to an Engine.IO 3 long-polling
  // client without their packet type, which socket.io-client 2.x cannot decode (it throws):
  // binary from the server is tested over WebSocket only (docs/compatibility.md).
  test("a binary Buffer round-trips byte for byte over WebSocket, as an event and through the ack", async () => {
    const socket = connect(allowing, "/", { transports: ["websocket"] });
    await next(socket, "connect");
    await assertBinaryRoundTrip(socket);
  });

  for (const transport of ["polling", "websocket"]) {
    describe(`a socket.io-client 2.x over ${transport}, events`, () => {
      test("receives an event the server sends, and answers the server's ack", async () => {
        const socket = connect(allowing, "/", { transports: [transport] });
        await next(socket, "connect");
        const pinged = next(socket, "pinged");
        assert.deepEqual(await ask(socket, "ping-me"), []);
        assert.deepEqual(await pinged, []);
        socket.once("question", (question, answer) => answer(`re: ${question}`, 7));
        assert.deepEqual(await ask(socket, "ask-me", "why?"), [{ answer: "re: why?", number: 7 }]);
      });

      test("joins a namespace besides /, whose server-side id is the session id", async () => {
        const socket = connect(allowing, "/chat", { transports: [transport] });
        assert.equal(await outcome(socket), "connect");
        const [whoami] = await ask(socket, "whoami");
        assert.equal(whoami.ns, "/chat");
        assert.equal(whoami.id, socket.io.engine.id);
        // socket.io-client 2.x names its socket `<nsp>#<session id>` itself.
        assert.equal(socket.id, `/chat#${socket.io.engine.id}`);
      });

      test("the query of the connection is what the auth step and handlers read (there is no auth payload)", async () => {
        const socket = connect(allowing, "/", { transports: [transport], query: { token: "t0k3n" } });
        await next(socket, "connect");
        const [handshake] = await ask(socket, "handshake");
        assert.equal(handshake.query.token, "t0k3n");
        assert.deepEqual(handshake.auth, {});
        const refused = connect(allowing, "/auth", { transports: [transport] });
        const err = await outcome(refused);
        assert.deepEqual(err, { message: "missing token" });
      });

      test("a disconnect from the client runs the server's disconnect listener", async () => {
        const socket = connect(allowing, "/", { transports: [transport] });
        await next(socket, "connect");
        const id = socket.id;
        const ran = allowing.printed(new RegExp(`^disconnect listener ran: / ${id} `));
        socket.disconnect();
        assert.match(await ran, /(ClientNSDisconnect|TransportClose)$/);
      });

      test("a disconnect from the server reads `io server disconnect`", async () => {
        const socket = connect(allowing, "/", { transports: [transport] });
        await next(socket, "connect");
        const disconnected = next(socket, "disconnect");
        socket.emit("disconnect-me");
        assert.deepEqual(await disconnected, ["io server disconnect"]);
      });
    });
  }

  test("a socket.io-client 2.x upgrades from polling to WebSocket", async () => {
    const socket = connect(allowing, "/");
    const upgraded = next(socket.io.engine, "upgrade"); // may come before "connect"
    await next(socket, "connect");
    await upgraded;
    assert.equal(socket.io.engine.transport.name, "websocket");
    assert.deepEqual(await ask(socket, "multi", "up", 1, true), ["UP", 2, false]);
  });

  test("socket.io-client 4.x connects to the same server as before", async () => {
    const socket = io(allowing.url, { forceNew: true, reconnection: false, auth: { token: "x" } });
    sockets.push(socket);
    await next(socket, "connect");
    const handshake = await socket.emitWithAck("handshake");
    assert.equal(handshake.query.EIO, "4");
    assert.deepEqual(handshake.auth, { token: "x" });
  });
});
