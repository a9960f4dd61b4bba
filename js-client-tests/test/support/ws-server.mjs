// Starts the Rust fixture server for the WebSocket hub tests, and a small `ws` client wrapper.
//
// The fixture binary is built by `cargo build -p tongxun-fixture` into
// `$CARGO_TARGET_DIR/debug` (default: the workspace's `target/`). It binds a free port and
// prints `listening on http://127.0.0.1:PORT`, which is what we wait for: no fixed port, no sleep.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";

const here = dirname(fileURLToPath(import.meta.url));
const workspace = resolve(here, "..", "..", "..");

/** The token the fixture hub accepts. */
export const TOKEN = "fixture-token";
/** The Origin the fixture hub allows for browsers. */
export const ALLOWED_ORIGIN = "https://app.example";

/** Path of the fixture binary (honours CARGO_TARGET_DIR). */
export function fixtureBinary() {
  const target = process.env.CARGO_TARGET_DIR ?? join(workspace, "target");
  const path = resolve(workspace, target, "debug", "tongxun-fixture");
  if (!existsSync(path)) {
    throw new Error(`${path} is missing: run \`cargo build -p tongxun-fixture\` first`);
  }
  return path;
}

/**
 * Spawns the fixture and resolves once it prints its address.
 * Returns { url, wsUrl, stop(), exited, output } where `stop` sends SIGTERM (graceful shutdown)
 * and resolves with the exit code, and `output` collects the later stdout lines.
 */
export async function startFixture(env = {}) {
  const bin = fixtureBinary();
  const child = spawn(bin, [], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const stderr = [];
  child.stderr.on("data", (chunk) => stderr.push(chunk));
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal)));
  const lines = createInterface({ input: child.stdout });
  const output = [];
  const url = await new Promise((resolve, reject) => {
    lines.on("line", (line) => {
      const match = /^listening on (http:\/\/\S+)/.exec(line);
      if (match) resolve(match[1]);
      else output.push(line);
    });
    exited.then((code) => reject(new Error(`${bin} exited (${code}) before listening:\n${Buffer.concat(stderr)}`)));
  });
  return {
    url,
    wsUrl: `${url.replace(/^http/, "ws")}/ws`,
    exited,
    output,
    stderr: () => Buffer.concat(stderr).toString(),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      return exited;
    },
  };
}

/** Resolves with the arguments of the next `event` of `emitter`. */
export function once(emitter, event) {
  return new Promise((resolve) => emitter.once(event, (...args) => resolve(args)));
}

/**
 * A `ws` client that queues what it receives: `next()` resolves with the next message as
 * `{ data, isBinary }`, `closed` with `{ code, reason }`.
 */
export class Client {
  constructor(url, protocols, options) {
    this.ws = new WebSocket(url, protocols, options);
    this.queue = [];
    this.waiting = [];
    this.ws.on("message", (data, isBinary) => {
      const message = { data: isBinary ? data : data.toString(), isBinary };
      const waiter = this.waiting.shift();
      if (waiter) waiter(message);
      else this.queue.push(message);
    });
    this.closed = new Promise((resolve) =>
      this.ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    // A socket error after the open shows up as a close with code 1006.
    this.errors = [];
    this.ws.on("error", (err) => this.errors.push(err));
    this.opened = new Promise((resolve, reject) => {
      this.ws.once("open", resolve);
      this.ws.once("error", reject);
    });
  }

  /** Connects with the fixture's token and waits for the hub's `welcome <id>`. */
  static async join(server, { protocols, options, query = `token=${TOKEN}` } = {}) {
    const client = new Client(`${server.wsUrl}?${query}`, protocols, options);
    await client.opened;
    const { data } = await client.next();
    const match = /^welcome (\d+)$/.exec(data);
    if (!match) throw new Error(`expected a welcome, got ${data}`);
    client.id = match[1];
    return client;
  }

  next() {
    if (this.queue.length > 0) return Promise.resolve(this.queue.shift());
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  async nextText() {
    const { data, isBinary } = await this.next();
    if (isBinary) throw new Error("expected a text message, got a binary one");
    return data;
  }

  send(data, options) {
    return new Promise((resolve, reject) => this.ws.send(data, options ?? {}, (err) => (err ? reject(err) : resolve())));
  }

  close() {
    this.ws.close(1000);
    return this.closed;
  }
}

/**
 * Attempts an upgrade that the hub must refuse; resolves with `{ status, body }`.
 */
export function refusedUpgrade(url, options) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options);
    ws.once("open", () => {
      ws.terminate();
      reject(new Error("the upgrade was accepted"));
    });
    ws.once("error", reject);
    ws.once("unexpected-response", (request, response) => {
      const chunks = [];
      response.on("data", (chunk) => chunks.push(chunk));
      response.on("end", () => {
        request.destroy();
        resolve({ status: response.statusCode, headers: response.headers, body: Buffer.concat(chunks).toString() });
      });
    });
  });
}
