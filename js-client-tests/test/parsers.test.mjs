// The MessagePack parser: socket.io-client 4.8 with `socket.io-msgpack-parser`, against the
// fixture started with TONGXUN_PARSER=msgpack (Node: `new Server({ parser })`).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { io } from "socket.io-client";
import msgpackParser from "socket.io-msgpack-parser";
import { ask, assertBinaryRoundTrip } from "./support/binary.mjs";
import { next, outcome, start } from "./support/server.mjs";

let msgpack; // the fixture with the MessagePack parser
let common; // the fixture as every other suite starts it
const sockets = [];
function connect(server, path = "/", options = {}) {
  const socket = io(server.url + path, {
    forceNew: true,
    reconnection: false,
    parser: msgpackParser,
    ...options,
  });
  sockets.push(socket);
  return socket;
}

before(async () => {
  [msgpack, common] = await Promise.all([start(undefined, [], { TONGXUN_PARSER: "msgpack" }), start()]);
});
after(async () => {
  for (const socket of sockets) socket.disconnect();
  await Promise.all([msgpack.stop(), common.stop()]);
});

for (const transport of ["polling", "websocket"]) {
  describe(`a socket.io-msgpack-parser client over ${transport}`, () => {
    test("connects, and its ack gets the typed answer", async () => {
      const socket = connect(msgpack, "/", { transports: [transport] });
      assert.equal(await outcome(socket), "connect");
      assert.deepEqual(await ask(socket, "multi", "abc", 21, false), ["ABC", 42, true]);
      assert.equal(await socket.emitWithAck("point", { x: 1, y: 2 }), 3);
    });

    test("the echo ack receives exactly the arguments sent, nested Buffers included", async () => {
      const socket = connect(msgpack, "/", { transports: [transport] });
      await next(socket, "connect");
      const bytes = Buffer.from([0, 1, 2, 253, 254, 255]);
      const answer = await ask(socket, "echo", 1, "two", { three: [3], file: bytes }, null, bytes);
      assert.equal(answer.length, 5);
      assert.deepEqual(answer.slice(0, 2), [1, "two"]);
      assert.deepEqual(answer[2].three, [3]);
      assert.ok(Buffer.from(answer[2].file).equals(bytes), "nested Buffer comes back as bytes");
      assert.equal(answer[3], null);
      assert.ok(Buffer.from(answer[4]).equals(bytes), "Buffer argument comes back as bytes");
    });

    test("a binary Buffer round-trips byte for byte, as an event and through the ack", async () => {
      const socket = connect(msgpack, "/", { transports: [transport] });
      await next(socket, "connect");
      await assertBinaryRoundTrip(socket);
    });

    test("a server broadcast reaches every client of the namespace", async () => {
      const [a, b] = [connect(msgpack, "/rooms", { transports: [transport] }), connect(msgpack, "/rooms", { transports: [transport] })];
      await Promise.all([next(a, "connect"), next(b, "connect")]);
      const hits = [next(a, "hit"), next(b, "hit")];
      assert.equal(await a.emitWithAck("cast", { mode: "all" }), "done");
      for (const [mode, from] of await Promise.all(hits)) {
        assert.equal(mode, "all");
        assert.equal(from, a.id);
      }
    });

    test("the auth payload reaches the server's auth step", async () => {
      const socket = connect(msgpack, "/auth", { transports: [transport], auth: { token: "secret" } });
      assert.equal(await outcome(socket), "connect");
      assert.equal(await socket.emitWithAck("user"), "ada");
      const refused = connect(msgpack, "/auth", { transports: [transport], auth: { token: "wrong" } });
      const err = await outcome(refused);
      assert.equal(err.message, "invalid token");
    });

    test("a payload that does not decode answers the ack with an error", async () => {
      const socket = connect(msgpack, "/", { transports: [transport] });
      await next(socket, "connect");
      const answer = await socket.emitWithAck("point", { x: "one" });
      assert.match(answer.error, /invalid payload for event "point"/);
    });
  });
}

describe("mismatched parsers", () => {
  test("a socket.io-msgpack-parser client cannot join a server with the default parser", async () => {
    const socket = connect(common, "/", { transports: ["websocket"] });
    const closed = new Promise((resolve) => socket.io.engine.once("close", (reason) => resolve(reason)));
    assert.equal(await closed, "transport close");
    assert.equal(socket.connected, false);
  });

  test("a default client cannot join a server with the MessagePack parser", async () => {
    const socket = connect(msgpack, "/", { transports: ["websocket"], parser: undefined });
    const closed = new Promise((resolve) => socket.io.engine.once("close", (reason) => resolve(reason)));
    assert.equal(await closed, "transport close");
    assert.equal(socket.connected, false);
  });
});
