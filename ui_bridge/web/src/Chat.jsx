// One conversation: CopilotKit's chat with Citadel's tool calls rendered as cards, the shared
// state beside it, approvals as buttons, and one frontend tool the agent may call.
import {
  useCoAgent,
  useFrontendTool,
  useLangGraphInterrupt,
  useRenderToolCall,
} from "@copilotkit/react-core";
import { CopilotChat } from "@copilotkit/react-ui";
import { useEffect, useState } from "react";
import { Approval, RouteCard, SearchCard, StatePanel, StepCard } from "./cards.jsx";

const STEP_TOOLS = ["workflow_embedding", "workflow_vector_search", "workflow_llm_query"];

function StepRenderers() {
  for (const name of STEP_TOOLS) {
    // eslint-disable-next-line react-hooks/rules-of-hooks -- a fixed list, same order every render
    useRenderToolCall({ name, render: (props) => <StepCard name={name} {...props} /> });
  }
  return null;
}

export function Chat({ graph, onIdle }) {
  const { state, running } = useCoAgent({ name: graph, initialState: {} });
  const [highlighted, setHighlighted] = useState(null);

  useEffect(() => {
    if (!running) onIdle();
  }, [running, onIdle]);

  useRenderToolCall({ name: "search_documents", render: (props) => <SearchCard {...props} /> });
  useRenderToolCall({ name: "route_to_specialist", render: (props) => <RouteCard {...props} /> });

  useLangGraphInterrupt({
    render: ({ event, resolve }) => <Approval request={event.value} onAnswer={resolve} />,
  });

  useFrontendTool({
    name: "highlight_source",
    description: "Highlight one of the sources listed beside the chat, by its id.",
    parameters: [{ name: "id", type: "string", description: "The source's id, e.g. solar-101.", required: true }],
    handler: async ({ id }) => {
      setHighlighted(id);
      return `highlighted ${id}`;
    },
  });

  return (
    <main className="main">
      <StepRenderers />
      <CopilotChat
        className="chat"
        labels={{
          title: `Citadel · ${graph}`,
          initial: graph === "workflow" ? "Describe the steps in the panel, then run them." : "Ask me anything.",
          placeholder: "Type a message…",
        }}
      />
      <StatePanel graph={graph} state={state} highlighted={highlighted} />
    </main>
  );
}
