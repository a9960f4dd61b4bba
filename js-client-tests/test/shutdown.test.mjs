// Graceful shutdown as a connected client sees it.
import assert from "node:assert/strict";
import { test } from "node:test";
import { io } from "socket.io-client";
import { next, start } from "./support/server.mjs";

test("graceful shutdown disconnects every client and the process exits promptly", async () => {
  const server = await start();
  const ws = io(server.url, { forceNew: true, reconnection: false, transports: ["websocket"] });
  const polling = io(server.url + "/chat", { forceNew: true, reconnection: false, transports: ["polling"] });
  await Promise.all([next(ws, "connect"), next(polling, "connect")]);
  const ids = [["/", ws.id], ["/chat", polling.id]];

  const disconnects = Promise.all([next(ws, "disconnect"), next(polling, "disconnect")]);
  const began = Date.now();
  server.child.kill("SIGTERM");
  const [[wsReason], [pollingReason]] = await disconnects;
  // The server closes the sessions: a WebSocket client sees a clean close (and, with reconnection
  // on, would reconnect to the next server). A long-polling client whose next poll was not yet in
  // flight sees it fail instead (see docs/compatibility.md); either way it is disconnected.
  assert.equal(wsReason, "transport close");
  assert.ok(["transport close", "transport error"].includes(pollingReason), pollingReason);
  assert.equal(await server.exited, 0);
  assert.ok(server.output.includes("stopped"), "main returned after serve");
  // Every socket's disconnect listener ran, with the server's reason, before serve returned
  // (as Node's io.close() fires "disconnect" with "server shutting down").
  const stopped = server.output.indexOf("stopped");
  for (const [ns, id] of ids) {
    const line = `disconnect listener ran: ${ns} ${id} ClosingServer`;
    const at = server.output.indexOf(line);
    assert.ok(at >= 0 && at < stopped, `${line} in ${JSON.stringify(server.output)}`);
  }
  // Promptly: well before the 10 s shutdown timeout would force it.
  assert.ok(Date.now() - began < 5000, `took ${Date.now() - began} ms`);
});
