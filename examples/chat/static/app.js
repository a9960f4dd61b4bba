// The chat page: plain DOM code over the stock socket.io-client (`window.io`, loaded from
// /socket.io/socket.io.min.js, served by tongxun from the npm package). The protocol it speaks is described in src/chat.rs.
"use strict";

/** Rooms always listed, as on the server. */
const DEFAULT_ROOMS = ["general", "random"];
/** How long "ada is typing…" stays after the last signal. */
const TYPING_SHOWN_MS = 3000;
/** The least time between two "typing" signals this page sends. */
const TYPING_EVERY_MS = 1000;
/** How long a request waits for the server's answer. */
const ANSWER_TIMEOUT_MS = 10000;
/** How long an error stays on screen. */
const ERROR_SHOWN_MS = 8000;

const $ = (id) => document.getElementById(id);

/**
 * What the page knows. A conversation is a room (`#general`) or a private exchange with one
 * user (`@grace`): { key, kind, name, joined, items, unread, members, typing }.
 */
const state = {
  nick: null,
  current: null,
  conversations: new Map(),
  lastTypingSent: 0,
};

const socket = io("/chat");

// ---- conversations ----

const roomKey = (room) => `#${room}`;
const directKey = (nick) => `@${nick.toLowerCase()}`;

function conversation(key, kind, name) {
  let conv = state.conversations.get(key);
  if (!conv) {
    conv = { key, kind, name, joined: false, items: [], unread: 0, members: [], typing: new Map() };
    state.conversations.set(key, conv);
  }
  return conv;
}

const room = (name) => conversation(roomKey(name), "room", name);
const direct = (nick) => conversation(directKey(nick), "direct", nick);

/** Adds a message or notice to a conversation; draws it if shown, else counts it unread. */
function add(conv, item) {
  conv.items.push(item);
  if (conv.key === state.current) {
    appendItem(item);
  } else if (item.type === "message") {
    conv.unread += 1;
    renderChannels();
  }
  return item;
}

function notice(conv, text, at = Date.now()) {
  return add(conv, { type: "notice", text, at });
}

// ---- requests ----

/** Emits `event` and resolves with the server's answer, or `{error}` if none came in time. */
function request(event, payload) {
  return socket
    .timeout(ANSWER_TIMEOUT_MS)
    .emitWithAck(event, payload)
    .catch(() => ({ error: "no answer from the server (are you offline?)" }));
}

let errorTimer;
function showError(message) {
  const banner = $("error");
  banner.textContent = message;
  banner.hidden = false;
  clearTimeout(errorTimer);
  errorTimer = setTimeout(hideError, ERROR_SHOWN_MS);
}

function hideError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

async function chooseNick(nick) {
  const answer = await request("nick", nick);
  if (answer.error) return answer.error;
  const first = state.nick === null;
  state.nick = answer.ok;
  $("me").textContent = state.nick;
  $("login").hidden = true;
  $("app").hidden = false;
  if (first) await joinRoom("general");
  $("text").focus();
  return null;
}

/** Joins a room and shows it; after a reconnection, rejoins it quietly. */
async function joinRoom(name, reconnecting = false) {
  const answer = await request("join", name);
  if (answer.error) {
    showError(answer.error);
    return;
  }
  const conv = room(answer.room);
  if (conv.joined && !reconnecting) {
    show(conv.key); // already in it: nothing changed
    return;
  }
  conv.joined = true;
  conv.members = answer.members;
  conv.items = answer.history.map((m) => messageItem(m));
  if (reconnecting) {
    notice(conv, "Reconnected");
    if (state.current === conv.key) show(conv.key);
  } else {
    notice(conv, `You joined #${answer.room}`);
    show(conv.key);
  }
}

async function leaveRoom(conv) {
  const answer = await request("leave", conv.name);
  if (answer.error) {
    showError(answer.error);
    return;
  }
  conv.joined = false;
  conv.members = [];
  conv.typing.clear();
  if (!DEFAULT_ROOMS.includes(conv.name)) state.conversations.delete(conv.key);
  else notice(conv, `You left #${conv.name}`);
  const next = [...state.conversations.values()].find((c) => c.kind === "room" && c.joined);
  show(next ? next.key : roomKey(DEFAULT_ROOMS[0]));
}

function messageItem(m) {
  return { type: "message", id: m.id, from: m.from, text: m.text, at: m.at, own: m.from === state.nick };
}

/** Sends the composer's text to the shown conversation, marking it delivered when acknowledged. */
async function send() {
  const conv = state.conversations.get(state.current);
  const input = $("text");
  const text = input.value;
  if (!conv) return;
  input.value = "";
  autosize();
  state.lastTypingSent = 0; // the next keystroke is news again
  // Nothing to show for a blank message: the server's refusal is shown instead.
  const item = text.trim()
    ? add(conv, { type: "message", from: state.nick, text: text.trim(), at: Date.now(), own: true, status: "sending" })
    : null;
  const answer =
    conv.kind === "room"
      ? await request("message", { room: conv.name, text })
      : await request("private", { to: conv.name, text });
  if (answer.error) {
    showError(answer.error);
    if (item && input.value === "") {
      // Not sent: the text goes back to the composer to be fixed.
      conv.items.splice(conv.items.indexOf(item), 1);
      item.el?.remove();
      input.value = text;
      autosize();
    } else if (item) {
      setStatus(item, "failed", answer.error);
    }
    return;
  }
  if (item) {
    item.id = answer.id;
    item.at = answer.at;
    setStatus(item, "delivered");
  }
}

function setStatus(item, status, reason) {
  item.status = status;
  item.reason = reason;
  if (item.el) item.el.replaceWith(renderItem(item));
}

function sendTyping() {
  const conv = state.conversations.get(state.current);
  if (!conv || conv.kind !== "room" || !conv.joined) return;
  const now = Date.now();
  if (now - state.lastTypingSent < TYPING_EVERY_MS) return;
  state.lastTypingSent = now;
  socket.volatile.emit("typing", { room: conv.name });
}

// ---- events from the server ----

socket.on("connect", async () => {
  setConnection("connected", "online");
  if (state.nick === null) return;
  // A new connection after a drop: claim the nickname again and rejoin the rooms.
  const error = await chooseNick(state.nick);
  if (error) {
    $("app").hidden = true;
    $("login").hidden = false;
    $("nick-error").textContent = error;
    return;
  }
  for (const conv of state.conversations.values()) {
    if (conv.kind === "room" && conv.joined) await joinRoom(conv.name, true);
  }
});

socket.on("disconnect", () => setConnection("disconnected", "offline, reconnecting…"));
socket.on("connect_error", () => setConnection("disconnected", "cannot reach the server, retrying…"));

socket.on("message", (m) => {
  const conv = room(m.room);
  stopTyping(conv, m.from);
  add(conv, messageItem(m));
});

socket.on("private", (m) => {
  const conv = direct(m.from);
  add(conv, messageItem(m));
  renderChannels();
});

socket.on("notice", (n) => notice(room(n.room), n.text, n.at));

socket.on("members", ({ room: name, members }) => {
  const conv = room(name);
  conv.members = members;
  if (conv.key === state.current) {
    renderMembers();
    renderSubtitle();
  }
});

socket.on("typing", ({ room: name, nick }) => {
  const conv = room(name);
  clearTimeout(conv.typing.get(nick));
  conv.typing.set(nick, setTimeout(() => stopTyping(conv, nick), TYPING_SHOWN_MS));
  if (conv.key === state.current) renderTyping();
});

function stopTyping(conv, nick) {
  clearTimeout(conv.typing.get(nick));
  if (conv.typing.delete(nick) && conv.key === state.current) renderTyping();
}

function setConnection(stateName, text) {
  const status = $("status");
  status.dataset.state = stateName;
  status.textContent = text;
}

// ---- drawing ----

/** Shows a conversation. */
function show(key) {
  state.current = key;
  const conv = state.conversations.get(key);
  if (conv) conv.unread = 0;
  renderChannels();
  renderConversation();
}

function renderChannels() {
  const rooms = $("rooms");
  rooms.replaceChildren();
  const names = [...DEFAULT_ROOMS];
  for (const conv of state.conversations.values()) {
    if (conv.kind === "room" && !names.includes(conv.name)) names.push(conv.name);
  }
  for (const name of names) {
    const conv = state.conversations.get(roomKey(name));
    rooms.append(channel(`#${name}`, roomKey(name), conv, `room-${name}`, () =>
      conv?.joined ? show(conv.key) : joinRoom(name),
    ));
  }
  const directs = $("directs");
  directs.replaceChildren();
  for (const conv of state.conversations.values()) {
    if (conv.kind === "direct") {
      directs.append(channel(`@${conv.name}`, conv.key, conv, `direct-${conv.name}`, () => show(conv.key)));
    }
  }
  $("directs-empty").hidden = directs.children.length > 0;
}

function channel(label, key, conv, testid, onClick) {
  const li = document.createElement("li");
  const button = document.createElement("button");
  button.className = "channel";
  button.dataset.testid = testid;
  if (key === state.current) button.setAttribute("aria-current", "true");
  if (conv?.joined || conv?.kind === "direct") button.classList.add("joined");
  const name = document.createElement("span");
  name.textContent = label;
  button.append(name);
  if (conv?.unread) {
    const badge = document.createElement("span");
    badge.className = "badge";
    badge.dataset.testid = "unread";
    badge.textContent = conv.unread;
    button.append(badge);
  }
  button.addEventListener("click", onClick);
  li.append(button);
  return li;
}

function renderConversation() {
  const conv = state.conversations.get(state.current);
  const inRoom = conv?.kind === "room" && conv.joined;
  const usable = inRoom || conv?.kind === "direct";
  $("title").textContent = conv ? (conv.kind === "room" ? `#${conv.name}` : `@${conv.name}`) : "";
  renderSubtitle();
  $("leave").hidden = !inRoom;
  $("empty").hidden = usable;
  $("composer").hidden = !usable;
  $("text").placeholder = conv ? `Message ${$("title").textContent}` : "";
  const list = $("messages");
  list.replaceChildren();
  for (const item of conv?.items ?? []) appendItem(item);
  renderTyping();
  renderMembers();
}

function renderSubtitle() {
  const conv = state.conversations.get(state.current);
  const count = conv?.members.length ?? 0;
  $("subtitle").textContent = !conv
    ? ""
    : conv.kind === "direct"
      ? "private conversation"
      : conv.joined
        ? `${count} ${count === 1 ? "member" : "members"}`
        : "you are not in this room";
}

function appendItem(item) {
  const list = $("messages");
  const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  list.append(renderItem(item));
  if (nearBottom || item.own) list.scrollTop = list.scrollHeight;
}

function renderItem(item) {
  const li = document.createElement("li");
  item.el = li;
  if (item.type === "notice") {
    li.className = "notice";
    li.dataset.testid = "notice";
    li.textContent = item.text;
    return li;
  }
  li.className = item.own ? "message own" : "message";
  li.dataset.testid = "message";
  li.dataset.from = item.from;
  li.append(avatar(item.from));
  const bubble = document.createElement("div");
  bubble.className = "bubble";
  const meta = document.createElement("div");
  meta.className = "meta";
  const from = document.createElement("span");
  from.className = "from";
  from.textContent = item.own ? "you" : item.from;
  const time = document.createElement("time");
  time.textContent = clock(item.at);
  meta.append(from, time);
  const text = document.createElement("div");
  text.className = "text";
  text.dataset.testid = "message-text";
  text.textContent = item.text;
  bubble.append(meta, text);
  if (item.own && item.status) {
    const tick = document.createElement("div");
    tick.className = `tick ${item.status}`;
    tick.dataset.testid = item.status;
    tick.textContent = {
      sending: "sending…",
      delivered: "✓ delivered",
      failed: `✗ not delivered: ${item.reason}`,
    }[item.status];
    bubble.append(tick);
  }
  li.append(bubble);
  return li;
}

function avatar(nick) {
  const span = document.createElement("span");
  span.className = "avatar";
  span.textContent = [...nick][0]?.toUpperCase() ?? "?";
  span.style.setProperty("--hue", hue(nick));
  return span;
}

/** A stable colour for a nickname. */
function hue(nick) {
  let h = 0;
  for (const c of nick.toLowerCase()) h = (h * 31 + c.codePointAt(0)) % 360;
  return h;
}

function clock(at) {
  return new Date(at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function renderTyping() {
  const conv = state.conversations.get(state.current);
  const nicks = conv ? [...conv.typing.keys()] : [];
  $("typing").textContent =
    nicks.length === 0
      ? ""
      : nicks.length === 1
        ? `${nicks[0]} is typing…`
        : nicks.length === 2
          ? `${nicks[0]} and ${nicks[1]} are typing…`
          : "several people are typing…";
}

function renderMembers() {
  const conv = state.conversations.get(state.current);
  const list = $("members");
  list.replaceChildren();
  let members = [];
  if (conv?.kind === "room") {
    members = conv.members;
    $("members-title").textContent = `In #${conv.name} (${members.length})`;
  } else if (conv?.kind === "direct") {
    members = [state.nick, conv.name];
    $("members-title").textContent = "Private between";
  }
  for (const nick of members) {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.className = "member";
    button.dataset.testid = "member";
    button.dataset.nick = nick;
    const self = nick === state.nick;
    button.title = self ? "This is you" : `Message ${nick} privately`;
    button.disabled = self;
    const name = document.createElement("span");
    name.textContent = self ? `${nick} (you)` : nick;
    button.append(avatar(nick), name);
    button.addEventListener("click", () => show(direct(nick).key));
    li.append(button);
    list.append(li);
  }
}

function autosize() {
  const input = $("text");
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, 160)}px`;
}

// ---- wiring ----

$("nick-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("nick-error").textContent = "";
  const error = await chooseNick($("nick-input").value);
  if (error) $("nick-error").textContent = error;
});

$("me").addEventListener("click", () => {
  $("nick-input").value = state.nick ?? "";
  $("nick-error").textContent = "";
  $("login").hidden = false;
  $("nick-input").select();
});

$("login").addEventListener("keydown", (event) => {
  if (event.key === "Escape" && state.nick !== null) $("login").hidden = true;
});

$("join-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const name = $("join-input").value;
  $("join-input").value = "";
  joinRoom(name);
});

$("leave").addEventListener("click", () => {
  const conv = state.conversations.get(state.current);
  if (conv?.kind === "room" && conv.joined) leaveRoom(conv);
});

$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  send();
});

$("text").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    send();
  }
});

$("text").addEventListener("input", () => {
  autosize();
  if ($("text").value.trim()) sendTyping();
});

$("error").addEventListener("click", hideError);
