// Driving the chat example's page (examples/chat/static) in a browser, as a person would.

/**
 * A new user: a page of its own (its own browser context) on the chat at `url`. `problems`
 * collects the page's errors, its console errors and any request outside `url`; `exceptions`
 * only the uncaught errors (a page whose server goes away logs failed requests, nothing worse).
 */
export async function open(browser, url, viewport = { width: 1180, height: 760 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const problems = [];
  const exceptions = [];
  page.on("pageerror", (e) => {
    problems.push(e.message);
    exceptions.push(e.message);
  });
  page.on("console", (m) => m.type() === "error" && problems.push(m.text()));
  page.on("request", (r) => {
    if (!r.url().startsWith(url) && !r.url().startsWith("data:")) problems.push(`request outside the server: ${r.url()}`);
  });
  await page.goto(url);
  return { page, context, problems, exceptions };
}

/** Signs in with `nick`: the page then joins #general by itself. */
export async function signIn(page, nick) {
  await page.getByTestId("nick-input").fill(nick);
  await page.getByTestId("nick-submit").click();
  await page.getByTestId("app").waitFor();
}

/** Waits until the shown conversation's member list is exactly `nicks`. */
export async function membersAre(page, nicks) {
  await page.waitForFunction(
    (want) =>
      JSON.stringify([...document.querySelectorAll('[data-testid="member"]')].map((b) => b.dataset.nick)) ===
      JSON.stringify(want),
    nicks,
  );
}

/** The message list item saying `text`. */
export const message = (page, text) => page.getByTestId("messages").getByTestId("message").filter({ hasText: text });

/** The texts of the shown conversation's messages, in order. */
export const texts = (page) =>
  page.evaluate(() => [...document.querySelectorAll('[data-testid="message-text"]')].map((t) => t.textContent));

/** Types `text` in the composer and presses Enter. */
export async function say(page, text) {
  await page.getByTestId("composer-text").fill(text);
  await page.getByTestId("composer-text").press("Enter");
}
