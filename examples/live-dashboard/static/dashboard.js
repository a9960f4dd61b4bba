// The dashboard page: the same topic received three ways, each resuming from the id of the
// last event it got when its connection comes back. No framework, no third-party code besides
// the stock socket.io-client bundle.
//
// Every hub event has one id on all three transports, "<epoch>;metrics:<seq>": seq numbers the
// topic's events 1, 2, 3, ... Ids are opaque to a client; the page reads the number after the
// last ':' only to show it and to count what would betray a broken resume: a number that skips
// ahead (a gap), one that comes again or goes back (a duplicate), and the server's `resync`
// (history no longer reached back to the id, or the id is of another history).
//
// State, for people and tests: window.dashboard.panels.<socketio|ws|sse> has running totals
// (received, gaps, duplicates, resyncs, reconnects), the last seq and id, and `seqs`, the last
// KEEP_SEQS numbers received in order (bounded, so the page can run for days).
"use strict";

const TOPIC = "metrics";
const KEEP_SEQS = 2000;
const COUNTERS = ["received", "gaps", "duplicates", "resyncs", "reconnects"];

const panels = {};
for (const section of document.querySelectorAll("[data-transport]")) {
  const field = (name) => section.querySelector(`[data-field="${name}"]`);
  panels[section.dataset.transport] = {
    received: 0,
    gaps: 0,
    duplicates: 0,
    resyncs: 0,
    reconnects: 0,
    lastId: null,
    epoch: null,
    lastSeq: null,
    seqs: [],
    sample: null,
    field,
  };
}
window.dashboard = { panels };

function status(transport, text, live) {
  const element = panels[transport].field("status");
  element.textContent = text;
  element.classList.toggle("live", live);
}

function render(transport) {
  const panel = panels[transport];
  for (const name of COUNTERS) panel.field(name).textContent = panel[name];
  for (const name of ["gaps", "duplicates", "resyncs"]) {
    panel.field(name).classList.toggle("bad", panel[name] > 0);
  }
}

/** `"<epoch>;<topic>:<seq>"` as `{ epoch, seq }`, or null for an id of another shape. */
function parseId(id) {
  const semicolon = typeof id === "string" ? id.indexOf(";") : -1;
  const seq = semicolon < 0 ? NaN : Number(id.slice(id.lastIndexOf(":") + 1));
  return Number.isInteger(seq) ? { epoch: id.slice(0, semicolon), seq } : null;
}

function show(transport, sample, id) {
  const panel = panels[transport];
  const parsed = parseId(id);
  panel.received += 1;
  panel.lastId = id ?? panel.lastId;
  if (parsed) {
    // A new epoch is a new history (an in-memory server restarted): its numbers start over,
    // and the server said so with a resync, counted there.
    if (panel.lastSeq !== null && parsed.epoch === panel.epoch) {
      if (parsed.seq > panel.lastSeq + 1) panel.gaps += 1;
      if (parsed.seq <= panel.lastSeq) panel.duplicates += 1;
    }
    panel.epoch = parsed.epoch;
    panel.lastSeq = parsed.seq;
    panel.seqs.push(parsed.seq);
    if (panel.seqs.length > KEEP_SEQS) panel.seqs.splice(0, panel.seqs.length - KEEP_SEQS);
  }
  panel.sample = sample;
  panel.field("value").textContent = sample.value.toFixed(1);
  panel.field("seq").textContent = parsed ? parsed.seq : "–";
  render(transport);
  const bars = panel.field("bars");
  const bar = document.createElement("span");
  bar.style.height = `${Math.max(2, Math.min(100, sample.value))}%`;
  bars.append(bar);
  while (bars.children.length > 30) bars.firstChild.remove();
  compare();
}

/** The server's `resync`: the position is lost, what follows is live from now. */
function resync(transport, data) {
  const panel = panels[transport];
  panel.resyncs += 1;
  panel.lastSeq = null; // the next number is a new start, neither a gap nor a duplicate
  render(transport);
  console.warn(`${transport}: resync`, data);
}

function compare() {
  const all = Object.values(panels);
  const badge = document.getElementById("agreement");
  if (all.some((p) => p.sample === null)) return;
  const [first] = all;
  const same = all.every((p) => p.lastSeq === first.lastSeq && p.sample.value === first.sample.value);
  badge.className = same ? "same" : "differ";
  badge.textContent = same ? `all three agree on event ${first.lastSeq}` : "catching up…";
}

// Socket.IO: a namespace bound to the hub. `auth` is asked at every (re)connection: with the
// last id, the server subscribes the socket and replays what it missed before going on live.
const socket = io("/live", {
  auth: (cb) => cb(panels.socketio.lastId ? { since: panels.socketio.lastId } : {}),
});
let socketConnected = false;
async function subscribe() {
  const answer = await socket.emitWithAck("subscribe", TOPIC);
  status("socketio", answer.ok ? "live" : `refused: ${answer.error}`, Boolean(answer.ok));
}
socket.on("connect", () => {
  if (socketConnected) panels.socketio.reconnects += 1;
  socketConnected = true;
  render("socketio");
  // Subscribing again would be a no-op: auth.since subscribed this socket already.
  if (panels.socketio.lastId) status("socketio", "live (resumed)", true);
  else subscribe();
});
socket.on("disconnect", (reason) => {
  status("socketio", "reconnecting…", false);
  if (reason === "io server disconnect") socket.connect(); // not retried by the client itself
});
socket.on("sample", (sample, meta) => show("socketio", sample, meta?.id));
socket.on("resync", (data) => {
  resync("socketio", data);
  subscribe(); // live from now (a no-op when the server kept the socket subscribed)
});

// WebSocket: a control frame subscribes, with the last id to resume; events arrive as
// {topic, event, data, id} envelopes. The page reconnects by itself.
let wsOpened = false;
function connectWs() {
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
  ws.onopen = () => {
    if (wsOpened) panels.ws.reconnects += 1;
    wsOpened = true;
    render("ws");
    const since = panels.ws.lastId;
    ws.send(JSON.stringify(since ? { subscribe: TOPIC, since } : { subscribe: TOPIC }));
  };
  ws.onmessage = (message) => {
    const frame = JSON.parse(message.data);
    if (frame.subscribed === TOPIC) status("ws", panels.ws.lastId ? "live (resumed)" : "live", true);
    else if (frame.event === "resync" && frame.topic === undefined) resync("ws", frame.data);
    else if (frame.topic === TOPIC && frame.event === "sample") show("ws", frame.data, frame.id);
    else if (frame.error) status("ws", `refused: ${frame.error}`, false);
  };
  ws.onclose = () => {
    status("ws", "reconnecting…", false);
    setTimeout(connectWs, 1000);
  };
}
connectWs();

// Server-Sent Events: the topic in the URL; the browser reconnects by itself and sends the
// last id it saw (Last-Event-ID), from which the server replays.
const events = new EventSource(`/events?topic=${TOPIC}`);
let sseOpened = false;
events.addEventListener("ready", () => {
  if (sseOpened) panels.sse.reconnects += 1;
  sseOpened = true;
  render("sse");
  status("sse", panels.sse.lastId ? "live (resumed)" : "live", true);
});
events.addEventListener("sample", (message) => show("sse", JSON.parse(message.data), message.lastEventId));
events.addEventListener("resync", (message) => resync("sse", JSON.parse(message.data)));
events.onerror = () => status("sse", "reconnecting…", false);
