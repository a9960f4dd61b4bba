// Starts the Rust fixture server on a free port and waits for the line it prints when it listens.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const workspace = resolve(here, "..", "..", "..");

/** Path of a binary of the workspace, built by `cargo build` (honours CARGO_TARGET_DIR). */
export function binary(name) {
  const target = process.env.CARGO_TARGET_DIR ?? join(workspace, "target");
  const path = join(target, "debug", name);
  if (!existsSync(path)) {
    throw new Error(`${path} is missing: run \`cargo build --workspace\` first`);
  }
  return path;
}

/**
 * A `printed(pattern)` for a child's output: resolves with the first line in `output` (the lines
 * so far) or later on `lines` (a readline interface) that matches `pattern`.
 */
export function printedIn(output, lines) {
  return (pattern) => {
    const found = output.find((line) => pattern.test(line));
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve) => {
      const check = (line) => {
        if (!pattern.test(line)) return;
        lines.off("line", check);
        resolve(line);
      };
      lines.on("line", check);
    });
  };
}

/**
 * Spawns `bin` with `args`, resolves once it printed `listening on <url> [also on <url> ...]`.
 * Returns { url, also, child, stop(), exited } where `also` lists the further URLs and `exited`
 * resolves with the exit code.
 */
export async function start(bin = binary("tongxun-fixture"), args = [], env = {}) {
  const child = spawn(bin, args, {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const stderr = [];
  child.stderr.on("data", (chunk) => stderr.push(chunk));
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal)));
  const lines = createInterface({ input: child.stdout });
  const [url, ...also] = await new Promise((resolve, reject) => {
    lines.on("line", (line) => {
      const match = /^listening on (http:\/\/\S+)(?: also on (.+))?/.exec(line);
      if (match) resolve([match[1], ...(match[2]?.split(" ") ?? [])]);
    });
    exited.then((code) =>
      reject(new Error(`${bin} exited (${code}) before listening:\n${Buffer.concat(stderr)}`)),
    );
  });
  const output = [];
  lines.on("line", (line) => output.push(line));
  return {
    url,
    also,
    child,
    exited,
    output,
    stderr: () => Buffer.concat(stderr).toString(),
    /** Resolves with the first line the server printed (or prints) that matches `pattern`. */
    printed: printedIn(output, lines),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      return exited;
    },
  };
}

/**
 * Starts example `name` (package `example-<name>`) on a free port with `args`, or on the one
 * `args` names with `--port` (to restart a server where its clients reconnect). An example that
 * serves the socket.io-client bundle from its own npm install uses the test suite's copy (the
 * same pinned version) when its own is not installed.
 */
export function startExample(name, args = []) {
  const example = join(workspace, "examples", name);
  const own = join(example, "node_modules", "socket.io-client", "dist");
  const fallback = join(workspace, "js-client-tests", "node_modules", "socket.io-client", "dist");
  const bundle = existsSync(join(example, "package.json")) && !existsSync(own) ? ["--bundle", fallback] : [];
  const port = args.includes("--port") ? [] : ["--port", "0"];
  return start(binary(`example-${name}`), [...port, ...args, ...bundle]);
}

/** Resolves with the arguments of the next `event` emitted by `emitter` (`on`/`once` API). */
export function next(emitter, event) {
  return new Promise((resolve) => emitter.once(event, (...args) => resolve(args)));
}

/**
 * Resolves with "connect", or with the error of "connect_error" (or, for socket.io-client 2.x,
 * "error"), whichever comes first.
 */
export function outcome(socket) {
  return new Promise((resolve) => {
    socket.once("connect", () => resolve("connect"));
    socket.once("connect_error", (err) => resolve(err));
    socket.once("error", (err) => resolve(err));
  });
}
