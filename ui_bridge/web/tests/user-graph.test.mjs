// A project's own graph (examples/research_agent, written for `langgraph dev`) on the AG-UI face and
// in the chat page: @ag-ui/client's HttpAgent runs two turns on /agui/research_agent, and the page,
// in headless chromium, lists the project's graphs, is switched to it, and shows its answer.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { HttpAgent } from "@ag-ui/client";
import { chromium } from "playwright-core";
import { startServer } from "../server/main.mjs";
import { ROOT, json, startCitadel } from "./citadel.mjs";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const ARTIFACTS = join(ROOT, "test-artifacts");
const CONFIG = join(ROOT, "examples", "research_agent", "langgraph.json");
const WAIT = { timeout: 120_000 };

let citadel;
before(async () => {
  citadel = await startCitadel({ CITADEL_CONFIG: CONFIG });
});
after(async () => {
  await citadel?.stop();
});

async function turn(agent, text) {
  agent.addMessage({ id: randomUUID(), role: "user", content: text });
  const events = [];
  await agent.runAgent({ runId: randomUUID() }, { onEvent: ({ event }) => events.push(event) });
  return events.map((e) => e.type);
}

test("HttpAgent: two turns with the project's research agent", { timeout: 300_000 }, async () => {
  const { agents } = await json(`${citadel.url}/agui`);
  assert.ok(agents.some((a) => a.name === "research_agent"));
  assert.deepEqual(agents.find((a) => a.name === "publish").state_keys, ["draft", "status"]);

  const threadId = randomUUID();
  const agent = new HttpAgent({ url: `${citadel.url}/agui/research_agent`, threadId });
  const first = await turn(agent, "How efficient are solar panels?");
  assert.equal(first[0], "RUN_STARTED");
  assert.equal(first.at(-1), "RUN_FINISHED");
  assert.ok(first.includes("TEXT_MESSAGE_CONTENT"), "the answer streams");
  const second = await turn(agent, "And what about wind power?");
  assert.equal(second.at(-1), "RUN_FINISHED");
  assert.ok(agent.messages.at(-1).content.trim().length > 0);

  const state = await json(`${citadel.url}/threads/${threadId}/state`);
  const types = state.values.messages.map((m) => m.type);
  assert.deepEqual(types, ["human", "ai", "tool", "ai", "human", "ai", "tool", "ai"]);
  assert.match(state.values.messages[2].content, /solar-101/); // Citadel's search, from the project's graph
});

test("HttpAgent: the project's interrupt, answered, then the thread restored", { timeout: 300_000 }, async () => {
  const threadId = randomUUID();
  const agent = new HttpAgent({ url: `${citadel.url}/agui/publish`, threadId });
  const asked = await turn(agent, "Say something about wind power.");
  assert.equal(asked.at(-1), "RUN_FINISHED");
  let state = await json(`${citadel.url}/threads/${threadId}/state`);
  assert.deepEqual(state.next, ["review"]);
  assert.equal(state.interrupts[0].value.message, "Publish this draft?");
  assert.equal(agent.state.status, "drafted"); // the configured ui_state_keys: draft, status

  const [pending] = agent.pendingInterrupts; // AG-UI's structured interrupt, answered as the client resolves it
  assert.ok(pending, "the run ended on the graph's interrupt");
  const events = [];
  await agent.runAgent(
    { runId: randomUUID(), resume: [{ interruptId: pending.id, status: "resolved", payload: "approve" }] },
    { onEvent: ({ event }) => events.push(event.type) },
  );
  assert.equal(events.at(-1), "RUN_FINISHED");
  state = await json(`${citadel.url}/threads/${threadId}/state`);
  assert.equal(state.values.status, "published");

  const reopened = new HttpAgent({ url: `${citadel.url}/agui/publish`, threadId });
  const restored = [];
  await reopened.runAgent({ runId: randomUUID() }, { onEvent: ({ event }) => restored.push(event.type) });
  assert.deepEqual(restored, ["RUN_STARTED", "STATE_SNAPSHOT", "MESSAGES_SNAPSHOT", "RUN_FINISHED"]);
  assert.equal(reopened.state.status, "published");
  assert.equal(reopened.messages.at(-1).content, state.values.draft);
});

test("the chat page lists the project's graphs and talks to one", { timeout: 300_000 }, async (t) => {
  assert.ok(existsSync(join(ROOT, "ui_bridge/web/dist/index.html")), "build the page first: make ui-build");
  mkdirSync(ARTIFACTS, { recursive: true });
  const ui = await startServer({ citadelUrl: citadel.url, port: 0 });
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-gpu"] });
  t.after(async () => {
    await browser.close();
    await ui.close();
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  page.setDefaultTimeout(WAIT.timeout);
  page.setDefaultNavigationTimeout(WAIT.timeout);
  await page.goto(`${ui.url}/`);
  const select = page.getByTestId("agent-select");
  await select.locator("option", { hasText: "research_agent" }).waitFor({ state: "attached", ...WAIT });
  await select.selectOption("research_agent");
  await page.waitForURL(/agent=research_agent/, WAIT);

  const input = page.locator("textarea").first();
  await input.waitFor(WAIT);
  const deadline = Date.now() + WAIT.timeout;
  await input.fill("How efficient are solar panels?");
  while ((await input.inputValue()) !== "") {
    assert.ok(Date.now() < deadline, "the chat never took the message");
    await input.press("Enter");
    await page.waitForFunction((el) => el.value === "", await input.elementHandle(), { timeout: 2_000 }).catch(() => {});
  }
  const thread = new URL(page.url()).searchParams.get("thread");
  // The run ends (the thread is idle again, with the agent's answer last), within the deadline.
  let state;
  while (true) {
    assert.ok(Date.now() < deadline + WAIT.timeout, "the run did not end");
    const { status } = await json(`${citadel.url}/threads/${thread}`);
    state = await json(`${citadel.url}/threads/${thread}/state`);
    if (status === "idle" && state.values.messages?.length >= 4) break;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  const answer = state.values.messages.at(-1);
  assert.equal(answer.type, "ai");
  await page.locator(".copilotKitAssistantMessage").filter({ hasText: answer.content.slice(0, 20) }).last().waitFor(WAIT);
  await page.screenshot({ path: join(ARTIFACTS, "chat-page-user-graph.png"), fullPage: true });
});
