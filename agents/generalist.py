"""The generalist: plain conversation through the LLM router (which picks the backend suited to
the request), with recent history trimmed to fit and the user's remembered facts in the prompt.

When `AgentDeps.tool_model()` gives a tool-calling model, it answers with that model and may search
the documents or embed texts in a tool loop first.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import BaseMessage, SystemMessage
from langgraph.config import get_config
from langgraph.graph import StateGraph
from langgraph.runtime import Runtime

from citadel.agents.deps import AgentDeps
from citadel.agents.history import last_human_text, recent_history
from citadel.agents.remember import MemoryState, recall, user_id
from citadel.agents.toolkit import add_tool_loop, frontend_tools, make_tools

PROMPT = "You are Citadel, a helpful and concise assistant."


def system_prompt(memories: list[str]) -> str:
    if not memories:
        return PROMPT
    facts = "\n".join(f"- {fact}" for fact in memories)
    return f"{PROMPT}\nThings the user asked you to remember (in their words):\n{facts}"


def add_generalist(graph: StateGraph[Any, Any, Any, Any], deps: AgentDeps) -> str:
    """Add the generalist's nodes to `graph`; returns its entry node. Its turn ends at END."""
    tools = make_tools(deps)

    async def generalist(state: MemoryState, runtime: Runtime[Any]) -> dict[str, Any]:
        memories = await recall(runtime.store, user_id(get_config()), last_human_text(state), deps.embeddings)
        prompt: list[BaseMessage] = [SystemMessage(system_prompt(memories))]
        prompt += recent_history(state["messages"], deps.settings.agent_history_tokens)
        tool_model = deps.tool_model()
        if tool_model is not None:
            reply = await tool_model.bind_tools([*tools, *frontend_tools(get_config())]).ainvoke(prompt)
        else:
            reply = await deps.chat().ainvoke(prompt)
        return {"messages": [reply], "memories": memories}

    graph.add_node("generalist", generalist)
    add_tool_loop(graph, "generalist", "generalist_tools", tools)
    return "generalist"
