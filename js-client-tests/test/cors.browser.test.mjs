// CORS in headless Chromium: a page of another origin reaches the server over long polling,
// preflight included, only when the server's CORS layer names that origin. The fixture serves
// the page on 127.0.0.2 and [::1] too (one server, three listeners); CORS allows 127.0.0.2.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { launchChromium } from "./support/browser.mjs";
import { start } from "./support/server.mjs";

let server;
let browser;
before(async () => {
  server = await start(undefined, [], { TONGXUN_ALSO_LISTEN: "127.0.0.2:0,[::1]:0" });
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Opens the fixture's page at `origin` and connects from there to the server's first URL. */
async function connectFrom(origin) {
  const page = await browser.newPage();
  await page.goto(`${origin}/cross-origin.html`);
  const result = await page.evaluate((url) => window.connectTo(url), server.url);
  await page.close();
  return result;
}

test("the fixture serves one server on three listeners", () => {
  assert.equal(server.also.length, 2);
  assert.match(server.also[0], /^http:\/\/127\.0\.0\.2:\d+$/);
  assert.match(server.also[1], /^http:\/\/\[::1\]:\d+$/);
});

test("a page of an allowed origin connects with credentials and a header that needs a preflight", async () => {
  const allowed = server.also[0];
  const { handshake, error } = await connectFrom(allowed);
  assert.equal(error, undefined);
  assert.equal(handshake.headers.origin, allowed);
  assert.equal(handshake.headers["x-tongxun-client"], "browser");
  assert.equal(handshake.xdomain, true);
});

test("a page of another origin is refused by its browser", async () => {
  const { handshake, error } = await connectFrom(server.also[1]);
  assert.equal(handshake, undefined);
  assert.equal(error, "xhr poll error");
});
