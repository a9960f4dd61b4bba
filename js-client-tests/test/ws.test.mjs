// The WebSocket hub with the stock `ws` client: broadcasts, message kinds, admission, limits,
// liveness and shutdown. The hub under test is built in `server/src/ws.rs`.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ALLOWED_ORIGIN, Client, TOKEN, refusedUpgrade, startFixture } from "./support/ws-server.mjs";

describe("WebSocket hub", () => {
  let server;
  const clients = [];
  const join = async (options) => {
    const client = await Client.join(server, options);
    clients.push(client);
    return client;
  };

  before(async () => {
    server = await startFixture();
  });
  after(async () => {
    for (const client of clients) client.ws.terminate();
    await server.stop();
  });

  test("a message to all reaches every client, the sender included", async () => {
    const [a, b, c] = [await join(), await join(), await join()];
    await a.send("all: hello everyone");
    for (const client of [a, b, c]) {
      assert.deepEqual(await client.next(), { data: "all: hello everyone", isBinary: false });
    }
  });

  test("a message to others reaches every client but the sender", async () => {
    const [a, b, c] = [await join(), await join(), await join()];
    await a.send("others: not for a");
    // The hub handles a's messages in order: had a received its own broadcast, it would come
    // before the echo of this later message.
    await a.send("echo check");
    assert.equal(await a.nextText(), "echo check");
    assert.equal(await b.nextText(), "others: not for a");
    assert.equal(await c.nextText(), "others: not for a");
  });

  test("binary stays binary and text stays text, byte for byte", async () => {
    const client = await join();
    const bytes = Buffer.from([0, 1, 2, 253, 254, 255]);
    await client.send(bytes);
    const binary = await client.next();
    assert.equal(binary.isBinary, true);
    assert.deepEqual(Buffer.from(binary.data), bytes);

    // Bytes that happen to be valid UTF-8 are still binary; text with any code point is text.
    await client.send(Buffer.from("looks like text"));
    const stillBinary = await client.next();
    assert.equal(stillBinary.isBinary, true);
    assert.equal(Buffer.from(stillBinary.data).toString(), "looks like text");
    await client.send("héllo 🌍");
    assert.deepEqual(await client.next(), { data: "héllo 🌍", isBinary: false });
  });

  test("a client without a valid token is refused with 401 before any upgrade", async () => {
    const missing = await refusedUpgrade(server.wsUrl);
    assert.equal(missing.status, 401);
    assert.equal(missing.body, "missing credentials");
    assert.equal(missing.headers["www-authenticate"], "Bearer");
    const wrong = await refusedUpgrade(`${server.wsUrl}?token=wrong`);
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body, "invalid credentials");
    const wrongHeader = await refusedUpgrade(server.wsUrl, { headers: { authorization: "Bearer wrong" } });
    assert.equal(wrongHeader.status, 401);

    // The Authorization header works as well as the query.
    const viaHeader = new Client(server.wsUrl, [], { headers: { authorization: `Bearer ${TOKEN}` } });
    clients.push(viaHeader);
    await viaHeader.opened;
    assert.match(await viaHeader.nextText(), /^welcome \d+$/);
  });

  test("a browser from an origin outside the allowlist is refused with 403", async () => {
    const refused = await refusedUpgrade(`${server.wsUrl}?token=${TOKEN}`, { origin: "http://evil.example" });
    assert.equal(refused.status, 403);
    assert.equal(refused.body, "origin not allowed");
    const allowed = await join({ options: { origin: ALLOWED_ORIGIN } });
    await allowed.send("from an allowed origin");
    assert.equal(await allowed.nextText(), "from an allowed origin");
  });

  test("the hub picks the first subprotocol it prefers among those offered", async () => {
    const client = await join({ protocols: ["chat.v1", "chat.v2"] });
    assert.equal(client.ws.protocol, "chat.v2");
    const plain = await join();
    assert.equal(plain.ws.protocol, "");
    // When nothing matches, the hub selects nothing and the client decides: `ws` gives up.
    const unmatched = new Client(`${server.wsUrl}?token=${TOKEN}`, ["other"]);
    clients.push(unmatched);
    await assert.rejects(unmatched.opened, /Server sent no subprotocol/);
  });

  test("a message over the size limit closes the connection with 1009, others carry on", async () => {
    const [big, other] = [await join(), await join()];
    await big.send(Buffer.alloc(64 * 1024, 7));
    assert.equal((await big.next()).data.length, 64 * 1024, "the limit itself passes");
    big.ws.send(Buffer.alloc(64 * 1024 + 1, 7));
    const { code, reason } = await big.closed;
    assert.equal(code, 1009);
    assert.equal(reason, "message too big");
    await other.send("still here");
    assert.equal(await other.nextText(), "still here");
  });

  test("a client that never answers pings is dropped, one that does stays", async () => {
    const [silent, alive] = [await join({ options: { autoPong: false } }), await join()];
    let pings = 0;
    silent.ws.on("ping", () => pings++);
    const started = Date.now();
    const { code } = await silent.closed;
    // Torn down without a close frame: the ws client reports 1006 (abnormal closure).
    assert.equal(code, 1006);
    assert.ok(pings >= 1, "the hub pinged the silent client");
    assert.ok(Date.now() - started >= 1000, "dropped only after the pong deadline");
    await alive.send("alive");
    assert.equal(await alive.nextText(), "alive");
  });

  test("a client close is answered with the same code", async () => {
    const client = await join();
    client.ws.close(4000, "done here");
    const { code, reason } = await client.closed;
    assert.equal(code, 4000);
    assert.equal(reason, "done here");
  });
});

describe("WebSocket hub shutdown", () => {
  test("on SIGTERM every client gets 1001 and the server exits cleanly", async () => {
    const server = await startFixture();
    const a = await Client.join(server);
    const b = await Client.join(server);
    const exit = server.stop();
    for (const client of [a, b]) {
      const { code, reason } = await client.closed;
      assert.equal(code, 1001);
      assert.equal(reason, "server shutting down");
    }
    assert.equal(await exit, 0);
    assert.ok(server.output.includes("stopped"), `stdout: ${server.output.join("\n")}`);
  });
});
