// Resume everywhere (issue #19), with stock clients on three nodes sharing a real redis-server:
// socket.io-client, npm `ws` and `eventsource` clients of one hub topic, each behind a proxy for
// its home node, receive every event exactly once and in publish order while the publisher goes
// on at 200 events a second and one node is killed (its clients reconnect through their proxy to
// another node and resume there with their last id). A client that stays away for longer than
// the history gets the `resync` signal on every transport, then follows live again.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { balancer } from "./support/proxy.mjs";
import { startRedis } from "./support/redis.mjs";
import { SUBSCRIBERS, difference, publisher } from "./support/resume.mjs";
import { start } from "./support/server.mjs";

/** Events each node's SSE history keeps per topic (`TONGXUN_SSE_HISTORY`). */
const HISTORY = 1000;
/** Events the failover test publishes, and the one after which it kills a node. */
const TOTAL = 2000;
const KILL_AFTER = 700;
/** The node that publishes (never killed), and the one that dies. */
const PUBLISHING = 0;
const VICTIM = 1;

let redis;
let nodes = [];
let proxies = [];
const clients = [];

before(async () => {
  redis = await startRedis();
  const env = {
    TONGXUN_REDIS_URL: redis.url,
    TONGXUN_SSE_HISTORY: String(HISTORY),
    RUST_LOG: process.env.RUST_LOG ?? "tongxun=warn",
  };
  nodes = await Promise.all([0, 1, 2].map(() => start(undefined, [], env)));
  // Node i's proxy tries node i, then the next ones: the victim's clients land on node 2.
  proxies = await Promise.all(nodes.map((_, i) => balancer(...[0, 1, 2].map((k) => nodes[(i + k) % 3]))));
});
after(async () => {
  for (const client of clients) client.close();
  await Promise.all(proxies.map((proxy) => proxy.close()));
  await Promise.all(nodes.map((node) => node.stop()));
  await redis?.stop();
});

/** Subscribes one client of each kind through `proxy`; resolves once all are subscribed. */
async function subscribeAll(proxy, topic, name) {
  const some = Object.values(SUBSCRIBERS).map((make) => make(proxy, topic, name));
  clients.push(...some);
  await Promise.all(some.map(({ received }) => received.until((r) => r.subscribed >= 1, "the first subscription")));
  return some.map(({ received }) => received);
}

/** Runs `body`; a failure carries the tail of every node's stderr. */
async function explained(body) {
  try {
    await body();
  } catch (error) {
    const tails = nodes.map((node, i) => `--- node ${i} stderr:\n${node.stderr().split("\n").slice(-40).join("\n")}`);
    error.message += `\n${tails.join("\n")}`;
    throw error;
  }
}

/** `from`, `from + 1`, ..., `to`. */
const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** Asserts that every tick `received` got carries the id `/publish` answered for it. */
function assertIds(received, ids) {
  const wrong = [...received.ids].filter(([n, id]) => ids[n] !== id).slice(0, 5);
  assert.deepEqual(wrong, [], `${received.name}: ids other than the publisher's (n, id)`);
}

describe("resume everywhere on three nodes", () => {
  test("a node dies mid-stream: every client gets every event once, in publish order", { timeout: 120_000 }, async () => {
    await explained(async () => {
      const topic = "resume-failover";
      const received = [];
      for (const [i, proxy] of proxies.entries()) {
        received.push(...(await subscribeAll(proxy, topic, `homed on node ${i}`)).map((r) => ({ home: i, r })));
      }
      const pub = publisher(nodes[PUBLISHING], topic);
      await pub.run({
        count: TOTAL,
        at: {
          [KILL_AFTER]: async () => {
            nodes[VICTIM].child.kill("SIGKILL");
            await nodes[VICTIM].exited;
          },
        },
      });
      assert.equal(pub.published, TOTAL);

      await Promise.all(received.map(({ r }) => r.until((x) => x.has(TOTAL), `tick ${TOTAL}`, 60_000)));
      const expected = range(1, TOTAL);
      for (const { home, r } of received) {
        assert.deepEqual(difference(r.log, expected), {}, `${r.name}: every n once, in order`);
        assert.deepEqual(r.log, expected);
        assert.deepEqual(r.problems, [], r.name);
        assertIds(r, pub.ids);
        if (home === VICTIM) {
          assert.ok(r.connects >= 2, `${r.name} reconnected to another node: ${r.summary()}`);
        } else {
          assert.equal(r.connects, 1, `${r.name} kept its connection: ${r.summary()}`);
        }
      }
    });
  });

  test("a client away for longer than the history gets resync on every transport, then live events", { timeout: 120_000 }, async () => {
    await explained(async () => {
      const topic = "resume-away";
      // Node 2 outlives the first test; its proxy here is this test's own.
      const proxy = await balancer(nodes[2]);
      proxies.push(proxy);
      const received = await subscribeAll(proxy, topic, "away");
      const pub = publisher(nodes[PUBLISHING], topic);
      await pub.run({ count: 10 });
      await Promise.all(received.map((r) => r.until((x) => x.has(10), "tick 10")));

      // An outage of the clients' way to the server: they notice the drop and keep retrying.
      const drops = received.map((r) => r.disconnects);
      proxy.down();
      await Promise.all(received.map((r, i) => r.until((x) => x.disconnects > drops[i], "the drop")));
      // More than the history holds, counted after every client left.
      await pub.run({ count: HISTORY + 100 });
      const away = pub.published;
      proxy.up();

      const resynced = Promise.all(received.map((r) => r.until((x) => x.resyncs.length > 0, "the resync", 60_000)));
      await pub.run({ until: resynced });
      await resynced;
      await pub.run({ count: 20 });
      const last = pub.published;
      await Promise.all(received.map((r) => r.until((x) => x.has(last), `tick ${last}`)));

      for (const r of received) {
        assert.deepEqual(r.resyncs, [{ topics: [topic], reason: "history_exceeded" }], r.name);
        const at = r.log.indexOf("resync");
        assert.deepEqual(r.log.slice(0, at), range(1, 10), `${r.name}: what came before it left`);
        const live = r.log.slice(at + 1);
        assert.ok(live[0] > away, `${r.name}: nothing of the gap after the resync: ${r.summary()}`);
        assert.deepEqual(difference(live, range(live[0], last)), {}, `${r.name}: live again, every n once`);
        assert.deepEqual(r.problems, [], r.name);
        assertIds(r, pub.ids);
      }
    });
  });
});
