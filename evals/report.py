"""The eval report: the figures `citadel eval` measured, as a self-contained HTML page with plots.

Each eval records its part (`routing`, `retrieval`, `chunk_sizes`, `grounding`, `latency`) in
`figures.json` in the report folder (default `eval-reports/latest`), then the page is drawn again
from every part there: `report.html` with the PNGs embedded (the same PNGs are written beside it).
Plots are drawn with matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

import base64
import html
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before pyplot is imported: no display needed
import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

REPORT_DIR_ENV = "CITADEL_EVAL_REPORT_DIR"
FIGURES = "figures.json"
MODES = ("dense", "sparse", "hybrid")
COLOURS = {"dense": "#4C72B0", "sparse": "#DD8452", "hybrid": "#55A868"}


def default_report_dir() -> Path:
    return Path(os.environ.get(REPORT_DIR_ENV) or "eval-reports/latest")


def record(report_dir: Path, part: str, figures: dict[str, Any]) -> Path:
    """Store one eval's figures under `part` and draw the report again; returns the page's path."""
    report_dir.mkdir(parents=True, exist_ok=True)
    path = report_dir / FIGURES
    recorded: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    recorded[part] = {**figures, "measured_at": datetime.now(UTC).isoformat(timespec="seconds")}
    path.write_text(json.dumps(recorded, indent=2, sort_keys=True))
    return render(report_dir, recorded)


# --- plots ----------------------------------------------------------------------------------------
def _retrieval(figures: dict[str, Any]) -> Figure:
    modes = [m for m in MODES if m in figures["modes"]]
    figure, axis = plt.subplots(figsize=(6.4, 3.8))
    width = 0.38
    for offset, metric, alpha in ((-width / 2, "ndcg", 0.95), (width / 2, "recall", 0.45)):
        values = [figures["modes"][m][metric] for m in modes]
        positions = [i + offset for i in range(len(modes))]
        bars = axis.bar(positions, values, width, color=[COLOURS[m] for m in modes], alpha=alpha)
        axis.bar_label(bars, fmt="%.3f", fontsize=8)
    labels = [f"{m}\n({figures['modes'][m].get('queries', figures['queries'])} queries)" for m in modes]
    axis.set_xticks(range(len(modes)), labels)
    axis.set_ylim(0, 1.15)
    axis.axhline(figures.get("min_ndcg", 0), color="grey", linestyle="--", linewidth=1)
    handles = [
        Patch(color="grey", alpha=0.95, label="nDCG@10"),
        Patch(color="grey", alpha=0.45, label="Recall@10"),
        Line2D([], [], color="grey", linestyle="--", label="gate (hybrid nDCG@10)"),
    ]
    axis.legend(handles=handles, loc="upper left", ncol=3, fontsize=8, frameon=False)
    axis.set_title("SciFact train: retrieval by search mode")
    return figure


def _chunk_sizes(figures: dict[str, Any]) -> Figure:
    figure, axis = plt.subplots(figsize=(6.4, 3.6))
    sizes = sorted(figures["sizes"], key=int)
    for mode in MODES:
        if all(mode in figures["sizes"][s] for s in sizes):
            axis.plot(
                [int(s) for s in sizes],
                [figures["sizes"][s][mode]["ndcg"] for s in sizes],
                marker="o",
                color=COLOURS[mode],
                label=f"{mode} nDCG@10",
            )
    axis.set_xticks([int(s) for s in sizes])
    axis.set_ylim(0.5, 1.0)  # the whole useful range: a narrow axis would make noise look like a trend
    axis.set_xlabel("chunk length (tokens)")
    axis.set_ylabel("nDCG@10")
    axis.set_title(
        f"Chunk length, on a subsample ({figures['documents']} abstracts, {figures['queries']} queries)", fontsize=10
    )
    axis.legend(fontsize=8)
    return figure


def _routing(figures: dict[str, Any]) -> Figure:
    labels: list[str] = figures["labels"]
    matrix: list[list[int]] = figures["confusion"]
    figure, axis = plt.subplots(figsize=(5.2, 4.4))
    axis.imshow(matrix, cmap="Greens")
    axis.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    axis.set_yticks(range(len(labels)), labels)
    axis.set_xlabel("chosen")
    axis.set_ylabel("expected")
    peak = max(max(row) for row in matrix) or 1
    for row, values in enumerate(matrix):
        for column, value in enumerate(values):
            colour = "white" if value > peak / 2 else "black"
            axis.text(column, row, str(value), ha="center", va="center", color=colour)
    axis.set_title(f"Routing: accuracy {figures['accuracy']:.1%} ({figures['correct']}/{figures['total']})")
    figure.tight_layout()
    return figure


def _grounding(figures: dict[str, Any]) -> Figure:
    figure, axis = plt.subplots(figsize=(6.4, 3.0))
    rows = [
        ("answers whose citations all exist", figures["citations_exist"]),
        ("claims whose gold abstract is cited", figures["gold_cited"]),
        ("claims whose gold abstract is retrieved", figures["gold_retrieved"]),
    ]
    bars = axis.barh([label for label, _ in rows], [value for _, value in rows], color="#55A868")
    axis.bar_label(bars, labels=[f"{value:.1%}" for _, value in rows], fontsize=8)
    axis.set_xlim(0, 1.1)
    axis.invert_yaxis()
    axis.set_title(f"Grounding: {figures['answer_mode']} answers to {figures['claims']} SciFact claims", fontsize=10)
    figure.tight_layout()
    return figure


def _latency(figures: dict[str, Any]) -> Figure:
    figure, (search, embed) = plt.subplots(1, 2, figsize=(9.6, 3.6))
    for mode in MODES:
        seconds = figures["search"].get(mode)
        if seconds:
            search.hist([1000 * s for s in seconds], bins=40, alpha=0.6, color=COLOURS[mode], label=mode)
    search.set_xlabel("ms per search (k=10)")
    search.set_ylabel("queries")
    search.set_title("Search latency (Qdrant local mode)", fontsize=10)
    search.legend(fontsize=8)
    embed.hist([1000 * s for s in figures["embed"]], bins=40, color="#8172B3")
    embed.set_xlabel("ms per query embedding")
    embed.set_title("Embedding latency (one claim, embedded MiniLM)", fontsize=10)
    figure.tight_layout()
    return figure


PLOTS: dict[str, tuple[str, Callable[[dict[str, Any]], Figure]]] = {
    "retrieval": ("retrieval.png", _retrieval),
    "chunk_sizes": ("chunk_sizes.png", _chunk_sizes),
    "routing": ("routing.png", _routing),
    "grounding": ("grounding.png", _grounding),
    "latency": ("latency.png", _latency),
}


# --- the page -------------------------------------------------------------------------------------
def _summary(part: str, figures: dict[str, Any]) -> str:
    shown = {k: v for k, v in figures.items() if not isinstance(v, list | dict) or k in ("modes", "sizes")}
    if part == "latency":
        shown = {
            f"{name} p50 ms": round(1000 * sorted(values)[len(values) // 2], 1)
            for name, values in [*figures["search"].items(), ("embed", figures["embed"])]
            if values
        } | {"measured_at": figures.get("measured_at")}
    return html.escape(json.dumps(shown, indent=2, sort_keys=True))


def render(report_dir: Path, recorded: dict[str, Any]) -> Path:
    sections = []
    for part, (filename, draw) in PLOTS.items():
        if part not in recorded:
            continue
        figure = draw(recorded[part])
        figure.savefig(report_dir / filename, dpi=110, bbox_inches="tight")
        plt.close(figure)
        encoded = base64.b64encode((report_dir / filename).read_bytes()).decode()
        sections.append(
            f'<section><h2>{html.escape(part.replace("_", " "))}</h2><img alt="{part}" '
            f'src="data:image/png;base64,{encoded}"><pre>{_summary(part, recorded[part])}</pre></section>'
        )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Citadel eval report</title><style>"
        "body{font-family:sans-serif;max-width:1000px;margin:2em auto}img{max-width:100%}"
        "pre{background:#f4f4f4;padding:.5em;font-size:12px}</style></head><body><h1>Citadel eval report</h1>"
        f"<p>Written {datetime.now(UTC).isoformat(timespec='seconds')} by <code>citadel eval</code>; the figures "
        f"are in <code>{FIGURES}</code> beside this page.</p>{''.join(sections)}</body></html>"
    )
    page_path = report_dir / "report.html"
    page_path.write_text(page, encoding="utf-8")
    return page_path
