"""Citadel, an agent runtime: LangGraph graphs served over REST, MCP, AG-UI and voice.

Import it as `citadel.<part>`. The parts are the repository's top-level folders (this package links
to them), from the top down; each imports only the layers below it:

- `citadel.runtime`: the binding (settings loading, services, the app factory, the request pipeline,
  the CLI). It imports everything; nothing imports it.
- the faces: `citadel.rest_api`, `citadel.mcp_server`, `citadel.ui_bridge`, `citadel.agents.voice`.
  They import the core and below, never each other.
- `citadel.core`: the graph registry, runs (accept, execute, stream), identity, the services' types.
- `citadel.graphs` (the built-in graphs), `citadel.agents` (the specialists they compose),
  `citadel.tools` (embeddings, vector search, LLM routing), `citadel.memory` (stores and caches).
- at the bottom, here: `citadel.errors`, `citadel.settings`, `citadel.metrics`, which every layer shares.

`citadel.evals` measures the whole (the CLI's `citadel eval`).
"""
