// The chat page in a real browser (Debian's chromium, driven by playwright-core; no browser is
// downloaded): ask a question, see the streamed answer and the search-result card, reload, and
// see the conversation again, restored by Citadel. Screenshots go to test-artifacts/.
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { chromium } from "playwright-core";
import { startServer } from "../server/main.mjs";
import { ROOT, startCitadel } from "./citadel.mjs";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const ARTIFACTS = join(ROOT, "test-artifacts");
const QUESTION = "What do our documents say about solar panel efficiency?";
const WAIT = { timeout: 120_000 };

let citadel;
let ui;
let browser;

before(async () => {
  assert.ok(existsSync(join(ROOT, "ui_bridge/web/dist/index.html")), "build the page first: make ui-build");
  assert.ok(existsSync(CHROMIUM), `no chromium at ${CHROMIUM}: apt-get install chromium (make chromium)`);
  mkdirSync(ARTIFACTS, { recursive: true });
  citadel = await startCitadel();
  ui = await startServer({ citadelUrl: citadel.url, port: 0 });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
});

after(async () => {
  await browser?.close();
  await ui?.close();
  await citadel?.stop();
});

test("ask, see the streamed answer and the search card, reload, see it again", { timeout: 300_000 }, async (t) => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  page.setDefaultTimeout(WAIT.timeout); // a cold page (2.7 MB of JS) on 2 busy cores is slow to start
  page.setDefaultNavigationTimeout(WAIT.timeout);
  t.after(async () => {
    if (!page.isClosed()) await page.screenshot({ path: join(ARTIFACTS, "chat-page-last.png"), fullPage: true });
  });
  const problems = [];
  page.on("pageerror", (error) => problems.push(error.message));
  await page.goto(`${ui.url}/?agent=assistant`);
  await page.waitForURL(/thread=/, WAIT);
  const thread = new URL(page.url()).searchParams.get("thread");
  assert.ok(thread, "the page puts its thread in the URL");

  const input = page.locator("textarea").first();
  await input.waitFor(WAIT);
  // The chat takes a message once CopilotKit has connected to the thread; until then Enter leaves
  // the text in the box. Send, and send again while it is still there (with a deadline).
  const deadline = Date.now() + WAIT.timeout;
  await input.fill(QUESTION);
  while ((await input.inputValue()) !== "") {
    assert.ok(Date.now() < deadline, "the chat never took the message");
    await input.press("Enter");
    await page.waitForFunction((el) => el.value === "", await input.elementHandle(), { timeout: 2_000 }).catch(() => {});
  }

  const card = page.getByTestId("search-card");
  await card.waitFor(WAIT);
  await page.getByTestId("search-source").filter({ hasText: "solar-101" }).first().waitFor(WAIT);
  // The answer streams in, then the run ends (the thread list refreshes with this thread).
  await page.getByTestId("thread").filter({ hasText: "solar panel efficiency" }).first().waitFor(WAIT);
  const answer = page.locator(".copilotKitAssistantMessage").filter({ hasText: "solar-101" }).last();
  await answer.waitFor(WAIT);
  await page.getByTestId("specialist").filter({ hasText: "researcher" }).waitFor(WAIT);
  await page.screenshot({ path: join(ARTIFACTS, "chat-page.png"), fullPage: true });

  await page.reload();
  assert.equal(new URL(page.url()).searchParams.get("thread"), thread, "the reload opens the same thread");
  await page.getByText(QUESTION).first().waitFor(WAIT);
  await page.locator(".copilotKitAssistantMessage").filter({ hasText: "solar-101" }).last().waitFor(WAIT);
  await page.getByTestId("search-card").first().waitFor(WAIT);
  await page.screenshot({ path: join(ARTIFACTS, "chat-page-reloaded.png"), fullPage: true });
  assert.deepEqual(problems, []);
});
