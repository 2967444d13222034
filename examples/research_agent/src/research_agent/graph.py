"""A tool-calling research agent, written as LangGraph documents it.

    START → agent → (tools → agent)* → END

Its tools are Citadel's search and embeddings (`citadel.runtime.kit`): inside `citadel serve` they
use the server's services; under `langgraph dev` the kit opens its own from the environment.
A model that calls tools (a capable Ollama backend) chooses them itself; the embedded model cannot,
so for it the agent asks for the search itself (the same tool call, made by the node), then answers
from what was found.
"""

from __future__ import annotations

import os
import uuid
from typing import Annotated, Any

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode, tools_condition
from typing_extensions import TypedDict

from citadel.runtime import kit
from research_agent.prompts import ANSWER, SYSTEM

TOOLS = kit.tools()


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def _text(message: AnyMessage) -> str:
    return message.content if isinstance(message.content, str) else str(message.content)


def _search_call(question: str) -> AIMessage:
    args: dict[str, Any] = {"query": question}
    if collection := os.environ.get("RESEARCH_AGENT_COLLECTION"):
        args["collection"] = collection
    call = {"name": "search_documents", "args": args, "id": f"search-{uuid.uuid4().hex[:12]}", "type": "tool_call"}
    return AIMessage(content="", tool_calls=[call])


async def agent(state: State, config: RunnableConfig) -> dict[str, list[AnyMessage]]:
    messages = state["messages"]
    capable = await kit.tool_model()
    if capable is not None:
        return {"messages": [await capable.bind_tools(TOOLS).ainvoke([SystemMessage(SYSTEM), *messages], config)]}
    last = messages[-1]
    if not isinstance(last, ToolMessage):
        return {"messages": [_search_call(_text(last))]}
    question = next(m for m in reversed(messages) if isinstance(m, HumanMessage))
    model = await kit.chat_model()
    prompt = [SystemMessage(ANSWER.format(passages=_text(last))), HumanMessage(_text(question))]
    return {"messages": [await model.ainvoke(prompt, config)]}


builder = StateGraph(State)
builder.add_node("agent", agent)
builder.add_node("tools", ToolNode(TOOLS))
builder.add_edge(START, "agent")
builder.add_conditional_edges("agent", tools_condition, {"tools": "tools", END: END})
builder.add_edge("tools", "agent")
graph = builder.compile(name="research_agent")
