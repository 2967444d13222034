// Where the CopilotKit runtime runs agents. Runs stream straight from Citadel's AG-UI endpoints;
// `connect` (what a page calls when it opens a thread: after a reload, after a restart, or when
// the user picks a thread from the list) asks Citadel to restore the thread — an AG-UI run with
// nothing new, answered with the thread's state, messages and pending interrupt from Citadel's
// checkpointer. So the conversation survives a reload and a restart of either server, which the
// runtime's default in-memory runner cannot do.
import { randomUUID } from "node:crypto";
import { HttpAgent } from "@ag-ui/client";
import { AgentRunner } from "@copilotkit/runtime/v2";
import { ReplaySubject } from "rxjs";

export class CitadelAgentRunner extends AgentRunner {
  constructor({ citadelUrl, agentNames }) {
    super();
    this.citadelUrl = citadelUrl;
    this.agentNames = new Set(agentNames);
    this.active = new Map();
  }

  run({ threadId, agent, input }) {
    if (this.active.has(threadId)) throw new Error("Thread already running");
    const events = new ReplaySubject(Infinity);
    this.active.set(threadId, { agent, runId: input.runId });
    agent
      .runAgent(input, { onEvent: ({ event }) => events.next(event) })
      .then(
        () => events.complete(),
        (error) => events.error(error),
      )
      .finally(() => this.active.delete(threadId));
    return events.asObservable();
  }

  connect({ threadId, agentId, headers }) {
    const events = new ReplaySubject(Infinity);
    if (!agentId || !this.agentNames.has(agentId)) {
      events.complete();
      return events.asObservable();
    }
    const agent = new HttpAgent({ url: `${this.citadelUrl}/agui/${agentId}`, headers, threadId });
    agent
      .runAgent({ runId: randomUUID() }, { onEvent: ({ event }) => events.next(event) })
      .catch((error) => console.warn(`restoring thread ${threadId} failed: ${error.message}`))
      .finally(() => events.complete());
    return events.asObservable();
  }

  async isRunning({ threadId }) {
    return this.active.has(threadId);
  }

  async stop({ threadId, runId }) {
    const active = this.active.get(threadId);
    if (!active || (runId !== undefined && active.runId !== runId)) return false;
    active.agent.abortRun(); // Citadel cancels the run when its stream is dropped
    return true;
  }
}
