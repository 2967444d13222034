"""The eval report: each eval's part lands in figures.json and the page is drawn from every part,
self-contained (PNGs embedded) and with the same PNGs beside it."""

from __future__ import annotations

import json
import re
from pathlib import Path

from citadel.evals import report


def test_parts_accumulate_into_one_self_contained_page(tmp_path: Path) -> None:
    routing = {"accuracy": 0.5, "correct": 2, "total": 4, "labels": ["a", "b"], "confusion": [[1, 1], [1, 1]]}
    report.record(tmp_path, "routing", routing)
    modes = {m: {"ndcg": 0.6, "recall": 0.8, "ms_per_query": 10.0} for m in report.MODES}
    page = report.record(tmp_path, "retrieval", {"modes": modes, "queries": 3, "min_ndcg": 0.5})
    report.record(tmp_path, "latency", {"search": {"dense": [0.01, 0.02], "hybrid": [0.03]}, "embed": [0.004]})

    figures = json.loads((tmp_path / report.FIGURES).read_text())
    assert set(figures) == {"routing", "retrieval", "latency"}
    html = page.read_text()
    assert len(re.findall(r'src="data:image/png;base64,', html)) == 3
    for name in ("routing.png", "retrieval.png", "latency.png"):
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG")
    assert not (tmp_path / "grounding.png").exists(), "a part not measured is not drawn"
