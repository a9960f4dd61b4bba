// Headless Debian Chromium for the browser tests, driven by playwright-core.
import { mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

/** Where browser tests leave screenshots (git-ignored). */
export const artifacts = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "artifacts");

/** Launches Debian's /usr/bin/chromium headless, with the flags this machine needs. */
export function launchChromium() {
  return chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** The path of artifact `name`, creating the folder. */
export function artifact(name) {
  mkdirSync(artifacts, { recursive: true });
  return join(artifacts, name);
}
