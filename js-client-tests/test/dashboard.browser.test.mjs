// The live dashboard in headless Chromium: one Rust timer, three transports, three panels that
// show the same values. Leaves a screenshot in js-client-tests/artifacts/dashboard.png.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { artifact, launchChromium } from "./support/browser.mjs";
import { startExample } from "./support/server.mjs";

let server;
let browser;
before(async () => {
  server = await startExample("live-dashboard", ["--every-ms", "100"]);
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

test("the Socket.IO, WebSocket and EventSource panels show the same samples", { timeout: 30_000 }, async () => {
  const page = await browser.newPage();
  const problems = [];
  page.on("pageerror", (error) => problems.push(error.message));
  await page.goto(server.url);

  for (const transport of ["socketio", "ws", "sse"]) {
    await page.getByTestId(`panel-${transport}`).locator('[data-field="status"].live').waitFor();
  }
  // Wait until the three panels agree on a sample well after they all went live.
  const agreed = await page.waitForFunction(() => {
    const read = (t) => {
      const panel = document.querySelector(`[data-transport="${t}"]`);
      const field = (name) => panel.querySelector(`[data-field="${name}"]`).textContent;
      return { seq: Number(field("seq")), value: field("value"), count: Number(field("received")) };
    };
    const [a, b, c] = ["socketio", "ws", "sse"].map(read);
    const same = a.seq === b.seq && b.seq === c.seq && a.value === b.value && b.value === c.value;
    return same && a.count >= 10 && b.count >= 10 && c.count >= 10 ? { seq: a.seq, value: a.value } : null;
  });
  const { seq, value } = await agreed.jsonValue();
  assert.ok(seq > 0 && value !== "–");
  await page.getByTestId("agreement").filter({ hasText: "all three agree" }).waitFor();
  await page.screenshot({ path: artifact("dashboard.png") });
  assert.deepEqual(problems, []);
});
