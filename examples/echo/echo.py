"""The trivial graph the peer benchmark (`benchmarks/peers.py`) runs on every server: it answers each
message with its own text, so what is measured is the server, not a model."""

from __future__ import annotations

from typing import Annotated

from langchain_core.messages import AIMessage, AnyMessage
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def echo(state: State) -> State:
    return {"messages": [AIMessage(f"echo: {state['messages'][-1].content}")]}


builder = StateGraph(State)
builder.add_node("echo", echo)
builder.add_edge(START, "echo")
graph = builder.compile(name="echo")
