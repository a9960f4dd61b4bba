// Starts the Rust fixture server for the SSE tests and talks to its hub.

import { start } from "./server.mjs";

export const SUBSCRIBE_TOKEN = "test-subscribe-token";
export const STOP_TOKEN = "test-stop-token";
export const PUBLISH_TOKEN = "test-publish-token";
export const HISTORY_LEN = 20;
export const RETRY_MS = 300;

/** Starts the fixture; resolves once it accepts connections. */
export function startServer() {
  return start(undefined, [], { RUST_LOG: process.env.RUST_LOG ?? "tongxun=error" });
}

/** `POST /events` with the publish token; resolves to `{ status, body }`. */
export async function publish(url, message, token = PUBLISH_TOKEN) {
  const response = await fetch(`${url}/events`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(message),
  });
  const body = await response.json();
  if (response.status !== 200) throw new Error(`publish failed: ${response.status} ${JSON.stringify(body)}`);
  return body;
}

/** Ends every open stream on the server, as a dropped connection would. */
export async function dropStreams(url) {
  const response = await fetch(`${url}/test/sse/drop`, { method: "POST" });
  return Number(await response.text());
}

/** The hub's counters. */
export async function stats(url) {
  return (await fetch(`${url}/test/sse/stats`)).json();
}

/** The URL of a stream on these topics; `token: null` sends none. */
export function streamUrl(url, topics, { token = SUBSCRIBE_TOKEN, lastEventId } = {}) {
  const params = new URLSearchParams();
  for (const topic of topics) params.append("topic", topic);
  if (token !== null) params.set("token", token);
  if (lastEventId !== undefined) params.set("lastEventId", lastEventId);
  return `${url}/events?${params}`;
}

/**
 * Records the events of these types from an EventSource, in arrival order, and lets a test
 * wait for them.
 */
export function record(source, types) {
  const events = [];
  let waiters = [];
  const wake = () => {
    waiters = waiters.filter(({ check, resolve }) => {
      if (!check()) return true;
      resolve();
      return false;
    });
  };
  for (const type of types) {
    source.addEventListener(type, (event) => {
      events.push({ type, data: event.data, lastEventId: event.lastEventId });
      wake();
    });
  }
  return {
    events,
    /** The events of one type. */
    of(type) {
      return events.filter((event) => event.type === type);
    },
    /** Resolves once `check(events)` holds, rejects after `ms`. */
    until(check, what, ms = 10_000) {
      return new Promise((resolve, reject) => {
        const entry = { check: () => check(events), resolve: () => (clearTimeout(timer), resolve()) };
        const timer = setTimeout(() => {
          waiters = waiters.filter((w) => w !== entry);
          reject(new Error(`timed out waiting for ${what}; got ${JSON.stringify(events)}`));
        }, ms);
        waiters.push(entry);
        wake();
      });
    },
  };
}

/** Resolves with the next `type` event of `source` (such as `error`), rejects after `ms`. */
export function next(source, type, ms = 10_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${type} event within ${ms} ms`)), ms);
    source.addEventListener(
      type,
      (event) => {
        clearTimeout(timer);
        resolve(event);
      },
      { once: true },
    );
  });
}
