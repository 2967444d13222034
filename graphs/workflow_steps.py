"""The workflow API's steps: what each takes (validated), and how each runs.

A step's text parameters may refer to earlier steps' outputs: `{prev}` is the previous step's text
output, `{step_N}` that of step N (0-based). Text outputs: an embedding step's summary, a vector
search's hits (`[id] title: text` lines), an LLM query's answer. A `vector_search` without a
`query` searches with the first vector of the previous embedding step (or the one `vector_from`
names).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator
from typing_extensions import TypedDict

from citadel.agents.deps import AgentDeps
from citadel.agents.retrieval import collection_for, to_source
from citadel.agents.state import Source
from citadel.errors import InvalidRequest
from citadel.tools.chat_model import ROUTE_METADATA

_REFERENCE = re.compile(r"\{(prev|step_(\d+))\}")


class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approve: bool = Field(default=False, description="Pause for a person's approval before this step runs.")


class EmbeddingStep(_Step):
    type: Literal["embedding"]
    texts: list[str] = Field(default_factory=list, description="Texts to embed (placeholders allowed).")
    text: str | None = Field(default=None, description="One text to embed (instead of `texts`).")
    model: str | None = Field(default=None, description="Embedding model (default: the configured one).")

    @model_validator(mode="after")
    def _some_text(self) -> EmbeddingStep:
        if self.text is not None:
            self.texts = [self.text, *self.texts]
            self.text = None
        if not self.texts:
            raise ValueError("an embedding step needs `text` or `texts`")
        return self


class VectorSearchStep(_Step):
    type: Literal["vector_search"]
    collection: str | None = Field(
        default=None, description="Collection to search (else `configurable.collection`, else the default)."
    )
    query: str | None = Field(
        default=None, description="Text to search for (placeholders allowed); omit to search by an earlier vector."
    )
    vector_from: str | None = Field(
        default=None,
        pattern=r"^(prev|step_\d+)$",
        description="Embedding step whose first vector to search with (`prev` or `step_N`; default `prev`).",
    )
    k: int = Field(default=5, ge=1, le=100, description="How many documents to return.")
    filter: dict[str, Any] | None = Field(default=None, description="Metadata filter, as in the search API.")
    score_threshold: float | None = Field(default=None, description="Least similarity for a hit.")


class LLMQueryStep(_Step):
    type: Literal["llm_query"]
    prompt: str = Field(min_length=1, description="The question or instruction (placeholders allowed).")
    system: str | None = Field(default=None, description="A system prompt.")
    model: str | None = Field(default=None, description="A model by name (default: routed).")
    route: str | None = Field(default=None, description="A task class to route to (default: chosen by meaning).")
    max_tokens: int | None = Field(default=None, ge=1, le=8192, description="Answer length.")
    temperature: float = Field(default=0.3, ge=0, le=2)


Step = Annotated[EmbeddingStep | VectorSearchStep | LLMQueryStep, Field(discriminator="type")]
STEPS: TypeAdapter[list[Step]] = TypeAdapter(list[Step])


class StepResult(TypedDict):
    index: int
    type: str
    output: dict[str, Any]
    text: str
    """The output as text, for `{prev}` / `{step_N}` in later steps."""


def _earlier(reference: str, index: int, results: list[StepResult]) -> StepResult:
    wanted = index - 1 if reference == "prev" else int(reference.removeprefix("step_"))
    if not 0 <= wanted < index:
        raise InvalidRequest(
            f"step {index} refers to {{{reference}}}, but only steps 0-{index - 1} come before it",
            param=f"steps.{index}",
        )
    return results[wanted]


def fill(text: str, index: int, results: list[StepResult]) -> str:
    return _REFERENCE.sub(lambda m: _earlier(m.group(1), index, results)["text"], text)


async def run_embedding(deps: AgentDeps, step: EmbeddingStep, index: int, results: list[StepResult]) -> StepResult:
    texts = [fill(t, index, results) for t in step.texts]
    embedded = await deps.embeddings.embed(texts, step.model)
    dims = int(embedded.vectors.shape[1])
    output = {"model": embedded.model, "dims": dims, "count": len(texts), "vectors": embedded.vectors.tolist()}
    summary = f"{len(texts)} text(s) embedded with {embedded.model} ({dims} dimensions)"
    return StepResult(index=index, type=step.type, output=output, text=summary)


async def run_vector_search(
    deps: AgentDeps, step: VectorSearchStep, index: int, results: list[StepResult], config: RunnableConfig
) -> StepResult:
    collection = step.collection or collection_for({}, config, deps)
    query = fill(step.query, index, results) if step.query is not None else None
    vector = None
    if query is None:
        source = _earlier(step.vector_from or "prev", index, results)
        if source["type"] != "embedding":
            raise InvalidRequest(
                f"step {index} has no query and step {source['index']} is not an embedding step to take a vector from",
                param=f"steps.{index}.query",
            )
        vector = source["output"]["vectors"][0]
    hits = await deps.vectors.search(
        collection, query=query, vector=vector, k=step.k, filter=step.filter, score_threshold=step.score_threshold
    )
    sources: list[Source] = [to_source(hit) for hit in hits]
    text = "\n".join(f"[{h.id}] {s['title']}: {h.text}" for h, s in zip(hits, sources, strict=True))
    output = {"collection": collection, "query": query, "hits": sources}
    return StepResult(index=index, type=step.type, output=output, text=text or "(no results)")


async def run_llm_query(
    deps: AgentDeps, step: LLMQueryStep, index: int, results: list[StepResult]
) -> tuple[StepResult, AIMessage]:
    prompt = fill(step.prompt, index, results)
    messages: list[BaseMessage] = [SystemMessage(fill(step.system, index, results))] if step.system else []
    messages.append(HumanMessage(prompt))
    chat = deps.chat(model=step.model, route=step.route, max_tokens=step.max_tokens, temperature=step.temperature)
    reply = await chat.with_config(metadata={"citadel_step": f"workflow_step_{index}"}).ainvoke(messages)
    decision = reply.response_metadata.get(ROUTE_METADATA, {})
    output = {"prompt": prompt, "answer": reply.text, **{k: decision.get(k) for k in ("backend", "model", "route")}}
    return StepResult(index=index, type=step.type, output=output, text=reply.text), reply
