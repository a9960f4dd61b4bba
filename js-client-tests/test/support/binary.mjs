// The binary round trip every client kind must pass: 70,000 patterned bytes sent to the
// fixture's `binary` event come back unchanged, in its ack and in the event it emits back.
import assert from "node:assert/strict";
import { next } from "./server.mjs";

/** Emits `event` with `args` and resolves with the arguments of its acknowledgement. */
export function ask(socket, event, ...args) {
  return new Promise((resolve) => socket.emit(event, ...args, (...answer) => resolve(answer)));
}

/** Sends a Buffer as `binary` on `socket` and checks both ways back, byte for byte. */
export async function assertBinaryRoundTrip(socket) {
  const bytes = Buffer.alloc(70_000);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31) & 0xff;
  const event = next(socket, "binary");
  const [name, length, file] = await ask(socket, "binary", "blob.bin", bytes);
  assert.equal(name, "blob.bin");
  assert.equal(length, bytes.length);
  assert.ok(Buffer.from(file).equals(bytes), "ack bytes equal");
  const [eventName, eventFile] = await event;
  assert.equal(eventName, "blob.bin");
  assert.ok(Buffer.from(eventFile).equals(bytes), "event bytes equal");
}
