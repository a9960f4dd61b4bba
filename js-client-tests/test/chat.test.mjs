// The chat example (examples/chat) driven by stock socket.io-client instances: the protocol
// documented in examples/chat/src/chat.rs, including every refusal.
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, test } from "node:test";
import { io } from "socket.io-client";
import { next, startExample } from "./support/server.mjs";

let server;
let clients;

beforeEach(async () => {
  server = await startExample("chat");
  clients = [];
});
afterEach(async () => {
  for (const c of clients) c.disconnect();
  await server.stop();
});

/** A connected client that records every event it receives, by name, in `got`. */
async function connect() {
  const socket = io(server.url + "/chat", { forceNew: true, reconnection: false, transports: ["websocket"] });
  clients.push(socket);
  socket.got = { message: [], notice: [], members: [], typing: [], private: [] };
  for (const [event, list] of Object.entries(socket.got)) socket.on(event, (payload) => list.push(payload));
  await next(socket, "connect");
  return socket;
}

/** A client with a nickname, in `rooms`. */
async function user(nick, rooms = []) {
  const socket = await connect();
  assert.deepEqual(await socket.emitWithAck("nick", nick), { ok: nick });
  socket.nick = nick;
  for (const room of rooms) assert.equal((await socket.emitWithAck("join", room)).ok, true);
  return socket;
}

/**
 * Waits until each client has received everything the server sent it so far: the answer to a
 * request that changes nothing (setting one's own nickname again) is queued behind it. Then
 * clears what they recorded when `clear` is set.
 */
async function barrier(sockets, { clear = false } = {}) {
  await Promise.all(sockets.map(async (s) => assert.deepEqual(await s.emitWithAck("nick", s.nick), { ok: s.nick })));
  if (clear) for (const s of sockets) for (const list of Object.values(s.got)) list.length = 0;
}

const texts = (messages) => messages.map((m) => m.text);

describe("nicknames", () => {
  test("are trimmed, and one already taken in any case is refused with a clear error", async () => {
    const ada = await connect();
    assert.deepEqual(await ada.emitWithAck("nick", "  ada  "), { ok: "ada" });
    const other = await connect();
    assert.deepEqual(await other.emitWithAck("nick", "ADA"), { error: 'the nickname "ADA" is taken' });
    assert.deepEqual(await other.emitWithAck("nick", "   "), { error: "nickname is empty" });
    assert.deepEqual(await other.emitWithAck("nick", "x".repeat(25)), { error: "nickname is longer than 24 characters" });
    assert.deepEqual(await other.emitWithAck("nick", 42), { error: "malformed nick: expected a string" });
    assert.deepEqual(await other.emitWithAck("nick", "grace"), { ok: "grace" });
    // Its owner may change its case; after a change, the old one is free.
    assert.deepEqual(await ada.emitWithAck("nick", "Ada"), { ok: "Ada" });
    assert.deepEqual(await ada.emitWithAck("nick", "ada lovelace"), { ok: "ada lovelace" });
    assert.deepEqual(await other.emitWithAck("nick", "ada"), { ok: "ada" });
  });

  test("is free again once its owner disconnected", async () => {
    const ada = await user("ada", ["general"]);
    const grace = await user("grace", ["general"]);
    const left = next(grace, "notice");
    ada.disconnect();
    assert.equal((await left)[0].text, "ada left"); // the name is released before the notice
    const again = await connect();
    assert.deepEqual(await again.emitWithAck("nick", "ada"), { ok: "ada" });
  });

  test("a change is announced in the user's rooms and updates their member lists", async () => {
    const ada = await user("ada", ["general"]);
    const grace = await user("grace", ["general"]);
    await barrier([ada, grace], { clear: true });
    assert.deepEqual(await ada.emitWithAck("nick", "lovelace"), { ok: "lovelace" });
    ada.nick = "lovelace";
    await barrier([ada, grace]);
    assert.deepEqual(grace.got.notice.map((n) => [n.kind, n.nick, n.text]), [["nick", "lovelace", "ada is now known as lovelace"]]);
    assert.deepEqual(ada.got.notice, []);
    for (const s of [ada, grace]) assert.deepEqual(s.got.members, [{ room: "general", members: ["grace", "lovelace"] }]);
  });
});

describe("rooms", () => {
  test("join answers the member list; the others see a notice and the new list", async () => {
    const ada = await user("ada", ["general"]);
    await barrier([ada], { clear: true });
    const grace = await user("grace");
    const joined = await grace.emitWithAck("join", " #General ");
    assert.deepEqual(joined, { ok: true, room: "general", members: ["ada", "grace"], history: [] });
    await barrier([ada, grace]);
    assert.deepEqual(ada.got.notice.map((n) => [n.room, n.kind, n.nick, n.text]), [["general", "join", "grace", "grace joined"]]);
    assert.equal(typeof ada.got.notice[0].at, "number");
    assert.deepEqual(ada.got.members, [{ room: "general", members: ["ada", "grace"] }]);
    assert.deepEqual(grace.got.notice, []);
    // Joining again changes nothing and announces nothing.
    assert.deepEqual((await grace.emitWithAck("join", "general")).members, ["ada", "grace"]);
    await barrier([ada]);
    assert.equal(ada.got.notice.length, 1);
  });

  test("leave is announced with the new member list, and messages stop", async () => {
    const ada = await user("ada", ["general", "random"]);
    const grace = await user("grace", ["general", "random"]);
    await barrier([ada, grace], { clear: true });
    assert.deepEqual(await grace.emitWithAck("leave", "general"), { ok: "general" });
    await barrier([ada, grace]);
    assert.deepEqual(ada.got.notice.map((n) => [n.room, n.kind, n.text]), [["general", "leave", "grace left"]]);
    assert.deepEqual(ada.got.members, [{ room: "general", members: ["ada"] }]);
    await ada.emitWithAck("message", { room: "general", text: "still there?" });
    await barrier([grace]);
    assert.deepEqual(grace.got.message, []);
    assert.deepEqual(await grace.emitWithAck("leave", "general"), { error: "you have not joined #general" });
  });

  test("a disconnect is announced as a leave in each of the user's rooms", async () => {
    const ada = await user("ada", ["general", "random"]);
    const grace = await user("grace", ["general"]);
    const alan = await user("alan", ["random"]);
    await barrier([grace, alan], { clear: true });
    const seen = Promise.all([next(grace, "members"), next(alan, "members")]);
    ada.disconnect();
    const [[inGeneral], [inRandom]] = await seen;
    assert.deepEqual(inGeneral, { room: "general", members: ["grace"] });
    assert.deepEqual(inRandom, { room: "random", members: ["alan"] });
    assert.deepEqual(grace.got.notice.map((n) => [n.room, n.text]), [["general", "ada left"]]);
    assert.deepEqual(alan.got.notice.map((n) => [n.room, n.text]), [["random", "ada left"]]);
  });
});

describe("messages", () => {
  test("reach the room's other members, not outside it, and the sender's ack says delivered", async () => {
    const ada = await user("ada", ["general"]);
    const grace = await user("grace", ["general"]);
    const alan = await user("alan", ["random"]);
    await barrier([ada, grace, alan], { clear: true });
    const ack = await ada.emitWithAck("message", { room: "general", text: "  hello, grace \n" });
    assert.equal(ack.ok, true);
    assert.equal(typeof ack.id, "number");
    assert.equal(typeof ack.at, "number");
    await barrier([ada, grace, alan]);
    assert.deepEqual(grace.got.message, [{ id: ack.id, room: "general", from: "ada", text: "hello, grace", at: ack.at }]);
    assert.deepEqual(ada.got.message, [], "the sender shows its own copy");
    assert.deepEqual(alan.got.message, []);
    // And back.
    const reply = await grace.emitWithAck("message", { room: "general", text: "hi ada" });
    assert.ok(reply.id > ack.id);
    await barrier([ada]);
    assert.deepEqual(texts(ada.got.message), ["hi ada"]);
  });

  test("a room is readable as a read-only SSE feed (chat:<room>)", async () => {
    const { EventSource } = await import("eventsource");
    const feed = new EventSource(`${server.url}/events?topic=chat:general`);
    await new Promise((resolve, reject) => {
      feed.addEventListener("ready", resolve, { once: true });
      feed.onerror = reject;
    });
    const seen = [];
    const two = new Promise((resolve) =>
      feed.addEventListener("message", (event) => {
        seen.push(JSON.parse(event.data));
        if (seen.length === 2) resolve();
      }),
    );
    const ada = await user("ada", ["general", "random"]);
    const first = await ada.emitWithAck("message", { room: "general", text: "for the feed" });
    await ada.emitWithAck("message", { room: "random", text: "not for this feed" });
    const second = await ada.emitWithAck("message", { room: "general", text: "again" });
    await two;
    feed.close();
    assert.deepEqual(seen, [
      { id: first.id, room: "general", from: "ada", text: "for the feed", at: first.at },
      { id: second.id, room: "general", from: "ada", text: "again", at: second.at },
    ]);
  });

  test("the last 50 of a room are sent, oldest first, to whoever joins", async () => {
    const ada = await user("ada", ["general"]);
    for (let i = 0; i < 60; i++) {
      assert.equal((await ada.emitWithAck("message", { room: "general", text: `message ${i}` })).ok, true);
    }
    const grace = await user("grace");
    const { history } = await grace.emitWithAck("join", "general");
    assert.deepEqual(texts(history), Array.from({ length: 50 }, (_, i) => `message ${i + 10}`));
    assert.ok(history.every((m, i) => m.from === "ada" && m.room === "general" && (i === 0 || m.id > history[i - 1].id)));
    assert.deepEqual((await grace.emitWithAck("join", "random")).history, []);
  });

  test("a room other than general and random forgets its history when its last member leaves", async () => {
    const ada = await user("ada", ["rust", "general"]);
    await ada.emitWithAck("message", { room: "rust", text: "kept while someone is here" });
    await ada.emitWithAck("message", { room: "general", text: "kept for good" });
    const grace = await user("grace", []);
    assert.equal((await grace.emitWithAck("join", "rust")).history.length, 1);
    await grace.emitWithAck("leave", "rust");
    await ada.emitWithAck("leave", "rust");
    await ada.emitWithAck("leave", "general");
    assert.deepEqual((await grace.emitWithAck("join", "rust")).history, []);
    assert.deepEqual(texts((await grace.emitWithAck("join", "general")).history), ["kept for good"]);
  });

  test("every refused message is answered with an error and reaches nobody", async () => {
    const anonymous = await connect();
    assert.deepEqual(await anonymous.emitWithAck("message", { room: "general", text: "hi" }), { error: "pick a nickname first" });
    assert.deepEqual(await anonymous.emitWithAck("join", "general"), { error: "pick a nickname first" });
    assert.deepEqual(await anonymous.emitWithAck("private", { to: "grace", text: "hi" }), { error: "pick a nickname first" });

    const grace = await user("grace", ["general", "random"]);
    await barrier([grace], { clear: true });
    const ada = await user("ada", ["general"]);
    const refused = [
      [{ room: "random", text: "hi" }, "you have not joined #random"],
      [{ room: "general", text: "" }, "message is empty"],
      [{ room: "general", text: " \n\t " }, "message is empty"],
      [{ room: "general", text: "x".repeat(2001) }, "message is longer than 2000 characters"],
      [{ room: "no spaces", text: "hi" }, "room names are 1 to 24 lowercase letters, digits, '-' or '_'"],
      ["hello", "malformed message: expected {room: string, text: string}"],
      [{ room: "general" }, "malformed message: expected {room: string, text: string}"],
      [{ room: "general", text: 42 }, "malformed message: expected {room: string, text: string}"],
      [{ room: ["general"], text: "hi" }, "malformed message: expected {room: string, text: string}"],
      [null, "malformed message: expected {room: string, text: string}"],
    ];
    for (const [payload, error] of refused) {
      assert.deepEqual(await ada.emitWithAck("message", payload), { error }, JSON.stringify(payload));
    }
    assert.deepEqual(await ada.emitWithAck("message"), { error: "malformed message: expected {room: string, text: string}" });
    assert.deepEqual(await ada.emitWithAck("join", "bad/name"), { error: "room names are 1 to 24 lowercase letters, digits, '-' or '_'" });
    assert.deepEqual(await ada.emitWithAck("join", { room: "general" }), { error: "malformed join: expected a room name" });
    // Exactly 2,000 characters is fine.
    assert.equal((await ada.emitWithAck("message", { room: "general", text: "y".repeat(2000) })).ok, true);
    await barrier([grace]);
    assert.deepEqual(grace.got.message.map((m) => m.text.length), [2000]);
    assert.deepEqual((await grace.emitWithAck("join", "general")).history.map((m) => m.text.length), [2000]);
  });
});

describe("typing", () => {
  test("reaches the room's other members only", async () => {
    const ada = await user("ada", ["general"]);
    const grace = await user("grace", ["general"]);
    const alan = await user("alan", ["random"]);
    await barrier([ada, grace, alan], { clear: true });
    const heard = next(grace, "typing");
    ada.emit("typing", { room: "general" }); // as the page sends it: no ack
    assert.deepEqual(await heard, [{ room: "general", nick: "ada" }]);
    assert.deepEqual(await ada.emitWithAck("typing", { room: "general" }), { ok: true });
    // socketioxide sends a volatile packet beside the socket's queue (keeping only the latest
    // unsent one), so an answer queued after it may overtake it: one barrier does not prove it
    // absent. Its writer sends it as soon as the queue is empty, which a second round trip
    // waits for.
    await barrier([ada, alan]);
    await barrier([ada, alan]);
    assert.deepEqual(ada.got.typing, []);
    assert.deepEqual(alan.got.typing, []);
    assert.deepEqual(await alan.emitWithAck("typing", { room: "general" }), { error: "you have not joined #general" });
    assert.deepEqual(await alan.emitWithAck("typing", "general"), { error: "malformed typing: expected {room: string}" });
  });
});

describe("private messages", () => {
  test("reach exactly the one user named, in any case", async () => {
    const ada = await user("ada", ["general"]);
    const grace = await user("grace", ["general"]);
    const alan = await user("alan", ["general"]);
    await barrier([ada, grace, alan], { clear: true });
    const ack = await ada.emitWithAck("private", { to: " GRACE ", text: "just between us" });
    assert.equal(ack.ok, true);
    await barrier([ada, grace, alan]);
    assert.deepEqual(grace.got.private, [{ id: ack.id, from: "ada", to: "grace", text: "just between us", at: ack.at }]);
    assert.deepEqual(ada.got.private, []);
    assert.deepEqual(alan.got.private, []);
    for (const s of [ada, grace, alan]) assert.deepEqual(s.got.message, []);
  });

  test("to nobody, to oneself, empty or malformed are refused", async () => {
    const ada = await user("ada");
    await user("grace");
    assert.deepEqual(await ada.emitWithAck("private", { to: "nobody", text: "hi" }), { error: 'nobody called "nobody" is online' });
    assert.deepEqual(await ada.emitWithAck("private", { to: "ADA", text: "hi" }), { error: "that is you" });
    assert.deepEqual(await ada.emitWithAck("private", { to: "grace", text: "  " }), { error: "message is empty" });
    assert.deepEqual(await ada.emitWithAck("private", { to: "grace", text: "x".repeat(2001) }), { error: "message is longer than 2000 characters" });
    assert.deepEqual(await ada.emitWithAck("private", { to: "grace" }), { error: "malformed private: expected {to: string, text: string}" });
  });
});

describe("the web page", () => {
  test("is served at / and loads the pinned socket.io-client bundle from this server", async () => {
    const page = await fetch(server.url + "/");
    assert.equal(page.status, 200);
    assert.equal(page.headers.get("content-type"), "text/html; charset=utf-8");
    const html = await page.text();
    assert.match(html, /<script src="\/socket\.io\/socket\.io\.min\.js"><\/script>/);
    assert.match(html, /Open this page in a .*second tab.* to chat with yourself/);
    assert.doesNotMatch(html, /<script src="https?:/, "no script from elsewhere");

    for (const [path, type] of [["/app.js", "application/javascript; charset=utf-8"], ["/style.css", "text/css; charset=utf-8"]]) {
      const response = await fetch(server.url + path);
      assert.equal(response.status, 200, path);
      assert.equal(response.headers.get("content-type"), type, path);
    }

    const bundle = await fetch(server.url + "/socket.io/socket.io.min.js");
    assert.equal(bundle.status, 200);
    assert.equal(bundle.headers.get("content-type"), "application/javascript; charset=utf-8");
    assert.equal(bundle.headers.get("cache-control"), "public, max-age=0, must-revalidate");
    const etag = bundle.headers.get("etag");
    assert.match(await bundle.text(), /^\/\*!\n \* Socket\.IO v4\.8\.1\n/);
    const again = await fetch(server.url + "/socket.io/socket.io.min.js", { headers: { "if-none-match": etag } });
    assert.equal(again.status, 304);
    assert.equal((await fetch(server.url + "/socket.io/socket.io.min.js.map")).status, 200);
    assert.equal((await fetch(server.url + "/socket.io/..%2FCargo.toml")).status, 400);
  });
});
