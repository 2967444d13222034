"""Draft, ask, publish: a graph that pauses with `interrupt()` for a person's answer.

    START → draft → review (interrupt: approve or reject) → END

The answer comes back as the run's resume value (`Command(resume="approve")`): from the SDK, an
MCP client (elicitation), the chat page or a spoken yes / no.
"""

from __future__ import annotations

from typing import Annotated, Literal

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.types import interrupt
from typing_extensions import TypedDict

from citadel.runtime import kit
from research_agent.prompts import DRAFT


class State(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    draft: str
    status: Literal["drafted", "published", "rejected"]


async def draft(state: State, config: RunnableConfig) -> State:
    request = next(m for m in reversed(state["messages"]) if isinstance(m, HumanMessage))
    model = await kit.chat_model()
    written = await model.ainvoke([SystemMessage(DRAFT), request], config)
    text = written.content if isinstance(written.content, str) else str(written.content)
    return {"draft": text.strip() or "(empty draft)", "status": "drafted"}


def review(state: State) -> State:
    decision = interrupt({"kind": "approval", "message": "Publish this draft?", "draft": state["draft"]})
    if str(decision).strip().lower() in ("approve", "yes", "true"):
        return {"status": "published", "messages": [AIMessage(state["draft"])]}
    return {"status": "rejected", "messages": [AIMessage("Not published.")]}


builder = StateGraph(State)
builder.add_node("draft", draft)
builder.add_node("review", review)
builder.add_edge(START, "draft")
builder.add_edge("draft", "review")
builder.add_edge("review", END)
graph = builder.compile(name="publish")
