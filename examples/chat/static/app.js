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
/**
 * Waits before asking for the nickname again when it is still taken on reconnection: the server
 * may not have seen the previous connection (or the page before a reload) go yet.
 */
const RECLAIM_RETRY_MS = [250, 500, 1000, 2000, 4000];
/** Where a tab keeps its nickname, rooms and unsent messages across reloads. */
const SESSION_KEY = "tongxun-chat";
/** What a request gets when the page is offline (it is not sent: see `request`). */
const OFFLINE = "you are offline: try again once reconnected";

const $ = (id) => document.getElementById(id);

/**
 * What the page knows. A conversation is a room (`#general`) or a private exchange with one
 * user (`@grace`): { key, kind, name, joined, items, unread, members, typing }.
 *
 * `ready` says the nickname is held and the rooms are joined on the current connection: only
 * then does the page send messages. Until then they wait in `outbox`, oldest first, shown as
 * "not sent yet" ({ conv, item, text, fresh, tried }). The page never emits while disconnected,
 * so socket.io-client's own send buffer, which would flush them on reconnection before the
 * nickname is claimed again, stays empty.
 */
const state = {
  nick: null,
  ready: false,
  /** Counts (re)connections, so that a restore overtaken by a newer one stops. */
  run: 0,
  current: null,
  conversations: new Map(),
  outbox: [],
  flushing: false,
  lastTypingSent: 0,
};

// closeOnBeforeunload: a reload closes the connection at once, freeing the nickname for the
// reloaded page.
const socket = io("/chat", { closeOnBeforeunload: true });

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

/**
 * Emits `event` and resolves with the server's answer, or with `{error}` if none came in time.
 * Offline, nothing is emitted (socket.io-client would buffer it and send it on reconnection,
 * before the nickname is back): the answer is `{error, lost: true}`, as it is for a request
 * the connection dropped before its answer came.
 */
function request(event, payload) {
  if (!socket.connected) return Promise.resolve({ error: OFFLINE, lost: true });
  return socket
    .timeout(ANSWER_TIMEOUT_MS)
    .emitWithAck(event, payload)
    .catch(() => (socket.connected ? { error: "no answer from the server" } : { error: OFFLINE, lost: true }));
}

/** Resolves with whether the socket is connected, waiting up to `ms` for it. */
function whenConnected(ms) {
  if (socket.connected) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      socket.off("connect", done);
      resolve(socket.connected);
    };
    const timer = setTimeout(done, ms);
    socket.on("connect", done);
  });
}

const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

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

/**
 * Claims a nickname typed in the prompt: the first one joins #general; one replacing a nickname
 * taken while the page was offline rejoins the rooms and sends what waited. Resolves with the
 * error to show, or null.
 */
async function chooseNick(nick) {
  // The page may still be connecting when someone signs in at once.
  if (state.nick === null) await whenConnected(ANSWER_TIMEOUT_MS);
  const answer = await request("nick", nick);
  if (answer.error) return answer.error;
  const first = state.nick === null;
  const resuming = !first && !state.ready;
  setNick(answer.ok);
  $("login").hidden = true;
  $("app").hidden = false;
  if (first) {
    await joinRoom("general");
    state.ready = true;
    flush();
  } else if (resuming) {
    // This nickname replaces the one being reclaimed: a restore still asking for that stops.
    await resume(++state.run);
  }
  saveSession();
  $("text").focus();
  return null;
}

function setNick(nick) {
  state.nick = nick;
  $("me").textContent = nick;
}

/**
 * After a connection, claims the nickname again (retrying for a while if the server still
 * thinks the previous connection holds it), rejoins the rooms and sends what waited. If the
 * nickname is taken, says so and keeps the messages waiting until another is chosen.
 */
async function restore() {
  const run = ++state.run;
  setConnection("connecting", `reconnecting as ${state.nick}…`);
  let answer;
  let taken = false;
  for (const wait of [...RECLAIM_RETRY_MS, null]) {
    answer = await request("nick", state.nick);
    if (stale(run)) return;
    taken = / is taken$/.test(answer.error ?? "");
    if (!taken || wait === null) break;
    await delay(wait);
    if (stale(run)) return;
  }
  if (answer.error) {
    setConnection("connected", "online, without a nickname");
    const waiting = state.outbox.length;
    const message =
      `${answer.error}${taken ? ": someone took your nickname while you were away" : ""}. Pick another` +
      (waiting ? ` to send your ${waiting} waiting ${waiting === 1 ? "message" : "messages"}.` : ".");
    showError(message);
    $("nick-input").value = state.nick;
    $("nick-error").textContent = message;
    $("login").hidden = false;
    return;
  }
  setNick(answer.ok);
  await resume(run);
}

/** Whether restore `run` was overtaken by a disconnection or a newer connection. */
const stale = (run) => run !== state.run || !socket.connected;

/** Rejoins the rooms, then sends the messages that waited. */
async function resume(run) {
  for (const conv of [...state.conversations.values()]) {
    if (conv.kind === "room" && conv.joined) await joinRoom(conv.name, true);
    if (stale(run)) return;
  }
  state.ready = true;
  setConnection("connected", "online");
  saveSession();
  if (!state.conversations.has(state.current)) show(roomKey(DEFAULT_ROOMS[0]));
  flush();
}

/**
 * Joins a room and shows it. Rejoining after a reconnection or a reload is quiet: the
 * conversation stays as it was, with what was said meanwhile merged in.
 */
async function joinRoom(name, rejoining = false) {
  const answer = await request("join", name);
  if (answer.error) {
    if (rejoining && !answer.lost) {
      const conv = room(name);
      conv.joined = false;
      notice(conv, `Could not rejoin #${name}: ${answer.error}`);
      if (conv.key === state.current) renderConversation();
    }
    // Dropped again while rejoining: the next connection rejoins, nothing to say.
    if (!(rejoining && answer.lost)) showError(answer.error);
    return;
  }
  const conv = room(answer.room);
  if (conv.joined && !rejoining) {
    show(conv.key); // already in it: nothing changed
    return;
  }
  const seenBefore = conv.items.length > 0;
  conv.joined = true;
  conv.members = answer.members;
  const added = mergeHistory(conv, answer.history);
  if (rejoining) {
    notice(conv, seenBefore ? "Reconnected" : `You are in #${answer.room}`);
    if (conv.key === state.current) renderConversation();
    else {
      conv.unread += added;
      renderChannels();
    }
  } else {
    notice(conv, `You joined #${answer.room}`);
    saveSession();
    show(conv.key);
  }
}

/**
 * Adds the messages of a room's `history` that the conversation does not show yet, each in its
 * place by time, and resolves the page's own messages whose answer a dropped connection lost
 * but which the server has. Returns how many were added.
 *
 * A message is known by its id, time and sender together. Ids are unique across the chat's
 * servers; the time and sender keep a message sent while Redis was away (numbered by its
 * server alone) from being taken for another.
 */
function mergeHistory(conv, history) {
  const seen = new Set(conv.items.filter((i) => i.type === "message" && i.id !== undefined).map(messageKey));
  let added = 0;
  for (const m of history) {
    const item = messageItem(m);
    if (seen.has(messageKey(item))) continue;
    seen.add(messageKey(item));
    const lost = state.outbox.findIndex((e) => e.conv === conv && e.tried && e.item.text === item.text && item.own);
    if (lost !== -1) {
      const [entry] = state.outbox.splice(lost, 1);
      entry.item.id = item.id;
      entry.item.at = item.at;
      setStatus(entry.item, "delivered");
      continue;
    }
    const at = conv.items.findIndex((i) => i.at > item.at);
    conv.items.splice(at === -1 ? conv.items.length : at, 0, item);
    added += 1;
  }
  return added;
}

const messageKey = (item) => `${item.id}/${item.at}/${item.from}`;

/** Whether message `m` of the server is already in `conv`. */
const shown = (conv, m) => {
  const key = messageKey(m);
  return conv.items.some((i) => i.type === "message" && i.id !== undefined && messageKey(i) === key);
};

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
  saveSession();
}

function messageItem(m) {
  return { type: "message", id: m.id, from: m.from, text: m.text, at: m.at, own: m.from === state.nick };
}

/**
 * Sends the composer's text to the shown conversation, marking it delivered when acknowledged.
 * Offline (or while the nickname and rooms are being restored) it waits in the outbox.
 */
async function send() {
  const conv = state.conversations.get(state.current);
  const input = $("text");
  const text = input.value;
  if (!conv) return;
  input.value = "";
  autosize();
  state.lastTypingSent = 0; // the next keystroke is news again
  const online = state.ready && socket.connected;
  if (!text.trim()) {
    // Nothing to show for a blank message: the server's refusal is shown instead.
    const answer = online ? await deliver(conv, text) : { error: "message is empty" };
    if (answer.error) showError(answer.error);
    return;
  }
  const status = online ? "sending" : "pending";
  const item = add(conv, { type: "message", from: state.nick, text: text.trim(), at: Date.now(), own: true, status });
  // A message sent at once, and refused, goes back to the composer; one that waited is marked.
  const fresh = online && state.outbox.length === 0;
  state.outbox.push({ conv, item, text, fresh, tried: false });
  saveSession();
  flush();
}

/** Sends `text` to a room or a person. */
function deliver(conv, text) {
  return conv.kind === "room"
    ? request("message", { room: conv.name, text })
    : request("private", { to: conv.name, text });
}

/**
 * Sends the outbox, one message at a time so that they arrive in order, while the page is
 * ready. A message whose connection dropped before its answer stays first, to be sent again
 * after the reconnection (unless the room's history shows the server has it).
 */
async function flush() {
  if (state.flushing) return;
  state.flushing = true;
  try {
    while (state.ready && socket.connected && state.outbox.length > 0) {
      const entry = state.outbox[0];
      const { conv, item, text } = entry;
      entry.tried = true;
      if (item.status !== "sending") setStatus(item, "sending");
      const answer = await deliver(conv, text);
      if (answer.lost) {
        if (state.outbox[0] === entry) setStatus(item, "pending");
        break;
      }
      if (state.outbox[0] === entry) state.outbox.shift();
      if (answer.error) {
        showError(answer.error);
        const input = $("text");
        if (entry.fresh && input.value === "" && conv.key === state.current) {
          // Not sent: the text goes back to the composer to be fixed.
          conv.items.splice(conv.items.indexOf(item), 1);
          item.el?.remove();
          input.value = text;
          autosize();
        } else {
          setStatus(item, "failed", answer.error);
        }
      } else {
        item.id = answer.id;
        item.at = answer.at;
        // `local`: the server could not reach the other chat servers (Redis is away).
        setStatus(item, answer.local ? "local" : "delivered");
      }
      saveSession();
    }
  } finally {
    state.flushing = false;
  }
}

function setStatus(item, status, reason) {
  item.status = status;
  item.reason = reason;
  if (item.el) item.el.replaceWith(renderItem(item));
}

function sendTyping() {
  const conv = state.conversations.get(state.current);
  if (!state.ready || !conv || conv.kind !== "room" || !conv.joined) return;
  const now = Date.now();
  if (now - state.lastTypingSent < TYPING_EVERY_MS) return;
  state.lastTypingSent = now;
  socket.volatile.emit("typing", { room: conv.name });
}

// ---- events from the server ----

socket.on("connect", () => {
  setConnection("connected", "online");
  // A new connection after a drop or a reload: claim the nickname again and rejoin the rooms.
  if (state.nick !== null) restore();
});

socket.on("disconnect", () => {
  state.ready = false;
  setConnection("disconnected", "offline, reconnecting…");
  if (state.nick === null) return;
  for (const conv of state.conversations.values()) {
    if (conv.kind !== "room" || !conv.joined) continue;
    for (const nick of [...conv.typing.keys()]) stopTyping(conv, nick);
    notice(conv, "Connection lost: what you send now waits until it is back");
  }
});
socket.on("connect_error", () => setConnection("disconnected", "cannot reach the server, retrying…"));

socket.on("message", (m) => {
  const conv = room(m.room);
  stopTyping(conv, m.from);
  // A server that lost Redis for a while sends its rooms' recent messages again once it is
  // back: those already on screen are skipped.
  if (shown(conv, m)) return;
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
  setMembersOpen(false);
  renderChannels();
  renderConversation();
  saveSession();
}

/** Opens or closes the member list, a drawer on narrow screens. */
function setMembersOpen(open) {
  $("app").classList.toggle("members-open", open);
  $("members-toggle").setAttribute("aria-expanded", String(open));
  $("members-backdrop").hidden = !open;
}

// ---- the tab's session ----

/** Keeps the nickname, rooms, shown conversation and unsent messages for a reload of this tab. */
function saveSession() {
  if (state.nick === null) return;
  const convs = [...state.conversations.values()];
  const session = {
    nick: state.nick,
    rooms: convs.filter((c) => c.kind === "room" && c.joined).map((c) => c.name),
    directs: convs.filter((c) => c.kind === "direct").map((c) => c.name),
    current: state.current,
    outbox: state.outbox.map(({ conv, item, text, tried }) => ({
      kind: conv.kind,
      name: conv.name,
      text,
      at: item.at,
      tried,
    })),
  };
  try {
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  } catch {
    // Storage full or disabled: a reload will ask for the nickname again.
  }
}

function loadSession() {
  try {
    return JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? "null");
  } catch {
    return null;
  }
}

/**
 * Picks up where a reload left off: the page shows the saved rooms at once, and the connection
 * claims the nickname and rejoins them (see `restore`).
 */
function resumeSession(session) {
  if (typeof session?.nick !== "string") return;
  setNick(session.nick);
  for (const name of session.rooms ?? []) room(name).joined = true;
  for (const name of session.directs ?? []) direct(name);
  for (const saved of session.outbox ?? []) {
    const conv = saved.kind === "room" ? room(saved.name) : direct(saved.name);
    const text = String(saved.text);
    const item = { type: "message", from: state.nick, text: text.trim(), at: saved.at, own: true, status: "pending" };
    conv.items.push(item);
    state.outbox.push({ conv, item, text, fresh: false, tried: Boolean(saved.tried) });
  }
  $("login").hidden = true;
  $("app").hidden = false;
  show(state.conversations.has(session.current) ? session.current : roomKey(DEFAULT_ROOMS[0]));
}

/** Forgets the session and starts over with the nickname prompt. */
function signOut() {
  const waiting = state.outbox.length;
  if (waiting && !confirm(`${waiting} ${waiting === 1 ? "message is" : "messages are"} not sent yet. Sign out anyway?`)) {
    return;
  }
  state.nick = null;
  sessionStorage.removeItem(SESSION_KEY);
  socket.disconnect();
  location.reload();
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
  $("members-toggle").hidden = !usable;
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
      pending: "◷ not sent yet",
      sending: "sending…",
      delivered: "✓ delivered",
      local: "✓ sent to this server only",
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
  $("members-count").textContent = members.length;
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

$("sign-out").addEventListener("click", signOut);

$("members-toggle").addEventListener("click", () => setMembersOpen(!$("app").classList.contains("members-open")));
$("members-close").addEventListener("click", () => setMembersOpen(false));
$("members-backdrop").addEventListener("click", () => setMembersOpen(false));
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && $("app").classList.contains("members-open")) setMembersOpen(false);
});

resumeSession(loadSession());
