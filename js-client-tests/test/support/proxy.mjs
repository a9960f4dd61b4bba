// A stand-in for a load balancer in front of fixture nodes, on a free loopback port.
import { createConnection, createServer } from "node:net";

/**
 * Forwards each new connection to the first of `targets` (anything with a `url`, such as a
 * fixture node) that accepts it: when a node dies, the clients that reconnect to the same URL
 * land on the next one, as behind a load balancer with health checks.
 *
 * Returns `{ url, wsUrl, pointTo(...targets), cut(), down(), up(), close() }`:
 * - `pointTo` changes the targets for the connections to come;
 * - `cut` ends every open connection, as a dying node or a failover would;
 * - `down` cuts and then ends every new connection at once (an outage the clients retry
 *   through), until `up`.
 */
export async function balancer(...targets) {
  const state = { targets, down: false };
  const open = new Set();
  const server = createServer((client) => {
    open.add(client);
    let upstream;
    const drop = () => {
      client.destroy();
      upstream?.destroy();
      open.delete(client);
      if (upstream) open.delete(upstream);
    };
    client.on("error", drop).on("close", drop);
    if (state.down) return drop();
    // The client's first bytes wait in its socket (no reader yet) until an upstream accepts.
    const attempt = (i) => {
      if (i >= state.targets.length || client.destroyed) return drop();
      const socket = createConnection({ host: "127.0.0.1", port: Number(new URL(state.targets[i].url).port) });
      const refused = () => attempt(i + 1);
      socket.once("error", refused);
      socket.once("connect", () => {
        socket.off("error", refused);
        if (client.destroyed) return socket.destroy();
        upstream = socket;
        open.add(socket);
        socket.on("error", drop).on("close", drop);
        client.pipe(socket).pipe(client);
      });
    };
    attempt(0);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${server.address().port}`;
  const cut = () => {
    for (const socket of open) socket.destroy();
    open.clear();
  };
  return {
    url,
    wsUrl: `${url.replace(/^http/, "ws")}/ws`,
    pointTo(...next) {
      state.targets = next;
    },
    cut,
    down() {
      state.down = true;
      cut();
    },
    up() {
      state.down = false;
    },
    close() {
      cut();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}
