// Events and acknowledgements with the stock socket.io-client.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { io } from "socket.io-client";
import { assertBinaryRoundTrip } from "./support/binary.mjs";
import { next, start } from "./support/server.mjs";

let server;
const sockets = [];
async function connect(path = "/", options = {}) {
  const socket = io(server.url + path, { forceNew: true, reconnection: false, ...options });
  sockets.push(socket);
  await next(socket, "connect");
  return socket;
}

before(async () => {
  server = await start();
});
after(async () => {
  for (const socket of sockets) socket.disconnect();
  await server.stop();
});

for (const transport of ["websocket", "polling"]) {
  describe(`payloads over ${transport}`, () => {
    test("several arguments round-trip through an ack, typed on the server", async () => {
      const socket = await connect("/", { transports: [transport] });
      const answer = await new Promise((resolve) =>
        socket.emit("multi", "abc", 21, false, (...args) => resolve(args)),
      );
      assert.deepEqual(answer, ["ABC", 42, true]);
    });

    test("the echo ack receives exactly the arguments sent", async () => {
      const socket = await connect("/", { transports: [transport] });
      const args = await new Promise((resolve) =>
        socket.emit("echo", 1, "two", { three: [3] }, null, (...answer) => resolve(answer)),
      );
      assert.deepEqual(args, [1, "two", { three: [3] }, null]);
    });

    test("binary round-trips byte for byte, as an event and through the ack", async () => {
      const socket = await connect("/", { transports: [transport] });
      await assertBinaryRoundTrip(socket);
    });
  });
}

describe("acknowledgements", () => {
  test("emitWithAck from the client gets the handler's answer", async () => {
    const socket = await connect();
    assert.equal(await socket.emitWithAck("point", { x: 2, y: 40 }), 42);
  });

  test("the server's emit_with_ack is answered by a client callback", async () => {
    const socket = await connect();
    socket.on("question", (question, callback) => callback(`answer to ${question}`, 7));
    const result = await socket.emitWithAck("ask-me", "life");
    assert.deepEqual(result, { answer: "answer to life", number: 7 });
  });

  test("the server's emit_with_ack times out when the client never answers", async () => {
    const socket = await connect();
    const asked = next(socket, "question");
    socket.on("question", () => {}); // never calls back
    const result = await socket.emitWithAck("ask-me", "silence");
    await asked;
    assert.deepEqual(result, { error: "acknowledgement timed out" });
  });

  test("an answer of the wrong type is a decode error on the server", async () => {
    const socket = await connect();
    socket.on("question", (_question, callback) => callback({ not: "a string" }));
    const result = await socket.emitWithAck("ask-me", "types");
    assert.match(result.error, /^failed to decode the acknowledgement/);
  });

  test("an ack the handler never answers times out on the client, as against Node", async () => {
    const socket = await connect();
    await assert.rejects(socket.timeout(300).emitWithAck("no-ack", 1), {
      message: "operation has timed out",
    });
  });

  test("an event with no listener times out on the client, as against Node", async () => {
    const socket = await connect("/chat"); // no catch-all there
    await assert.rejects(socket.timeout(300).emitWithAck("nobody-listens", 1), {
      message: "operation has timed out",
    });
  });

  test("retries resend an unhandled event, then the callback gets the timeout error", async () => {
    const socket = await connect("/", { retries: 2, ackTimeout: 200 });
    // Handled events are acknowledged at the first try, with retries on.
    assert.equal(await socket.emitWithAck("point", { x: 1, y: 1 }), 2);
    const outcome = await new Promise((resolve) =>
      socket.emit("count-tries", "k1", (err, answer) => resolve({ err, answer })),
    );
    assert.equal(outcome.err?.message, "operation has timed out");
    // The listener never answers: the client sent the event three times (one try, two retries).
    assert.equal(await socket.emitWithAck("tries-of", "k1"), 3);
  });
});

describe("per-packet middleware (Node's socket.use)", () => {
  test("a refused event reaches no listener and its ack gets the refusal", async () => {
    const socket = await connect();
    assert.deepEqual(await socket.emitWithAck("admin:reset"), {
      error: '"admin:reset" is not allowed',
    });
    // Other events pass through it.
    assert.equal(await socket.emitWithAck("point", { x: 20, y: 22 }), 42);
  });
});

describe("acknowledgements answered by tongxun (Config::answer_unhandled_acks)", () => {
  let answering;
  before(async () => {
    answering = await start(undefined, [], { TONGXUN_ANSWER_UNHANDLED_ACKS: "1" });
  });
  after(async () => {
    await answering.stop();
  });
  async function connectTo(path) {
    const socket = io(answering.url + path, { forceNew: true, reconnection: false });
    sockets.push(socket);
    await next(socket, "connect");
    return socket;
  }

  test("an ack the handler never answers is answered with an error", async () => {
    const socket = await connectTo("/");
    assert.deepEqual(await socket.timeout(2000).emitWithAck("no-ack", 1), {
      error: "event handled without an acknowledgement",
    });
  });

  test("an event with no listener answers its ack with an error", async () => {
    const socket = await connectTo("/chat");
    assert.deepEqual(await socket.timeout(2000).emitWithAck("nobody-listens", 1), {
      error: 'no handler for event "nobody-listens"',
    });
  });
});

describe("arguments", () => {
  test("() is sent as no argument at all, for events and acks", async () => {
    const socket = await connect();
    const pinged = next(socket, "pinged");
    const answer = await new Promise((resolve) => socket.emit("ping-me", (...args) => resolve(args)));
    assert.deepEqual(answer, []);
    assert.deepEqual(await pinged, []);
  });
});

describe("listeners", () => {
  test("once fires on the first event only", async () => {
    const socket = await connect();
    const seen = [];
    socket.on("first-seen", (n) => seen.push(n));
    socket.emit("first", 1);
    socket.emit("first", 2);
    socket.emit("first", 3);
    // Events of one socket are handled in order: once this ack is back, all three were handled.
    await socket.emitWithAck("echo", "barrier");
    assert.deepEqual(seen, [1]);
  });

  test("off stops delivery", async () => {
    const socket = await connect();
    const seen = [];
    socket.on("target-seen", (n) => seen.push(n));
    socket.emit("target", 1);
    assert.equal(await socket.emitWithAck("off-target"), 1, "one listener removed");
    socket.emit("target", 2);
    await socket.emitWithAck("echo", "barrier");
    assert.deepEqual(seen, [1]);
  });

  test("the catch-all sees every event, handled or not, in order", async () => {
    const socket = await connect();
    socket.emit("echo", "x");
    socket.emit("unknown-event", 1);
    socket.emit("point", { x: 1, y: 1 });
    const seen = await socket.emitWithAck("any-result");
    assert.deepEqual(seen, ["echo", "unknown-event", "point", "any-result"]);
  });

  test("send / the message event round-trips", async () => {
    const socket = await connect();
    const reply = next(socket, "message");
    socket.send("hi");
    assert.deepEqual(await reply, ["got hi"]);
  });
});

describe("ordering", () => {
  test("1,000 events sent in a burst reach the handler in order while it awaits", async () => {
    const socket = await connect("/", { transports: ["websocket"] });
    for (let i = 0; i < 1000; i++) socket.emit("seq", i);
    const seen = await socket.timeout(20_000).emitWithAck("seq-result");
    assert.equal(seen.length, 1000);
    assert.deepEqual(seen, Array.from({ length: 1000 }, (_, i) => i));
  });

  test("over long-polling too", async () => {
    const socket = await connect("/", { transports: ["polling"] });
    for (let i = 0; i < 300; i++) socket.emit("seq", i);
    const seen = await socket.timeout(20_000).emitWithAck("seq-result");
    assert.deepEqual(seen, Array.from({ length: 300 }, (_, i) => i));
  });

  test("with Dispatch::OrderedStart, as in Node, a handler awaiting the client holds back no later event", async () => {
    const socket = await connect("/ordered-start", { transports: ["websocket"] });
    const asked = new Promise((resolve) => socket.once("release?", (callback) => resolve(callback)));
    const held = socket.emitWithAck("hold");
    const release = await asked;
    // "hold" is still waiting for this client; the next events are handled meanwhile.
    assert.equal(await socket.emitWithAck("point", { x: 2, y: 3 }), 5);
    assert.equal(await socket.emitWithAck("echo", "after"), "after");
    release("released");
    assert.equal(await held, "released");
  });

  test("a parallel namespace handles events concurrently and still handles them all", async () => {
    const socket = await connect("/parallel", { transports: ["websocket"] });
    const answers = await Promise.all(
      Array.from({ length: 200 }, (_, i) => socket.emitWithAck("point", { x: i, y: 1 })),
    );
    assert.deepEqual(answers, Array.from({ length: 200 }, (_, i) => i + 1));
  });
});

describe("bad input", () => {
  test("a payload of the wrong type gets an error ack and the connection stays usable", async () => {
    const socket = await connect();
    const answer = await socket.emitWithAck("point", "not a point");
    assert.match(answer.error, /^invalid payload for event "point": /);
    const missing = await socket.emitWithAck("point", { x: 1 });
    assert.match(missing.error, /missing field `y`/);
    assert.equal(await socket.emitWithAck("point", { x: 1, y: 2 }), 3);
  });

  test("TryData hands the decode error to the handler", async () => {
    const socket = await connect();
    const answer = await socket.emitWithAck("maybe-point", [1, 2, 3]);
    assert.match(answer.invalid, /^invalid payload for event "maybe-point"/);
  });

  test("a panicking handler answers its ack with an error; the server and other sockets keep working", async () => {
    const socket = await connect();
    const other = await connect();
    assert.deepEqual(await socket.emitWithAck("panic", "boom"), { error: "internal server error" });
    assert.equal(socket.connected, true);
    assert.equal(await socket.emitWithAck("echo", "after panic"), "after panic");
    assert.equal(await other.emitWithAck("echo", "other"), "other");
  });

  test("a handler returning an error answers the ack with that error", async () => {
    const socket = await connect();
    assert.deepEqual(await socket.emitWithAck("fail", "no can do"), { error: "no can do" });
  });

  test("events without an ack that fail are not fatal either", async () => {
    const socket = await connect();
    socket.emit("point", "garbage");
    socket.emit("panic", "quietly");
    assert.equal(await socket.emitWithAck("echo", "fine"), "fine");
  });
});
