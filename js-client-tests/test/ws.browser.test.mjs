// The WebSocket hub with a browser's own `WebSocket`, in headless Chromium: text and
// `ArrayBuffer` messages both ways, and the Origin allowlist as a browser meets it.
//
// The page is served by Playwright itself at https://app.example/ (the origin the fixture
// allows), so the browser sends a real `Origin` header. Chromium lets a public site reach a
// loopback server only with the user's "local network access" permission, which the browser
// context grants (a `ws://127.0.0.1` URL is not mixed content on an https page: loopback is
// trustworthy).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { launchChromium } from "./support/browser.mjs";
import { ALLOWED_ORIGIN, TOKEN, startFixture } from "./support/ws-server.mjs";

/** Opens a page at `origin` (an empty HTML document served by Playwright). */
async function pageAt(browser, origin) {
  const context = await browser.newContext({ permissions: ["local-network-access"] });
  const page = await context.newPage();
  page.console = [];
  page.on("console", (message) => page.console.push(message.text()));
  await page.route(`${origin}/**`, (route) =>
    route.fulfill({ status: 200, contentType: "text/html", body: "<!doctype html><title>ws test</title>" }),
  );
  await page.goto(`${origin}/`);
  return page;
}

describe("WebSocket hub in a browser", () => {
  let server;
  let browser;

  before(async () => {
    server = await startFixture();
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test("a browser WebSocket exchanges text and ArrayBuffer messages", async () => {
    const page = await pageAt(browser, ALLOWED_ORIGIN);
    const url = `${server.wsUrl}?token=${TOKEN}`;
    const result = await page.evaluate(async (url) => {
      // Collects messages in arrival order, ArrayBuffers as byte arrays.
      const open = (protocols) =>
        new Promise((resolve, reject) => {
          const ws = new WebSocket(url, protocols);
          ws.binaryType = "arraybuffer";
          ws.received = [];
          ws.waiters = [];
          ws.onmessage = (event) => {
            const message =
              event.data instanceof ArrayBuffer
                ? { kind: "arraybuffer", bytes: Array.from(new Uint8Array(event.data)) }
                : { kind: typeof event.data, text: event.data };
            const waiter = ws.waiters.shift();
            if (waiter) waiter(message);
            else ws.received.push(message);
          };
          ws.next = () =>
            ws.received.length > 0 ? Promise.resolve(ws.received.shift()) : new Promise((r) => ws.waiters.push(r));
          ws.onopen = () => resolve(ws);
          ws.onerror = () => reject(new Error("websocket error"));
        });
      const a = await open(["chat.v2"]);
      const b = await open();
      const welcomes = [await a.next(), await b.next()];

      a.send("plain text");
      const echoed = await a.next();
      a.send(new Uint8Array([0, 128, 255, 42]).buffer);
      const echoedBinary = await a.next();
      a.send("all: to both tabs");
      const broadcast = [await a.next(), await b.next()];
      b.send(new Blob([new Uint8Array([9, 8, 7])]));
      const fromBlob = await b.next();

      const closed = new Promise((resolve) => (a.onclose = (event) => resolve({ code: event.code, reason: event.reason })));
      a.close(1000, "bye");
      b.close();
      return { protocol: a.protocol, welcomes, echoed, echoedBinary, broadcast, fromBlob, closed: await closed };
    }, url);

    assert.equal(result.protocol, "chat.v2");
    for (const welcome of result.welcomes) assert.match(welcome.text, /^welcome \d+$/);
    assert.deepEqual(result.echoed, { kind: "string", text: "plain text" });
    assert.deepEqual(result.echoedBinary, { kind: "arraybuffer", bytes: [0, 128, 255, 42] });
    assert.deepEqual(result.broadcast, [
      { kind: "string", text: "all: to both tabs" },
      { kind: "string", text: "all: to both tabs" },
    ]);
    assert.deepEqual(result.fromBlob, { kind: "arraybuffer", bytes: [9, 8, 7] });
    assert.deepEqual(result.closed, { code: 1000, reason: "bye" });
    await page.context().close();
  });

  test("a browser page from another origin is refused with 403", async () => {
    const page = await pageAt(browser, "https://evil.example");
    const outcome = await page.evaluate(
      (url) =>
        new Promise((resolve) => {
          const ws = new WebSocket(url);
          ws.onopen = () => resolve("open");
          ws.onclose = (event) => resolve(`closed ${event.code}`);
        }),
      `${server.wsUrl}?token=${TOKEN}`,
    );
    // The page only sees a failed connection; the browser's console tells why.
    assert.equal(outcome, "closed 1006");
    assert.ok(
      page.console.some((line) => line.includes("Unexpected response code: 403")),
      `console: ${page.console.join("\n")}`,
    );
    await page.context().close();
  });
});
