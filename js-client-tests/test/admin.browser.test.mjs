// The official Socket.IO Admin UI (@socket.io/admin-ui 0.5.1, the stock built page the chat
// example serves at /admin/ui/) in headless Chromium, against the chat's admin namespace: a wrong
// password refused, then the chat's users' sockets and rooms, and one of them disconnected from
// the page. Leaves screenshots in js-client-tests/artifacts/admin-ui.png (the sockets) and
// admin-ui-rooms.png (the rooms).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { io } from "socket.io-client";
import { artifact, launchChromium } from "./support/browser.mjs";
import { next, startExample } from "./support/server.mjs";

let server;
let browser;
const users = [];

before(async () => {
  server = await startExample("chat");
  browser = await launchChromium();
});
after(async () => {
  for (const u of users) u.disconnect();
  await browser?.close();
  await server?.stop();
});

/** A stock socket.io-client on the chat with nickname `nick`, in chat rooms `rooms`. */
async function user(nick, rooms) {
  const socket = io(server.url + "/chat", { forceNew: true, reconnection: false, transports: ["websocket"] });
  users.push(socket);
  socket.reasons = [];
  socket.on("disconnect", (reason) => socket.reasons.push(reason));
  await next(socket, "connect");
  assert.deepEqual(await socket.emitWithAck("nick", nick), { ok: nick });
  for (const room of rooms) assert.equal((await socket.emitWithAck("join", room)).ok, true, `${nick} joins ${room}`);
  socket.nick = nick;
  return socket;
}

/** A page of its own (a fresh context: the UI keeps its settings in localStorage) on the UI. */
async function openAdminUi() {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(e.message));
  page.on("console", (m) => m.type() === "error" && problems.push(m.text()));
  page.on("request", (r) => {
    if (!r.url().startsWith(server.url) && !r.url().startsWith("data:")) problems.push(`request outside the server: ${r.url()}`);
  });
  page.on("response", (r) => r.status() >= 400 && problems.push(`${r.status()} for ${r.url()}`));
  await page.goto(`${server.url}/admin/ui/`);
  return { page, context, problems };
}

/** The visible elements of `locator` (route transitions briefly keep the leaving view). */
const shown = (locator) => locator.filter({ visible: true });

/** Picks namespace `name` in the page's namespace selector (a Vuetify v-select). */
async function selectNamespace(page, name) {
  await shown(page.getByLabel("Select namespace")).click({ force: true });
  await shown(page.getByRole("option", { name, exact: true })).click();
  await shown(page.locator(".v-select__selection").filter({ hasText: name })).waitFor();
  await page.getByRole("option", { name, exact: true }).waitFor({ state: "hidden" }); // the menu faded out
}

/** Opens page `name` from the navigation drawer. */
const goTo = (page, name) => page.getByRole("navigation").getByRole("link", { name, exact: true }).click();

/** The visible table row whose text includes `text`. */
const row = (page, text) => shown(page.getByRole("row").filter({ hasText: text }));

test("the page is served at /admin/ui/, linking nothing outside the server", async () => {
  const page = await fetch(`${server.url}/admin/ui/`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get("content-type"), /^text\/html/);
  const html = await page.text();
  assert.match(html, /<title>Socket\.IO Admin UI<\/title>/);
  assert.doesNotMatch(html, /(?:href|src)="(?:https?:)?\/\//, "no link to another host");
  // Without its trailing slash, the page's relative links would miss: a redirect adds it.
  const bare = await fetch(`${server.url}/admin/ui`, { redirect: "manual" });
  assert.ok([301, 302, 307, 308].includes(bare.status), `redirected: ${bare.status}`);
  assert.equal(new URL(bare.headers.get("location"), server.url).pathname, "/admin/ui/");
  // Every stylesheet and script it links is there, the icon font's stylesheet included.
  const links = [...html.matchAll(/(?:href|src)="([^"]+)"/g)].map(([, href]) => href);
  assert.ok(links.some((href) => href.includes("materialdesignicons")), `the icons' stylesheet: ${links}`);
  for (const href of links) {
    const response = await fetch(new URL(href, `${server.url}/admin/ui/`));
    assert.equal(response.status, 200, href);
  }
});

test("the Admin UI logs in, lists the chat's sockets and rooms, and disconnects a user", { timeout: 60_000 }, async () => {
  const ada = await user("ada", ["general", "random"]);
  const grace = await user("grace", ["general", "rust"]);

  const { page, context, problems } = await openAdminUi();
  assert.equal(await page.title(), "Socket.IO Admin UI");

  // The connection modal opens by itself: nothing is saved in this fresh context.
  // (Vuetify moves the dialog's content to the end of the page, as role "document".)
  const modal = page.locator('[role="document"]').filter({ has: page.getByText("Connection", { exact: true }) });
  await modal.waitFor();
  await modal.getByLabel("Server URL").fill(server.url);
  await modal.getByLabel("Username").fill("admin");
  await modal.getByLabel("Password").fill("not-the-password");
  await modal.getByRole("button", { name: "Connect" }).click();
  await modal.getByText("Invalid credentials", { exact: true }).waitFor();
  // Still not connected: the modal stays, the app bar says so.
  assert.equal(await modal.getByRole("button", { name: "Connect" }).isVisible(), true);
  await shown(page.locator("header").getByText("disconnected", { exact: true })).waitFor();

  // The right password.
  await modal.getByLabel("Password").fill("tongxun-dev");
  await modal.getByRole("button", { name: "Connect" }).click();
  await modal.getByRole("button", { name: "Connect" }).waitFor({ state: "hidden" });
  await shown(page.locator("header").getByText("connected", { exact: true })).waitFor();
  await shown(page.locator("header").getByText(server.url, { exact: true })).waitFor();

  // The UI keeps the session the server gave it: a reload reconnects without the password.
  await page.reload();
  await shown(page.locator("header").getByText("connected", { exact: true })).waitFor();
  assert.equal(await modal.getByRole("button", { name: "Connect" }).isVisible(), false);

  // The Sockets page, namespace /chat: both users' sockets, over WebSocket.
  await goTo(page, "Sockets");
  await shown(page.getByText("Select namespace")).waitFor();
  await selectNamespace(page, "/chat");
  for (const u of [ada, grace]) await row(page, u.id).waitFor();
  assert.equal(await row(page, ada.id).getByText("WebSocket", { exact: true }).count(), 1);
  // The admin's own socket is in namespace /admin, not listed here: just the two users.
  assert.equal(await shown(page.locator("tbody").getByRole("row")).count(), 2);
  await page.screenshot({ path: artifact("admin-ui.png") });

  // One socket's details: its rooms (the chat's rooms are Socket.IO rooms named #<room>).
  await row(page, ada.id).getByRole("cell").first().click();
  await shown(page.getByText("Socket details")).waitFor();
  for (const room of ["#general", "#random", ada.id]) await row(page, room).first().waitFor();
  assert.equal(await row(page, "#rust").count(), 0);

  // The Rooms page: the public rooms with how many sockets are in each.
  await goTo(page, "Rooms");
  await shown(page.getByText("Show private rooms?")).waitFor();
  const roomCells = (name) => shown(page.getByRole("row").filter({ has: page.getByRole("cell", { name, exact: true }) }))
    .getByRole("cell")
    .allInnerTexts();
  for (const [name, count] of [["#general", "2"], ["#random", "1"], ["#rust", "1"]]) {
    await row(page, name).waitFor();
    const cells = (await roomCells(name)).map((c) => c.trim());
    assert.equal(cells[0], name);
    assert.equal(cells[1].toLowerCase(), "public");
    assert.equal(cells[2], count, `sockets in ${name}`);
  }
  assert.equal(await row(page, ada.id).count(), 0, "private rooms are hidden");
  await page.screenshot({ path: artifact("admin-ui-rooms.png") });

  // Back on the Sockets page, grace's disconnect button.
  await goTo(page, "Sockets");
  const graceId = grace.id; // the client forgets it on disconnect
  await row(page, graceId).waitFor();
  const gone = next(grace, "disconnect");
  await row(page, graceId).getByRole("button").click();
  assert.equal((await gone)[0], "io server disconnect");
  // ada stays: she still talks to the chat, and the UI lists her alone.
  assert.deepEqual(await ada.emitWithAck("nick", "ada"), { ok: "ada" });
  assert.equal(ada.connected, true);
  assert.deepEqual(ada.reasons, []);
  await goTo(page, "Sockets");
  await row(page, ada.id).waitFor();
  await page.waitForFunction((id) => ![...document.querySelectorAll("tbody tr")].some((tr) => tr.textContent.includes(id)), graceId);

  assert.deepEqual(problems, []);
  await context.close();
});
