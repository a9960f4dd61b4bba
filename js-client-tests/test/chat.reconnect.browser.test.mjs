// The chat example's page through what a connection goes through: the server restarting under
// it, a reload, and a phone-sized screen (issue #16). Leaves a screenshot of the narrow layout,
// member list open, in js-client-tests/artifacts/chat-narrow.png.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { artifact, launchChromium } from "./support/browser.mjs";
import { membersAre, message, open, say, signIn, texts } from "./support/chat-page.mjs";
import { startExample } from "./support/server.mjs";

let browser;
before(async () => {
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
});

/** The page's connection indicator says `state` ("connected", "disconnected", ...). */
const connection = (page, state) => page.locator(`[data-testid="status"][data-state="${state}"]`).waitFor();

/** Waits until `locator`'s element has finished its transitions (the drawer slides in). */
async function settled(locator) {
  await locator.waitFor();
  await locator.evaluate((el) => Promise.all(el.getAnimations().map((a) => a.finished)));
}

/** Collects every error the page shows in its banner, in `window.shownErrors`. */
function recordErrors(page) {
  return page.evaluate(() => {
    const banner = document.getElementById("error");
    window.shownErrors = [];
    new MutationObserver(() => banner.textContent && window.shownErrors.push(banner.textContent)).observe(banner, {
      childList: true,
      characterData: true,
      subtree: true,
    });
  });
}

test("a message typed while the server restarts waits, then is delivered once the page has its nickname back; the conversation stays, without duplicates", async () => {
  let server = await startExample("chat");
  const port = new URL(server.url).port;
  try {
    const ada = await open(browser, server.url);
    const grace = await open(browser, server.url);
    const [a, g] = [ada.page, grace.page];
    await signIn(a, "ada");
    await signIn(g, "grace");
    await membersAre(a, ["ada", "grace"]);
    await say(a, "before the restart");
    await message(a, "before the restart").getByTestId("delivered").waitFor();
    await say(g, "hello from grace");
    await message(a, "hello from grace").waitFor();
    await recordErrors(a);

    // Grace stays away longer: her page comes back after ada's waiting messages went out, so
    // the history it gets holds ids the restarted server counted again from 0.
    await g.evaluate(() => socket.io.reconnection(false));
    await server.stop();
    await connection(a, "disconnected");
    await connection(g, "disconnected");

    await say(a, "typed while offline");
    await say(a, "and a second one");
    await message(a, "typed while offline").getByTestId("pending").getByText("not sent yet").waitFor();
    await message(a, "and a second one").getByTestId("pending").waitFor();
    // Nothing went to socket.io-client's buffer, which would send it before the nickname.
    assert.equal(await a.evaluate(() => socket.sendBuffer.length), 0);

    server = await startExample("chat", ["--port", port]);
    assert.equal(server.url, `http://127.0.0.1:${port}`);
    await message(a, "typed while offline").getByTestId("delivered").waitFor();
    await message(a, "and a second one").getByTestId("delivered").waitFor();
    await a.getByTestId("status").getByText("online").waitFor();
    await a.getByTestId("me").getByText("ada").waitFor();

    await g.evaluate(() => {
      socket.io.reconnection(true);
      socket.connect();
    });
    await message(g, "and a second one").waitFor();
    await connection(g, "connected");

    const all = ["before the restart", "hello from grace", "typed while offline", "and a second one"];
    assert.deepEqual(await texts(a), all, "ada's conversation kept, in order, once each");
    assert.deepEqual(await texts(g), all, "grace's conversation kept, history merged, once each");
    assert.equal(await message(g, "typed while offline").getAttribute("data-from"), "ada");
    assert.equal(await a.getByTestId("failed").count(), 0);
    const shown = await a.evaluate(() => window.shownErrors);
    assert.ok(!shown.some((e) => e.includes("pick a nickname first")), `errors shown: ${shown}`);
    // The server knows ada under her nickname again, in #general.
    await membersAre(a, ["ada", "grace"]);
    assert.deepEqual(ada.exceptions, []);
    assert.deepEqual(grace.exceptions, []);
    await ada.context.close();
    await grace.context.close();
  } finally {
    await server.stop();
  }
});

test("a reload keeps the nickname, the rooms and the shown room without typing anything; sign out forgets them", async () => {
  const server = await startExample("chat");
  try {
    const ada = await open(browser, server.url);
    const a = ada.page;
    await signIn(a, "ada");
    await say(a, "said before the reload");
    await message(a, "said before the reload").getByTestId("delivered").waitFor();
    await a.getByTestId("join-input").fill("rust");
    await a.getByTestId("join-submit").click();
    await a.getByTestId("title").getByText("#rust").waitFor();

    await a.reload();
    await a.getByTestId("status").getByText("online").waitFor();
    assert.equal(await a.getByTestId("login").isVisible(), false, "no nickname prompt");
    assert.equal(await a.getByTestId("me").textContent(), "ada");
    assert.equal(await a.getByTestId("title").textContent(), "#rust");
    for (const room of ["general", "rust"]) {
      assert.match(await a.getByTestId(`room-${room}`).getAttribute("class"), /\bjoined\b/);
    }
    await membersAre(a, ["ada"]);
    // #general's history comes with the rejoin (#rust forgot its own when ada, its last
    // member, left with the reload: see the rules in chat.rs).
    await a.getByTestId("room-general").click();
    await message(a, "said before the reload").waitFor();
    await a.getByTestId("room-rust").click();

    // The server has her back in both rooms, under her nickname.
    const grace = await open(browser, server.url);
    const g = grace.page;
    await signIn(g, "grace");
    await membersAre(g, ["ada", "grace"]);
    await g.getByTestId("join-input").fill("rust");
    await g.getByTestId("join-submit").click();
    await membersAre(g, ["ada", "grace"]);

    // Signing out forgets the tab's session: the prompt is back, and stays after a reload.
    await a.getByTestId("sign-out").click();
    await a.getByTestId("login").waitFor();
    await g.getByTestId("notice").filter({ hasText: "ada left" }).waitFor();
    await a.reload();
    await a.getByTestId("nick-input").waitFor();
    assert.equal(await a.getByTestId("app").isVisible(), false);
    assert.equal(await a.evaluate(() => sessionStorage.length), 0);
    assert.deepEqual(ada.exceptions, []);
    assert.deepEqual(grace.problems, []);
    await ada.context.close();
    await grace.context.close();
  } finally {
    await server.stop();
  }
});

test("on a 600 px wide screen the member list opens as a drawer and starts a private message", async () => {
  const server = await startExample("chat");
  try {
    const ada = await open(browser, server.url, { width: 600, height: 800 });
    const grace = await open(browser, server.url);
    const [a, g] = [ada.page, grace.page];
    await signIn(a, "ada");
    await signIn(g, "grace");
    await membersAre(a, ["ada", "grace"]);

    assert.equal(await a.getByTestId("people").isVisible(), false, "closed at first");
    await a.getByTestId("members-toggle").getByText("2").waitFor();
    await a.getByTestId("members-toggle").click();
    await settled(a.getByTestId("people"));
    const box = await a.getByTestId("people").boundingBox();
    assert.ok(box.x >= 0 && box.x + box.width <= 600, `the drawer is on screen: ${JSON.stringify(box)}`);
    await a.screenshot({ path: artifact("chat-narrow.png") });

    await a.locator('[data-testid="member"][data-nick="grace"]').click();
    await a.getByTestId("title").getByText("@grace").waitFor();
    await a.getByTestId("people").waitFor({ state: "hidden" });
    await say(a, "psst, from a small screen");
    await message(a, "psst, from a small screen").getByTestId("delivered").waitFor();
    await g.getByTestId("direct-ada").getByTestId("unread").getByText("1").waitFor();
    await g.getByTestId("direct-ada").click();
    await message(g, "psst, from a small screen").waitFor();

    // The drawer closes on Escape and on a click beside it too.
    await a.getByTestId("members-toggle").click();
    await a.getByTestId("people").waitFor();
    await a.keyboard.press("Escape");
    await a.getByTestId("people").waitFor({ state: "hidden" });
    await a.getByTestId("members-toggle").click();
    await a.getByTestId("members-backdrop").click({ position: { x: 20, y: 400 } });
    await a.getByTestId("people").waitFor({ state: "hidden" });

    assert.deepEqual(ada.problems, []);
    assert.deepEqual(grace.problems, []);
    await ada.context.close();
    await grace.context.close();
  } finally {
    await server.stop();
  }
});

test("a nickname taken while the page was offline is said, and the waiting message goes out under the next one picked", async () => {
  let server = await startExample("chat");
  const port = new URL(server.url).port;
  try {
    const ada = await open(browser, server.url);
    const a = ada.page;
    await signIn(a, "ada");
    await a.evaluate(() => socket.io.reconnection(false));
    await server.stop();
    await connection(a, "disconnected");
    await say(a, "waiting for a nickname");
    await message(a, "waiting for a nickname").getByTestId("pending").waitFor();

    server = await startExample("chat", ["--port", port]);
    const other = await open(browser, server.url);
    await signIn(other.page, "ADA");
    await a.evaluate(() => {
      socket.io.reconnection(true);
      socket.connect();
    });
    // The page asks again for a few seconds (the server may not have seen its previous
    // connection go yet), then says why and keeps the message.
    await a
      .getByTestId("nick-error")
      .getByText('the nickname "ada" is taken: someone took your nickname while you were away. Pick another to send your 1 waiting message.')
      .waitFor({ timeout: 30_000 });
    await message(a, "waiting for a nickname").getByTestId("pending").waitFor();

    await signIn(a, "lovelace");
    await message(a, "waiting for a nickname").getByTestId("delivered").waitFor();
    await a.getByTestId("me").getByText("lovelace").waitFor();
    await message(other.page, "waiting for a nickname").waitFor();
    assert.equal(await message(other.page, "waiting for a nickname").getAttribute("data-from"), "lovelace");
    assert.deepEqual(ada.exceptions, []);
    await ada.context.close();
    await other.context.close();
  } finally {
    await server.stop();
  }
});

test("a message typed offline survives a reload and is sent once the server is back", async () => {
  let server = await startExample("chat");
  const port = new URL(server.url).port;
  try {
    const ada = await open(browser, server.url);
    const a = ada.page;
    await signIn(a, "ada");
    await a.evaluate(() => socket.io.reconnection(false));
    await server.stop();
    await connection(a, "disconnected");
    await say(a, "typed, then reloaded");
    await message(a, "typed, then reloaded").getByTestId("pending").waitFor();

    // The server is back, but the page has not reconnected yet: its user reloads it.
    server = await startExample("chat", ["--port", port]);
    await a.reload();
    await message(a, "typed, then reloaded").getByTestId("delivered").waitFor();
    assert.equal(await a.getByTestId("me").textContent(), "ada");
    assert.deepEqual(await texts(a), ["typed, then reloaded"]);
    assert.deepEqual(ada.exceptions, []);
    await ada.context.close();
  } finally {
    await server.stop();
  }
});
