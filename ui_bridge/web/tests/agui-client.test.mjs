// @ag-ui/client's HttpAgent against Citadel's /agui/{graph}: two turns on one thread, the thread
// continued over the REST API, then restored over AG-UI with everything in it.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, test } from "node:test";
import { HttpAgent } from "@ag-ui/client";
import { json, startCitadel } from "./citadel.mjs";

let citadel;
before(async () => {
  citadel = await startCitadel();
});
after(async () => {
  await citadel?.stop();
});

async function turn(agent, text) {
  agent.addMessage({ id: randomUUID(), role: "user", content: text });
  const events = [];
  const result = await agent.runAgent({ runId: randomUUID() }, { onEvent: ({ event }) => events.push(event) });
  return { events, types: events.map((e) => e.type), result };
}

const conversation = (messages) => messages.filter((m) => !m.id.startsWith("citadel-ui-"));

test("HttpAgent: two turns on one thread, then the thread over REST and back", { timeout: 300_000 }, async () => {
  const threadId = randomUUID();
  const agent = new HttpAgent({ url: `${citadel.url}/agui/assistant`, threadId });

  const first = await turn(agent, "Hello! How are you today?");
  assert.equal(first.types[0], "RUN_STARTED");
  assert.equal(first.types.at(-1), "RUN_FINISHED");
  assert.ok(first.types.filter((t) => t === "TEXT_MESSAGE_CONTENT").length > 2, "the answer streams token by token");
  assert.ok(!first.types.includes("RAW"), "no RAW events unless asked");
  assert.deepEqual(
    conversation(agent.messages).map((m) => m.role),
    ["user", "assistant"],
  );
  assert.ok(agent.messages.at(-1).content.trim().length > 0);
  assert.equal(agent.state.specialist, "generalist");

  const second = await turn(agent, "What do our documents say about solar panel efficiency?");
  assert.equal(second.types.at(-1), "RUN_FINISHED");
  const search = second.events.find((e) => e.type === "TOOL_CALL_START" && e.toolCallName === "search_documents");
  assert.ok(search, "the search is a tool call");
  const result = second.events.find((e) => e.type === "TOOL_CALL_RESULT" && e.toolCallId === search.toolCallId);
  assert.equal(JSON.parse(result.content).sources[0].id, "solar-101");
  assert.equal(agent.state.specialist, "researcher");
  assert.equal(agent.state.sources[0].id, "solar-101");
  assert.deepEqual(
    conversation(agent.messages).map((m) => m.role),
    ["user", "assistant", "user", "assistant"],
  );
  assert.match(agent.messages.at(-1).content, /solar-101/);

  // The same thread on the REST API: its state, its runs, and a third turn there.
  const state = await json(`${citadel.url}/threads/${threadId}/state`);
  assert.deepEqual(
    state.values.messages.map((m) => m.type),
    ["human", "ai", "human", "ai"],
  );
  const runs = await json(`${citadel.url}/threads/${threadId}/runs`);
  assert.equal(runs.length, 2);
  assert.ok(runs.every((r) => r.status === "success" && r.metadata.source === "ag-ui"));
  await json(`${citadel.url}/threads/${threadId}/runs/wait`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ assistant_id: "assistant", input: { messages: [{ role: "user", content: "Thanks!" }] } }),
  });

  // A new client on the thread (a reloaded page) gets all of it back.
  const reopened = new HttpAgent({ url: `${citadel.url}/agui/assistant`, threadId });
  const restored = [];
  await reopened.runAgent({ runId: randomUUID() }, { onEvent: ({ event }) => restored.push(event.type) });
  assert.deepEqual(restored, ["RUN_STARTED", "STATE_SNAPSHOT", "MESSAGES_SNAPSHOT", "RUN_FINISHED"]);
  assert.deepEqual(
    conversation(reopened.messages).map((m) => m.role),
    ["user", "assistant", "user", "assistant", "user", "assistant"],
  );
  assert.equal(conversation(reopened.messages).at(-2).content, "Thanks!");
});
