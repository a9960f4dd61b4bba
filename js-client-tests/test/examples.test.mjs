// The examples, run as a user would, with the stock clients.
import assert from "node:assert/strict";
import { test } from "node:test";
import { io } from "socket.io-client";
import { binary, next, start } from "./support/server.mjs";

test("example-echo echoes events and acknowledgements with every argument", async (t) => {
  const server = await start(binary("example-echo"), ["--port", "0"]);
  t.after(() => server.stop());
  const socket = io(server.url, { forceNew: true, reconnection: false });
  t.after(() => socket.disconnect());
  await next(socket, "connect");
  const echoed = next(socket, "hello");
  socket.emit("hello", "world", 2);
  assert.deepEqual(await echoed, ["world", 2]);
  const answer = await new Promise((resolve) => socket.emit("sum", 1, 2, (...args) => resolve(args)));
  assert.deepEqual(answer, [1, 2]);
});
