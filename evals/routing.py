"""Routing accuracy of the assistant's supervisor on a labelled set of requests.

`routing_queries.jsonl` holds one `{"query", "specialist"}` per line, written for this eval and kept
apart from the supervisor's route examples (`agents/specialist_routes.json`; an exact overlap is an
error). Labels follow what each specialist is for: questions to answer from the user's documents →
researcher; a document (pasted or announced) to analyse → analyst; asking to remember a fact →
remember; everything else, including questions about remembered facts → generalist.

Each query goes through `Supervisor.decide` as in a run: the semantic router, then (when it is not
confident) one LLM decision on the embedded model, unless `--no-llm`. Prints the accuracy, the
confusion matrix, how each decision was made and the misrouted queries; exits 1 below the bar.

The accuracy and the confusion matrix go into the eval report too (`citadel.evals.report`).

    citadel eval routing [--min-accuracy 0.95] [--no-llm] [--queries FILE] [--report-dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from citadel.agents.supervisor import ROUTES_FILE, SPECIALISTS, Decision, Supervisor
from citadel.core.services import ServicesOpener
from citadel.evals import report as eval_report
from citadel.settings import Settings
from citadel.tools.semantic_router import load_routes

QUERIES = Path(__file__).with_name("routing_queries.jsonl")


@dataclass
class Labelled:
    query: str
    expected: str


def load_queries(path: Path) -> list[Labelled]:
    labelled = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        record = json.loads(line)
        if record["specialist"] not in SPECIALISTS:
            raise ValueError(f"{path}:{number}: unknown specialist {record['specialist']!r}")
        labelled.append(Labelled(record["query"], record["specialist"]))
    examples = {e.strip().lower() for route in load_routes(ROUTES_FILE) for e in route.examples}
    overlap = [item.query for item in labelled if item.query.strip().lower() in examples]
    if overlap:
        raise ValueError(f"eval queries must not be route examples: {overlap}")
    return labelled


def eval_settings(data_dir: Path, *, llm: bool) -> Settings:
    """The embedded models, whatever the environment configures for production."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=data_dir,
        qdrant_url=None,
        redis_url=None,
        database_url=None,
        embedding_model="all-minilm",
        embedding_servers={},
        llm_servers=[],
        local_llm=llm,
    )


def report(labelled: list[Labelled], decisions: list[Decision]) -> float:
    correct = sum(d.specialist == item.expected for item, d in zip(labelled, decisions, strict=True))
    accuracy = correct / len(labelled)
    print(f"routing accuracy: {accuracy:.1%} ({correct}/{len(labelled)})")
    methods = Counter(d.method for d in decisions)
    print("decided by: " + ", ".join(f"{method} {count}" for method, count in methods.most_common()))
    pairs = Counter((item.expected, d.specialist) for item, d in zip(labelled, decisions, strict=True))
    width = max(len(s) for s in SPECIALISTS) + 2
    print("\nconfusion (rows: expected, columns: chosen)")
    print(" " * width + "".join(s.rjust(width) for s in SPECIALISTS))
    for expected in SPECIALISTS:
        print(expected.ljust(width) + "".join(str(pairs[(expected, chosen)]).rjust(width) for chosen in SPECIALISTS))
    wrong = [(item, d) for item, d in zip(labelled, decisions, strict=True) if d.specialist != item.expected]
    if wrong:
        print("\nmisrouted:")
        for item, decision in wrong:
            query = " ".join(item.query.split())
            print(f"- {query[:90]!r}: expected {item.expected}, got {decision.specialist} ({decision.reason})")
    return accuracy


async def evaluate(labelled: list[Labelled], open_services: ServicesOpener, *, use_llm: bool) -> list[Decision]:
    with tempfile.TemporaryDirectory(prefix="citadel-routing-eval-") as data_dir:
        async with open_services(eval_settings(Path(data_dir), llm=use_llm), llm=use_llm, state=False) as services:
            supervisor = Supervisor(services.agent_deps())
            return [await supervisor.decide(item.query, use_llm=use_llm) for item in labelled]


def main(argv: list[str] | None, open_services: ServicesOpener) -> int:
    parser = argparse.ArgumentParser(prog="citadel eval routing", description=__doc__.split("\n\n")[0])
    parser.add_argument("--min-accuracy", type=float, default=0.95, help="exit 1 below this accuracy (0-1)")
    parser.add_argument("--no-llm", action="store_true", help="semantic routing only; unsure → generalist")
    parser.add_argument("--queries", type=Path, default=QUERIES, help="labelled queries (JSONL)")
    parser.add_argument(
        "--report-dir", type=Path, default=eval_report.default_report_dir(), help="where the eval report is written"
    )
    args = parser.parse_args(argv)
    labelled = load_queries(args.queries)
    decisions = asyncio.run(evaluate(labelled, open_services, use_llm=not args.no_llm))
    accuracy = report(labelled, decisions)
    pairs = Counter((item.expected, d.specialist) for item, d in zip(labelled, decisions, strict=True))
    figures = {
        "accuracy": accuracy,
        "correct": round(accuracy * len(labelled)),
        "total": len(labelled),
        "labels": list(SPECIALISTS),
        "confusion": [[pairs[(expected, chosen)] for chosen in SPECIALISTS] for expected in SPECIALISTS],
        "decided_by": dict(Counter(d.method for d in decisions)),
        "llm": not args.no_llm,
    }
    print(f"\nreport: {eval_report.record(args.report_dir, 'routing', figures)}")
    if accuracy < args.min_accuracy:
        print(f"\nFAIL: accuracy {accuracy:.1%} is below {args.min_accuracy:.1%}")
        return 1
    return 0
