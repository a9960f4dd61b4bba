// HAProxy (Debian's `haproxy`) on a free loopback port in front of three nodes, with the config of
// js-client-tests/haproxy/haproxy.cfg as it is: the addresses go in through the environment.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { freePort } from "./redis.mjs";
import { printedIn } from "./server.mjs";

const here = dirname(fileURLToPath(import.meta.url));
export const CONFIG = join(here, "..", "..", "haproxy", "haproxy.cfg");

/** Debian installs haproxy in /usr/sbin, which is not on every user's PATH. */
const BINARY = existsSync("/usr/sbin/haproxy") ? "/usr/sbin/haproxy" : "haproxy";

/**
 * Starts HAProxy in master-worker mode in the foreground (`-W -db`) in front of `nodes` (three
 * `http://host:port` URLs, HAProxy's servers node1 to node3), and resolves once the master
 * printed `Loading success.`, which it does after binding and once its worker runs.
 * Returns { url, stop(), stderr(), printed(pattern) }.
 */
export async function startHaproxy(nodes) {
  if (nodes.length !== 3) throw new Error(`the config names three nodes, not ${nodes.length}`);
  const port = await freePort();
  const env = { ...process.env, TONGXUN_LB_ADDR: `127.0.0.1:${port}` };
  nodes.forEach((url, i) => (env[`TONGXUN_NODE${i + 1}`] = new URL(url).host));
  const child = spawn(BINARY, ["-W", "-db", "-f", CONFIG], { env, stdio: ["ignore", "pipe", "pipe"] });
  const output = [];
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal)));
  const failed = new Promise((resolve) => child.once("error", resolve));
  const lines = createInterface({ input: child.stderr });
  lines.on("line", (line) => output.push(line));
  child.stdout.resume();
  await new Promise((resolve, reject) => {
    lines.on("line", (line) => {
      if (line.includes("Loading success.")) resolve();
    });
    failed.then((err) =>
      reject(
        new Error(
          `cannot run ${BINARY} (${err.code}): install Debian's haproxy (scripts/install-deps.sh does)`,
        ),
      ),
    );
    exited.then((code) => reject(new Error(`haproxy exited (${code}) before it was ready:\n${output.join("\n")}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    stderr: () => output.join("\n"),
    /** Resolves with the first line HAProxy printed (or prints) that matches `pattern`. */
    printed: printedIn(output, lines),
    async stop() {
      // SIGTERM: the master stops its worker at once and exits.
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}
