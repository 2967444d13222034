// The page: pick a graph (one CopilotKit agent each), start a chat or resume one from the thread
// list. The selected graph and thread live in the URL (?agent=...&thread=...), so a reload opens
// the same thread; CopilotKit then connects to it and Citadel restores the conversation.
import { CopilotKit } from "@copilotkit/react-core";
import { useCallback, useEffect, useState } from "react";
import { Chat } from "./Chat.jsx";

function fromLocation() {
  const params = new URLSearchParams(window.location.search);
  return { graph: params.get("agent") || "assistant", threadId: params.get("thread") || crypto.randomUUID() };
}

export function App() {
  const [agents, setAgents] = useState([]);
  const [threads, setThreads] = useState([]);
  const [selection, setSelection] = useState(fromLocation);
  const { graph, threadId } = selection;

  useEffect(() => {
    const params = new URLSearchParams({ agent: graph, thread: threadId });
    window.history.replaceState(null, "", `?${params}`);
  }, [graph, threadId]);

  const refreshThreads = useCallback(async () => {
    try {
      const response = await fetch("/api/threads");
      if (response.ok) setThreads((await response.json()).threads);
    } catch {
      // the list refreshes on the next run
    }
  }, []);

  useEffect(() => {
    fetch("/api/agents")
      .then((response) => response.json())
      .then((body) => setAgents(body.agents))
      .catch(() => setAgents([]));
    refreshThreads();
  }, [refreshThreads]);

  return (
    <div className="layout">
      <aside className="sidebar">
        <h1>Citadel</h1>
        <label>
          Agent
          <select
            data-testid="agent-select"
            value={graph}
            onChange={(e) => setSelection({ graph: e.target.value, threadId: crypto.randomUUID() })}
          >
            {(agents.length ? agents : [{ name: graph }]).map((agent) => (
              <option key={agent.name} value={agent.name} title={agent.description}>
                {agent.name}
              </option>
            ))}
          </select>
        </label>
        <button type="button" data-testid="new-chat" onClick={() => setSelection({ graph, threadId: crypto.randomUUID() })}>
          New chat
        </button>
        <h2>Threads</h2>
        <ul className="threads" data-testid="threads">
          {threads.map((thread) => (
            <li key={thread.threadId}>
              <button
                type="button"
                data-testid="thread"
                className={thread.threadId === threadId ? "active" : ""}
                onClick={() => setSelection({ graph: thread.graph, threadId: thread.threadId })}
              >
                <span className="title">{thread.title || "(untitled)"}</span>
                <span className="meta">
                  {thread.graph} · {thread.status}
                </span>
              </button>
            </li>
          ))}
        </ul>
      </aside>
      <CopilotKit
        key={`${graph}:${threadId}`}
        runtimeUrl="/api/copilotkit"
        useSingleEndpoint
        agent={graph}
        threadId={threadId}
        showDevConsole={false}
        enableInspector={false}
      >
        <Chat graph={graph} onIdle={refreshThreads} />
      </CopilotKit>
    </div>
  );
}
