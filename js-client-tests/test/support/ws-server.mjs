// Starts the Rust fixture server for the WebSocket hub tests, and a small `ws` client wrapper.
import WebSocket from "ws";
import { start } from "./server.mjs";

/** The token the fixture hub accepts. */
export const TOKEN = "fixture-token";
/** The Origin the fixture hub allows for browsers. */
export const ALLOWED_ORIGIN = "https://app.example";

/**
 * Spawns the fixture and resolves once it prints its address: the fields of `start()` plus
 * `wsUrl`, the hub's endpoint. `stop` sends SIGTERM (graceful shutdown) and resolves with the
 * exit code.
 */
export async function startFixture(env = {}) {
  const server = await start(undefined, [], env);
  return { ...server, wsUrl: `${server.url.replace(/^http/, "ws")}/ws` };
}

/** Resolves with the arguments of the next `event` of `emitter`. */
export { next as once } from "./server.mjs";

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
