// The chat example's page in headless Chromium, two users on two chat nodes sharing one Redis:
// they are one chat, as on one server. Leaves js-client-tests/artifacts/chat-cluster-{ada,grace}.png.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { artifact, launchChromium } from "./support/browser.mjs";
import { membersAre, message, open, say, signIn } from "./support/chat-page.mjs";
import { startRedis } from "./support/redis.mjs";
import { startExample } from "./support/server.mjs";

let redis;
let nodes;
let browser;

before(async () => {
  redis = await startRedis();
  nodes = await Promise.all([0, 1].map(() => startExample("chat", ["--redis-url", redis.url])));
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await Promise.all((nodes ?? []).map((n) => n.stop()));
  await redis?.stop();
});

test("users of two nodes share nicknames, members, messages, private messages and history", async () => {
  const ada = await open(browser, nodes[0].url);
  const grace = await open(browser, nodes[1].url);
  const [a, g] = [ada.page, grace.page];

  await signIn(a, "ada");
  // The nickname ada holds on the first node is taken on the second.
  await g.getByTestId("nick-input").fill("Ada");
  await g.getByTestId("nick-submit").click();
  await g.getByTestId("nick-error").getByText('the nickname "Ada" is taken').waitFor();
  await signIn(g, "grace");

  // Both in #general, each listing both.
  await membersAre(a, ["ada", "grace"]);
  await membersAre(g, ["ada", "grace"]);
  await a.getByTestId("notice").filter({ hasText: "grace joined" }).waitFor();

  await say(a, "hello from node one");
  await message(g, "hello from node one").waitFor();
  await message(a, "hello from node one").getByTestId("delivered").getByText("✓ delivered").waitFor();
  await say(g, "hello from node two");
  await message(a, "hello from node two").waitFor();

  // A private message across the nodes.
  await g.locator('[data-testid="member"][data-nick="ada"]').click();
  await g.getByTestId("title").getByText("@ada").waitFor();
  await say(g, "psst, across the nodes");
  await message(g, "psst").getByTestId("delivered").waitFor();
  await a.getByTestId("direct-grace").click();
  await message(a, "psst, across the nodes").waitFor();
  await a.getByTestId("room-general").click();

  // A newcomer on the second node sees the history written on both.
  const linus = await open(browser, nodes[1].url);
  await signIn(linus.page, "linus");
  await message(linus.page, "hello from node one").waitFor();
  await message(linus.page, "hello from node two").waitFor();
  await membersAre(a, ["ada", "grace", "linus"]);

  await a.screenshot({ path: artifact("chat-cluster-ada.png") });
  await g.screenshot({ path: artifact("chat-cluster-grace.png") });
  // grace leaves: ada's list on the other node loses her.
  await grace.context.close();
  await a.getByTestId("notice").filter({ hasText: "grace left" }).waitFor();
  await membersAre(a, ["ada", "linus"]);

  assert.deepEqual(ada.problems, []);
  assert.deepEqual(grace.problems, []);
  assert.deepEqual(linus.problems, []);
  await ada.context.close();
  await linus.context.close();
});
