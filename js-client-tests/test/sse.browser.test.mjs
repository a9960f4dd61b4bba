// The SSE hub with a real browser: Chromium's own EventSource receives several topics over one
// connection and resumes after the server drops it.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { launchChromium } from "./support/browser.mjs";
import { SUBSCRIBE_TOKEN, dropStreams, publish, startServer, stats } from "./support/sse-server.mjs";

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test("Chromium's EventSource receives several topics over one connection and resumes after a drop", async () => {
  const page = await browser.newPage();
  await page.goto(`${server.url}/test/sse/page`);
  await page.evaluate((token) => {
    window.received = [];
    const source = new EventSource(`/events?topic=page-a&topic=page-b&token=${token}`);
    for (const type of ["ready", "message", "tick"]) {
      source.addEventListener(type, (event) => {
        window.received.push({ type, data: event.data, lastEventId: event.lastEventId });
      });
    }
    window.source = source;
  }, SUBSCRIBE_TOKEN);
  const count = (type) => page.evaluate((t) => window.received.filter((e) => e.type === t).length, type);
  const waitFor = (type, n) =>
    page.waitForFunction(([t, n]) => window.received.filter((e) => e.type === t).length >= n, [type, n], {
      timeout: 15_000,
    });

  await waitFor("ready", 1);
  await publish(server.url, { topic: "page-a", data: "a1" });
  await publish(server.url, { topic: "page-b", event: "tick", data: "b1\nsecond line" });
  await publish(server.url, { topic: "page-a", data: "a2" });
  await waitFor("message", 2);
  await waitFor("tick", 1);
  assert.equal((await stats(server.url)).subscribers, 1, "two topics, one connection");

  const beforeDrop = await page.evaluate(() => window.received.at(-1).lastEventId);
  assert.match(beforeDrop, /^[0-9a-f]{8};page-a:2,page-b:1$/);
  assert.ok((await dropStreams(server.url)) >= 1);
  // Published while the browser waits to reconnect (retry: 300 ms).
  await publish(server.url, { topic: "page-b", event: "tick", data: "b2" });
  await publish(server.url, { topic: "page-a", data: "a3" });
  await waitFor("ready", 2);
  await waitFor("message", 3);
  await waitFor("tick", 2);
  await publish(server.url, { topic: "page-a", data: "a4" });
  await waitFor("message", 4);

  const received = await page.evaluate(() => window.received);
  assert.deepEqual(
    received.map((e) => `${e.type}:${e.type === "ready" ? "" : e.data}`),
    [
      "ready:",
      "message:a1",
      "tick:b1\nsecond line",
      "message:a2",
      "ready:",
      "tick:b2",
      "message:a3",
      "message:a4",
    ],
  );
  assert.equal(received[4].lastEventId, beforeDrop, "the browser resumed from the last id it saw");
  assert.equal(received.at(-1).lastEventId.split(";")[1], "page-a:4,page-b:2");
  assert.equal(await count("ready"), 2, "reconnected exactly once");
  assert.equal((await stats(server.url)).subscribers, 1);
  await page.evaluate(() => window.source.close());
  await page.close();
});
