"""The embedding models Citadel knows: their vector size and how much text each takes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EmbeddingModel:
    name: str
    dims: int
    max_tokens: int
    """Longest input the model accepts; longer input is refused, never silently cut."""
    chunk_tokens: int
    """Length the vector store cuts documents into (what the model was trained on)."""
    ollama_name: str
    description: str


EMBEDDING_MODELS: dict[str, EmbeddingModel] = {
    model.name: model
    for model in (
        EmbeddingModel("all-minilm", 384, 512, 256, "all-minilm", "all-MiniLM-L6-v2; embedded default"),
        EmbeddingModel("nomic-embed-text", 768, 8192, 512, "nomic-embed-text", "nomic-embed-text v1.5"),
        EmbeddingModel("mxbai-embed-large", 1024, 512, 512, "mxbai-embed-large", "mxbai-embed-large v1"),
        EmbeddingModel("bge-m3", 1024, 8192, 512, "bge-m3", "BGE-M3, multilingual"),
    )
}
