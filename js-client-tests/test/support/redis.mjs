// A throwaway redis-server on a free loopback port, with persistence off.
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { createInterface } from "node:readline";

/** A free TCP port on 127.0.0.1 (the OS picks it; redis-server cannot bind port 0 itself). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/**
 * Starts redis-server on `port` (a free one by default); resolves once it accepts connections.
 * Returns { port, url, stop() }.
 */
export async function startRedis(port) {
  port ??= await freePort();
  const child = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--loglevel", "notice"],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.once("error", () => {}); // reported below as "exited before ready"
  const lines = createInterface({ input: child.stdout });
  await new Promise((resolve, reject) => {
    lines.on("line", (line) => {
      if (line.includes("Ready to accept connections")) resolve();
    });
    exited.then((code) => reject(new Error(`redis-server exited (${code}) before it was ready: is it installed?`)));
  });
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    },
  };
}
