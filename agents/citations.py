"""Checking an answer's citations against the passages its run retrieved.

A citation is a bracketed id, `[doc-7]`, or several, `[doc-7, doc-9]`; a bracket holding words with
spaces (`[see above]`) or starting a Markdown link (`[text](url)`) is not one. Every cited id must
be one of the run's sources: an id that is not (a model inventing a source) is taken out of the
text, counted in `citadel_citations_removed_total`, and so never reaches a face.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from citadel import metrics

_BRACKET = re.compile(r"\s?\[([^\[\]\n]{1,300})\](?!\()")
_SEPARATOR = re.compile(r"\s*[,;]\s*")


@dataclass
class Checked:
    text: str
    cited: list[str] = field(default_factory=list)
    """Ids the text cites that are among the sources, in order of first citation."""
    removed: list[str] = field(default_factory=list)
    """Ids it cited that are not: taken out of the text."""


def check_citations(text: str, known_ids: set[str], *, where: str) -> Checked:
    """`text` with every citation of an id outside `known_ids` removed; `where` labels the metric."""
    checked = Checked(text)

    def verified(match: re.Match[str]) -> str:
        ids = _SEPARATOR.split(match.group(1).strip())
        if not all(ids) or any(" " in i for i in ids):
            return match.group(0)  # prose in brackets, not a citation
        kept = [i for i in ids if i in known_ids]
        checked.removed += [i for i in ids if i not in known_ids]
        checked.cited += [i for i in kept if i not in checked.cited]
        if not kept:
            return ""
        lead = match.group(0)[: len(match.group(0)) - len(match.group(0).lstrip())]
        return f"{lead}[{', '.join(kept)}]"

    checked.text = _BRACKET.sub(verified, text)
    if checked.removed:
        metrics.CITATIONS_REMOVED.labels(where).inc(len(checked.removed))
    return checked
