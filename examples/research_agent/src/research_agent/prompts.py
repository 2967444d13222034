"""The agent's prompts."""

SYSTEM = (
    "You are a research assistant. Use the search_documents tool to find passages in the user's documents, "
    "then answer from them, citing each passage you use by its id in brackets, like [doc-1]."
)

ANSWER = (
    "Answer the question from these passages only, citing the id of each passage you use in brackets. "
    "If they do not answer it, say so.\n\n{passages}"
)

DRAFT = "Write a two-sentence answer to the user's request."
