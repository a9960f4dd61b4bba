// The chat example's page in headless Chromium: two users, two pages, everything a person would
// do. Leaves a screenshot of the final state in js-client-tests/artifacts/chat.png.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { artifact, launchChromium } from "./support/browser.mjs";
import { membersAre, message, open as openPage, say, signIn } from "./support/chat-page.mjs";
import { startExample } from "./support/server.mjs";

let server;
let browser;

before(async () => {
  server = await startExample("chat");
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

/** A new user on the chat. */
const open = () => openPage(browser, server.url);

test("two users chat in a room, privately, and see each other leave", async () => {
  const ada = await open();
  const grace = await open();
  const [a, g] = [ada.page, grace.page];

  // The page is self-explanatory before anything else.
  await a.getByTestId("second-tab-hint").getByText("Open this page in a second tab to chat with yourself.").waitFor();
  assert.equal(await a.title(), "tongxun chat");

  // Nicknames: a taken one is refused with the server's message.
  await signIn(a, "ada");
  await g.getByTestId("nick-input").fill("ADA");
  await g.getByTestId("nick-submit").click();
  await g.getByTestId("nick-error").getByText('the nickname "ADA" is taken').waitFor();
  await signIn(g, "grace");
  await a.getByTestId("status").getByText("online").waitFor();

  // Both join #random from the room list and see each other there.
  for (const page of [a, g]) {
    await page.getByTestId("room-random").click();
    await page.getByTestId("title").getByText("#random").waitFor();
  }
  await membersAre(a, ["ada", "grace"]);
  await membersAre(g, ["ada", "grace"]);
  await a.getByTestId("notice").filter({ hasText: "grace joined" }).waitFor();

  // Typing shows on the other page.
  await a.getByTestId("composer-text").pressSequentially("hello gr");
  await g.getByTestId("typing").getByText("ada is typing…").waitFor();

  // Messages both ways, each marked delivered for its sender.
  await a.getByTestId("composer-text").fill("");
  await say(a, "hello grace!");
  await message(g, "hello grace!").waitFor();
  assert.equal(await message(g, "hello grace!").getAttribute("data-from"), "ada");
  await message(a, "hello grace!").getByTestId("delivered").getByText("✓ delivered").waitFor();
  await say(g, "hi ada, nice to see you here");
  await message(a, "hi ada, nice to see you here").waitFor();
  await message(g, "hi ada, nice to see you here").getByTestId("delivered").waitFor();

  // Refusals show on the page: an empty message, an oversized one.
  await say(a, "   ");
  await a.getByTestId("error").getByText("message is empty").waitFor();
  const long = "x".repeat(2001);
  await say(a, long);
  await a.getByTestId("error").getByText("message is longer than 2000 characters").waitFor();
  // The refused text is back in the composer, to be shortened, and shown nowhere.
  await a.waitForFunction((text) => document.querySelector('[data-testid="composer-text"]').value === text, long);
  assert.equal(await message(a, "xxxxx").count(), 0);
  assert.equal(await message(g, "xxxxx").count(), 0);
  await a.getByTestId("composer-text").fill("");
  await a.getByTestId("error").click(); // dismissed
  await a.getByTestId("error").waitFor({ state: "hidden" });

  // A private message: ada clicks grace in the member list.
  await a.locator('[data-testid="member"][data-nick="grace"]').click();
  await a.getByTestId("title").getByText("@grace").waitFor();
  await say(a, "psst, this one is just for you");
  await message(a, "psst").getByTestId("delivered").waitFor();
  await g.getByTestId("direct-ada").getByTestId("unread").getByText("1").waitFor();
  await g.getByTestId("direct-ada").click();
  await message(g, "psst, this one is just for you").waitFor();
  await g.getByTestId("room-random").click();
  assert.equal(await message(g, "psst").count(), 0, "private messages stay out of the room");

  // Back in #random, ada sees grace leave when her page closes.
  await a.getByTestId("room-random").click();
  await message(a, "hi ada, nice to see you here").waitFor();
  await grace.context.close();
  await a.getByTestId("notice").filter({ hasText: "grace left" }).waitFor();
  await membersAre(a, ["ada"]);

  await a.screenshot({ path: artifact("chat.png") });

  assert.deepEqual(ada.problems, []);
  assert.deepEqual(grace.problems, []);
  // The bundle the page ran is the pinned stock client, served by the example itself.
  assert.deepEqual(
    await a.evaluate(() => [...document.scripts].map((s) => new URL(s.src).pathname)),
    ["/socket.io/socket.io.min.js", "/app.js"],
  );
  assert.equal(await a.evaluate(() => typeof io === "function" && typeof io.Manager), "function");
  await ada.context.close();
});
