// The SSE hub with the npm `eventsource` client (v4): ids, multi-line data, named events,
// resume after a dropped connection, resync, and the status codes that stop a client.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { EventSource } from "eventsource";

import {
  HISTORY_LEN,
  STOP_TOKEN,
  dropStreams,
  next,
  publish,
  record,
  startServer,
  stats,
  streamUrl,
} from "./support/sse-server.mjs";

let server;
const sources = [];

before(async () => {
  server = await startServer();
});

after(async () => {
  for (const source of sources) source.close();
  await server?.stop();
});

function open(topics, options) {
  const source = new EventSource(streamUrl(server.url, topics, options));
  sources.push(source);
  return source;
}

const positionOf = (id, topic) => Number(new RegExp(`[;,]${topic}:(\\d+)`).exec(id)[1]);

test("events arrive with per-topic ids, multi-line data and their names", async () => {
  const source = open(["js-basic"]);
  const seen = record(source, ["ready", "message", "story"]);
  await seen.until((e) => e.length === 1, "the ready event");

  await publish(server.url, { topic: "js-basic", data: "plain" });
  await publish(server.url, { topic: "js-basic", event: "story", data: "line one\r\nline two\rline three\n" });
  await publish(server.url, { topic: "js-basic", data: { json: [1, 2] } });
  await seen.until((e) => e.length === 4, "three events");

  const [ready, plain, story, json] = seen.events;
  assert.equal(ready.type, "ready");
  assert.deepEqual(JSON.parse(ready.data), { topics: ["js-basic"] });
  assert.equal(positionOf(ready.lastEventId, "js-basic"), 0);
  assert.deepEqual(
    [plain.type, plain.data, positionOf(plain.lastEventId, "js-basic")],
    ["message", "plain", 1],
  );
  assert.deepEqual(
    [story.type, story.data, positionOf(story.lastEventId, "js-basic")],
    ["story", "line one\nline two\nline three\n", 2],
  );
  assert.deepEqual([json.type, json.data], ["message", '{"json":[1,2]}']);
  assert.match(json.lastEventId, /^[0-9a-f]{8};js-basic:3$/);
  source.close();
});

test("a dropped connection resumes with no event lost or repeated", async () => {
  const source = open(["js-resume-a", "js-resume-b"]);
  const seen = record(source, ["ready", "message"]);
  let errors = 0;
  source.addEventListener("error", () => errors++);
  await seen.until((e) => e.length === 1, "the ready event");

  await publish(server.url, { topic: "js-resume-a", data: "a1" });
  await publish(server.url, { topic: "js-resume-b", data: "b1" });
  await seen.until((e) => seen.of("message").length === 2, "two events");
  const lastBeforeDrop = seen.events.at(-1).lastEventId;

  assert.ok((await dropStreams(server.url)) >= 1);
  // Published while the client waits to reconnect.
  for (const n of [2, 3, 4]) {
    await publish(server.url, { topic: "js-resume-a", data: `a${n}` });
    await publish(server.url, { topic: "js-resume-b", data: `b${n}` });
  }
  await seen.until((e) => seen.of("message").length === 8, "every event");
  await publish(server.url, { topic: "js-resume-a", data: "a5" });
  await seen.until((e) => seen.of("message").length === 9, "a live event after the resume");

  const messages = seen.of("message").map((e) => e.data);
  assert.deepEqual(messages, ["a1", "b1", "a2", "b2", "a3", "b3", "a4", "b4", "a5"]);
  const readies = seen.of("ready");
  assert.equal(readies.length, 2, "reconnected once");
  assert.equal(readies[1].lastEventId, lastBeforeDrop, "resumed from the last id it saw");
  assert.equal(errors, 1, "one error event: the drop");
  assert.match(seen.events.at(-1).lastEventId, /;js-resume-a:5,js-resume-b:4$/);
  source.close();
});

test("a connection dropped before any event still resumes from where it opened", async () => {
  const source = open(["js-early"]);
  const seen = record(source, ["ready", "message"]);
  await seen.until((e) => e.length === 1, "the ready event");
  await dropStreams(server.url);
  await publish(server.url, { topic: "js-early", data: "sent while away" });
  await seen.until((e) => seen.of("message").length === 1, "the event sent while away");
  assert.deepEqual(
    seen.events.map((e) => [e.type, e.data.startsWith("{") ? "{...}" : e.data]),
    [["ready", "{...}"], ["ready", "{...}"], ["message", "sent while away"]],
  );
  source.close();
});

test("a client away for longer than history receives resync, then live events", async () => {
  const first = open(["js-resync", "js-kept"]);
  const firstSeen = record(first, ["ready"]);
  await firstSeen.until((e) => e.length === 1, "the ready event");
  const position = firstSeen.events[0].lastEventId;
  first.close();

  for (let n = 1; n <= HISTORY_LEN + 5; n++) {
    await publish(server.url, { topic: "js-resync", data: `lost ${n}` });
  }
  await publish(server.url, { topic: "js-kept", data: "kept 1" });

  // A new page passes the id it saved in the query: a first connection cannot send the header.
  const second = open(["js-resync", "js-kept"], { lastEventId: position });
  const seen = record(second, ["resync", "ready", "message"]);
  await seen.until((e) => seen.of("message").length === 1, "the event still in history");
  await publish(server.url, { topic: "js-resync", data: "live" });
  await seen.until((e) => seen.of("message").length === 2, "a live event");

  assert.deepEqual(
    seen.events.map((e) => e.type),
    ["resync", "ready", "message", "message"],
  );
  assert.deepEqual(JSON.parse(seen.events[0].data), { topics: ["js-resync"], reason: "history_exceeded" });
  assert.deepEqual(
    seen.of("message").map((e) => e.data),
    ["kept 1", "live"],
  );
  assert.equal(positionOf(seen.events.at(-1).lastEventId, "js-resync"), HISTORY_LEN + 6);
  second.close();
});

test("a bad token is answered with 401 and the client gives up", async () => {
  const source = open(["js-auth"], { token: "wrong" });
  const error = await next(source, "error");
  assert.equal(error.code, 401);
  assert.equal(source.readyState, EventSource.CLOSED);
});

test("a missing token is answered with 401 too", async () => {
  const source = open(["js-auth"], { token: null });
  const error = await next(source, "error");
  assert.equal(error.code, 401);
  assert.equal(source.readyState, EventSource.CLOSED);
});

test("204 stops the client: it never reconnects", async () => {
  const before = (await stats(server.url)).stopped;
  const source = open(["js-stop"], { token: STOP_TOKEN });
  const error = await next(source, "error");
  assert.equal(error.code, 204);
  assert.equal(source.readyState, EventSource.CLOSED);
  // A control stream reconnects three times, each after a retry delay: a client that were
  // going to retry would have retried by then, so the stopped one still made one attempt.
  const control = open(["js-stop-control"]);
  const seen = record(control, ["ready"]);
  await seen.until((e) => e.length === 1, "the control's ready event");
  for (const reconnects of [2, 3, 4]) {
    assert.ok((await dropStreams(server.url)) >= 1);
    await seen.until((e) => e.length === reconnects, `the control's reconnect ${reconnects - 1}`);
  }
  control.close();
  assert.equal((await stats(server.url)).stopped - before, 1);
  assert.equal(source.readyState, EventSource.CLOSED);
});
