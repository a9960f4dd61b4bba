// The examples, run as a user would, with the stock clients.
import assert from "node:assert/strict";
import { test } from "node:test";
import { io } from "socket.io-client";
import { next, startExample } from "./support/server.mjs";

test("example-echo echoes events and acknowledgements with every argument", async (t) => {
  const server = await startExample("echo");
  t.after(() => server.stop());
  const socket = io(server.url, { forceNew: true, reconnection: false });
  t.after(() => socket.disconnect());
  await next(socket, "connect");
  const echoed = next(socket, "hello");
  socket.emit("hello", "world", 2);
  assert.deepEqual(await echoed, ["world", 2]);
  const answer = await new Promise((resolve) => socket.emit("sum", 1, 2, (...args) => resolve(args)));
  assert.deepEqual(answer, [1, 2]);
  // A Buffer comes back as a Buffer, in an event and through an ack, as from a Node echo.
  const bytes = Buffer.from([0, 1, 2, 254, 255]);
  const binary = next(socket, "file");
  socket.emit("file", "a.bin", bytes, { nested: [bytes] });
  const [name, got, nested] = await binary;
  assert.equal(name, "a.bin");
  assert.ok(Buffer.isBuffer(got) && got.equals(bytes), `got ${JSON.stringify(got)}`);
  assert.ok(Buffer.isBuffer(nested.nested[0]) && nested.nested[0].equals(bytes));
  const acked = await new Promise((resolve) => socket.emit("file", bytes, (...args) => resolve(args)));
  assert.ok(Buffer.isBuffer(acked[0]) && acked[0].equals(bytes));
});

test("example-axum-integration broadcasts an HTTP POST to a room of /chat", async (t) => {
  const server = await startExample("axum-integration");
  t.after(() => server.stop());
  const inRoom = io(server.url + "/chat", { forceNew: true, reconnection: false });
  const outside = io(server.url + "/chat", { forceNew: true, reconnection: false });
  t.after(() => { inRoom.disconnect(); outside.disconnect(); });
  await Promise.all([next(inRoom, "connect"), next(outside, "connect")]);
  assert.deepEqual((await inRoom.emitWithAck("join", "general")).sort(), ["general", inRoom.id].sort());
  const heard = [];
  outside.on("announcement", (text) => heard.push(text));
  const received = next(inRoom, "announcement");

  const response = await fetch(server.url + "/announce", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ room: "general", text: "maintenance at noon" }),
  });
  assert.equal(response.status, 200);
  assert.deepEqual(await response.json(), { recipients: 1 });
  assert.deepEqual(await received, ["maintenance at noon"]);

  const empty = await fetch(server.url + "/announce", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ text: "  " }),
  });
  assert.equal(empty.status, 422);
  // A barrier on the outsider: anything broadcast to it would have arrived before this answer.
  await outside.emitWithAck("join", "elsewhere");
  assert.deepEqual(heard, []);
});

// Per example: its namespace, and an event there that is acknowledged without a sign-in.
for (const [name, namespace, ping] of [
  ["chat", "/chat", ["typing", { room: "general" }]],
  ["live-dashboard", "/live", ["subscribe", "metrics"]],
]) {
  test(`example-${name} serves its Prometheus metrics at /metrics and counts a client there`, async (t) => {
    const server = await startExample(name);
    t.after(() => server.stop());
    const opened = async () => {
      const response = await fetch(server.url + "/metrics");
      assert.equal(response.status, 200);
      assert.match(response.headers.get("content-type"), /^application\/openmetrics-text/);
      const text = await response.text();
      assert.ok(text.endsWith("# EOF\n"));
      const line = text
        .split("\n")
        .find((l) => l.startsWith(`tongxun_socketio_connections_opened_total{namespace="${namespace}",transport="websocket"}`));
      assert.ok(line, text);
      return Number(line.split(" ").at(-1));
    };
    const before = await opened();
    const socket = io(server.url + namespace, { forceNew: true, reconnection: false, transports: ["websocket"] });
    t.after(() => socket.disconnect());
    await next(socket, "connect");
    // The server counts the socket right after sending its CONNECT, so a scrape may come first;
    // an acknowledged event is handled after the socket's connect handler, so once it is
    // answered the socket was counted.
    await socket.emitWithAck(...ping);
    assert.equal(await opened(), before + 1);
  });
}
