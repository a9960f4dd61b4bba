// The live dashboard in headless Chromium: one Rust timer, three transports, three panels that
// show the same values, and resume on all three when the server dies and comes back. Leaves
// screenshots in js-client-tests/artifacts/dashboard.png and dashboard-resumed.png.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { artifact, launchChromium } from "./support/browser.mjs";
import { balancer } from "./support/proxy.mjs";
import { startRedis } from "./support/redis.mjs";
import { startExample } from "./support/server.mjs";

const TRANSPORTS = ["socketio", "ws", "sse"];

let browser;
before(async () => {
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
});

/** A new page that records its uncaught errors in `problems`. */
async function openPage(url) {
  const page = await browser.newPage();
  const problems = [];
  page.on("pageerror", (error) => problems.push(error.message));
  await page.goto(url);
  return { page, problems };
}

test("the Socket.IO, WebSocket and EventSource panels show the same samples", { timeout: 30_000 }, async (t) => {
  const server = await startExample("live-dashboard", ["--every-ms", "100"]);
  t.after(() => server.stop());
  const { page, problems } = await openPage(server.url);

  for (const transport of TRANSPORTS) {
    await page.getByTestId(`panel-${transport}`).locator('[data-field="status"].live').waitFor();
  }
  // Wait until the three panels agree on an event well after they all went live.
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

/** Events each panel receives before the kill, and again after the restart. */
const N = 100;

/** The state of every panel (`window.dashboard.panels`), without the page's helpers. */
function panels(page) {
  return page.evaluate((transports) => {
    const pick = ({ received, gaps, duplicates, resyncs, reconnects, epoch, lastSeq, seqs }) => ({
      received,
      gaps,
      duplicates,
      resyncs,
      reconnects,
      epoch,
      lastSeq,
      seqs: [...seqs],
    });
    return Object.fromEntries(transports.map((t) => [t, pick(window.dashboard.panels[t])]));
  }, TRANSPORTS);
}

/**
 * Waits (polling the page) until every panel's counters reach at least `minimum[transport]`
 * (such as `{ received: 200, reconnects: 1 }`); on a timeout, fails with the panels' counters
 * and the server's log.
 */
async function waitForPanels(page, minimum, server) {
  try {
    await page.waitForFunction(
      (minimum) =>
        Object.entries(minimum).every(([t, counters]) =>
          Object.entries(counters).every(([name, at]) => window.dashboard.panels[t][name] >= at),
        ),
      minimum,
      { polling: 100, timeout: 30_000 },
    );
  } catch (error) {
    const state = await panels(page);
    for (const panel of Object.values(state)) panel.seqs = panel.seqs.slice(-20);
    error.message += `\nwanted ${JSON.stringify(minimum)}\npanels ${JSON.stringify(state)}\nserver log:\n${server.stderr().slice(-4000)}`;
    throw error;
  }
}

/** Per transport, `counters(transport)`. */
const each = (counters) => Object.fromEntries(TRANSPORTS.map((t) => [t, counters(t)]));

/**
 * The last sequence number Redis gave the topic `metrics` (the key the SSE hub at `/events`
 * keeps it in, see tongxun's sse/shared.rs): after a SIGKILL, the last event the dead server
 * published.
 */
async function lastPublished(redis) {
  const key = "tongxun:sse:{/events}:seq:metrics";
  const { stdout } = await promisify(execFile)("redis-cli", ["-h", "127.0.0.1", "-p", String(redis.port), "GET", key]);
  return Number(stdout.trim());
}

/**
 * Runs the dashboard with `args` behind a proxy, opens the page through it, waits for `N`
 * events on every panel, SIGKILLs the server, starts it again on another port behind the same
 * proxy URL, and waits for `N` more events and a reconnection on every panel. Returns the
 * panels before (right after the kill, and after `afterKill()`) and at the end, and the page's
 * uncaught errors.
 */
async function killAndRestart(t, args, afterKill = async () => {}) {
  let server = await startExample("live-dashboard", args);
  t.after(() => server.stop());
  const proxy = await balancer(server);
  t.after(() => proxy.close());
  const { page, problems } = await openPage(proxy.url);

  await waitForPanels(page, each(() => ({ received: N })), server);
  const first = server;
  server.child.kill("SIGKILL");
  await server.exited;
  await afterKill();
  const before = await panels(page);

  server = await startExample("live-dashboard", args);
  assert.notEqual(server.child.pid, first.child.pid);
  proxy.pointTo(server);
  await waitForPanels(page, each((t) => ({ received: before[t].received + N, reconnects: 1 })), server);
  return { page, before, end: await panels(page), problems };
}

test(
  "after a SIGKILL and a restart on the same Redis, every panel resumes: no gap, no duplicate, no resync",
  { timeout: 90_000 },
  async (t) => {
    const redis = await startRedis();
    t.after(() => redis.stop());
    // 50 samples a second, with the history in Redis.
    let killed;
    const { page, before, end, problems } = await killAndRestart(
      t,
      ["--redis-url", redis.url, "--every-ms", "20"],
      async () => {
        killed = await lastPublished(redis);
      },
    );
    await page.screenshot({ path: artifact("dashboard-resumed.png") });

    for (const t of TRANSPORTS) {
      assert.ok(before[t].lastSeq <= killed, `${t}: ${before[t].lastSeq} was never published`);
      const { gaps, duplicates, resyncs, seqs } = end[t];
      assert.deepEqual({ gaps, duplicates, resyncs }, { gaps: 0, duplicates: 0, resyncs: 0 }, t);
      const broken = seqs.findIndex((seq, i) => i > 0 && seq !== seqs[i - 1] + 1);
      assert.equal(broken, -1, `${t}: ${seqs[broken - 1]} then ${seqs[broken]}`);
      // Unbroken across the restart: the dead server's last event, then the new one's first.
      assert.ok(seqs[0] <= killed && seqs.at(-1) > killed, `${t}: ${seqs[0]}..${seqs.at(-1)}, killed at ${killed}`);
    }
    const from = Math.max(...TRANSPORTS.map((t) => end[t].seqs[0]));
    const to = Math.min(...TRANSPORTS.map((t) => end[t].seqs.at(-1)));
    assert.ok(from <= killed && to > killed, `common range ${from}..${to}, killed at ${killed}`);
    const common = each((t) => end[t].seqs.filter((seq) => seq >= from && seq <= to));
    assert.equal(common.socketio.length, to - from + 1);
    assert.deepEqual(common.ws, common.socketio);
    assert.deepEqual(common.sse, common.socketio);
    assert.deepEqual(problems, []);
  },
);

test(
  "without Redis the history dies with the server: after a restart every panel counts one resync and goes on live",
  { timeout: 90_000 },
  async (t) => {
    const { before, end, problems } = await killAndRestart(t, ["--every-ms", "20"]);
    for (const t of TRANSPORTS) {
      const { gaps, duplicates, resyncs, epoch, seqs } = end[t];
      assert.deepEqual({ gaps, duplicates, resyncs }, { gaps: 0, duplicates: 0, resyncs: 1 }, t);
      // The ids of another history: the dead one's numbers, then the new one's from where the
      // panel joined it live, each run unbroken.
      assert.equal(epoch, end.socketio.epoch, t);
      assert.notEqual(epoch, before[t].epoch, t);
      const breaks = seqs.flatMap((seq, i) => (i > 0 && seq !== seqs[i - 1] + 1 ? [`${seqs[i - 1]}, ${seqs[i]}`] : []));
      assert.ok(breaks.length <= 1, `${t}: breaks at ${breaks.join("; ")}`);
    }
    assert.deepEqual(problems, []);
  },
);
