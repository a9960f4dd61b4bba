// The dashboard page: the same topic received three ways. No framework, no third-party code
// besides the stock socket.io-client bundle.
"use strict";

const TOPIC = "metrics";
const panels = {};
for (const section of document.querySelectorAll("[data-transport]")) {
  const field = (name) => section.querySelector(`[data-field="${name}"]`);
  panels[section.dataset.transport] = { count: 0, last: null, field };
}

function status(transport, text, live) {
  const element = panels[transport].field("status");
  element.textContent = text;
  element.classList.toggle("live", live);
}

function show(transport, sample) {
  const panel = panels[transport];
  panel.count += 1;
  panel.last = sample;
  panel.field("value").textContent = sample.value.toFixed(1);
  panel.field("seq").textContent = sample.seq;
  panel.field("count").textContent = panel.count;
  const bars = panel.field("bars");
  const bar = document.createElement("span");
  bar.style.height = `${Math.max(2, Math.min(100, sample.value))}%`;
  bars.append(bar);
  while (bars.children.length > 30) bars.firstChild.remove();
  compare();
}

function compare() {
  const lasts = Object.values(panels).map((p) => p.last);
  const badge = document.getElementById("agreement");
  if (lasts.some((s) => s === null)) return;
  const same = lasts.every((s) => s.seq === lasts[0].seq && s.value === lasts[0].value);
  badge.className = same ? "same" : "differ";
  badge.textContent = same ? `all three agree on sample ${lasts[0].seq}` : "catching up…";
}

// Socket.IO: a namespace bound to the hub; subscribe with an acknowledgement.
const socket = io("/live");
socket.on("connect", async () => {
  const answer = await socket.emitWithAck("subscribe", TOPIC);
  status("socketio", answer.ok ? "live" : `refused: ${answer.error}`, Boolean(answer.ok));
});
socket.on("disconnect", () => status("socketio", "reconnecting…", false));
socket.on("sample", (sample) => show("socketio", sample));

// WebSocket: a control frame subscribes; events arrive as {topic, event, data} envelopes.
function connectWs() {
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
  ws.onopen = () => {
    ws.send(JSON.stringify({ subscribe: TOPIC }));
    status("ws", "live", true);
  };
  ws.onmessage = (message) => {
    const envelope = JSON.parse(message.data);
    if (envelope.topic === TOPIC && envelope.event === "sample") show("ws", envelope.data);
  };
  ws.onclose = () => {
    status("ws", "reconnecting…", false);
    setTimeout(connectWs, 1000);
  };
}
connectWs();

// Server-Sent Events: the topic in the URL; the browser reconnects and resumes by itself.
const events = new EventSource(`/events?topic=${TOPIC}`);
events.addEventListener("ready", () => status("sse", "live", true));
events.addEventListener("sample", (message) => show("sse", JSON.parse(message.data)));
events.onerror = () => status("sse", "reconnecting…", false);
