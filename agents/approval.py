"""Asking a person to approve a step before it runs, with LangGraph's `interrupt()`.

The run pauses with the request as the interrupt's value; it resumes with
`Command(resume=decision)`, where a decision may be `true`/`false`, `"approve"`/`"reject"` (also
yes/no, ok, approved/rejected) or `{"approved": bool}` / `{"decision": "approve"}`. Anything else
counts as a rejection: a pause for approval never proceeds on an answer it cannot read.
"""

from __future__ import annotations

from typing import Any

from langgraph.types import interrupt

_YES = {"approve", "approved", "yes", "y", "ok", "true", "continue", "accept", "run"}


def is_approval(decision: Any) -> bool:
    if isinstance(decision, bool):
        return decision
    if isinstance(decision, str):
        return decision.strip().lower() in _YES
    if isinstance(decision, dict):
        if "approved" in decision:
            return is_approval(decision["approved"])
        for key in ("decision", "action", "type"):
            if key in decision:
                return is_approval(decision[key])
    return False


def ask_approval(kind: str, message: str, **details: Any) -> bool:
    """Pause the run for approval; True once resumed with an approval.

    Call it before the step's side effects: on resume, LangGraph runs the node again from its start."""
    decision = interrupt({"type": "approval", "kind": kind, "message": message, **details})
    return is_approval(decision)
