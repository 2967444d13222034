"""Tags on LLM calls, so faces can tell a turn's answer from the work behind it.

LangGraph's `messages` stream mode reports each token with its call's metadata, whose `tags` hold
these. A face that shows only the answer skips tokens tagged `INTERNAL` (the supervisor's routing
decision, the analyst's per-section findings, which reach the user merged into the report).
"""

INTERNAL = "citadel:internal"
