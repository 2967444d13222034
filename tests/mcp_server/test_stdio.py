"""`citadel mcp` as a desktop client runs it: a subprocess (`python -m citadel.runtime.cli mcp`) spoken to
over its stdin/stdout by the `mcp` SDK's stdio client. Logs must go to stderr: a stray byte on
stdout would break the protocol."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from citadel.settings import Settings
from tests.live_server import migrate_database
from tests.mcp_server.client_kit import (
    APPROVAL_STEPS,
    DOCUMENTS,
    LLM_DEADLINE,
    SLOW_STEPS,
    TOOLS,
    Approver,
    Progress,
    ask,
    text_of,
)

ROOT = Path(__file__).resolve().parents[2]
NO_SERVER = "http://127.0.0.1:9"
"""A CITADEL_URL where no Citadel answers (a server of the machine's on :8000 must not be used)."""
SESSION_DEADLINE = 600.0
"""Starting the server (imports, models) and every call of one test."""


async def citadel_mcp(tmp_path: Path) -> StdioServerParameters:
    """`citadel mcp` serving from its own services (no server answers at its CITADEL_URL) on a fresh,
    migrated data directory, with none of this shell's CITADEL_ settings."""
    data_dir = tmp_path / "data"
    await migrate_database(Settings(_env_file=None, data_dir=data_dir))  # type: ignore[call-arg]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITADEL_")}
    env.update(CITADEL_DATA_DIR=str(data_dir), CITADEL_LLM_MAX_TOKENS="24", CITADEL_LOG_LEVEL="info")
    env.update(CITADEL_URL=NO_SERVER)
    return StdioServerParameters(command=sys.executable, args=["-m", "citadel.runtime.cli", "mcp"], env=env, cwd=ROOT)


async def call(client: Client, tool: str, arguments: dict[str, Any], **options: Any) -> Any:
    with anyio.fail_after(LLM_DEADLINE):
        return await client.call_tool(tool, arguments, **options)


async def test_a_stdio_session(tmp_path: Path) -> None:
    params = await citadel_mcp(tmp_path)
    progress = Progress()
    errlog_path = tmp_path / "stderr.log"
    with errlog_path.open("w") as errlog, anyio.fail_after(SESSION_DEADLINE):
        async with Client(stdio_client(params, errlog=errlog)) as client:
            tools = (await client.list_tools()).tools
            resources = (await client.list_resources()).resources
            prompts = (await client.list_prompts()).prompts
            stored = await call(
                client, "upsert_documents", {"collection": "docs", "documents": DOCUMENTS, "create": True},
                progress_callback=progress,
            )  # fmt: skip
            first = await call(client, "ask_rag", ask("How much sunlight do solar panels convert?"))
            thread_id = first.structured_content["thread_id"]
            second = await call(client, "ask_rag", ask("And how do wind turbines work?", thread_id=thread_id))
            thread = await call(client, "get_thread", {"thread_id": thread_id})
            missing = await call(client, "search", {"collection": "nope", "query": "anything"})
    assert {t.name for t in tools} == TOOLS
    assert {str(r.uri) for r in resources} == {"citadel://graphs", "citadel://collections"}
    assert len(prompts) == 2
    assert stored.structured_content["documents"] == 3
    assert progress.seen == [(3, 3, "3/3 documents embedded")]
    assert first.structured_content["sources"][0]["id"] == "solar-101"
    assert second.structured_content["thread_id"] == thread_id
    assert [m["role"] for m in thread.structured_content["messages"]] == ["user", "assistant", "user", "assistant"]
    assert missing.is_error
    assert "collection 'nope' does not exist" in text_of(missing)
    # The logs went to stderr (stdout carries the protocol): Citadel's start-up line, and the
    # session's own work (the failed search). The rag answer is extractive on the embedded model,
    # so no LLM route is logged.
    errlog_text = errlog_path.read_text()
    assert "no Citadel server answers at" in errlog_text
    assert "collection 'nope' does not exist" in errlog_text


async def test_stdio_elicitation_and_cancellation(tmp_path: Path) -> None:
    """On a handshake-era stdio session: approval asked with `elicitation/create`, and a cancelled
    call (`notifications/cancelled`) cancels its run."""
    params = await citadel_mcp(tmp_path)
    approver = Approver()
    progress = Progress()
    with (tmp_path / "stderr.log").open("w") as errlog, anyio.fail_after(SESSION_DEADLINE):
        async with Client(stdio_client(params, errlog=errlog), mode="legacy", elicitation_callback=approver) as client:
            approved = await call(client, "run_workflow", {"steps": APPROVAL_STEPS})
            async with anyio.create_task_group() as calls:
                calls.start_soon(
                    lambda: call(client, "run_workflow", {"steps": SLOW_STEPS}, progress_callback=progress)
                )
                with anyio.fail_after(LLM_DEADLINE):
                    await progress.stepped.wait()
                calls.cancel_scope.cancel()
            _, thread_id = progress.run_and_thread()
            with anyio.fail_after(60):
                while True:  # the server stops the run as it processes the cancellation
                    thread = (await call(client, "get_thread", {"thread_id": thread_id})).structured_content
                    if thread["last_run"]["status"] not in ("pending", "running"):
                        break
                    await anyio.sleep(0.1)
    assert approved.structured_content["status"] == "completed"
    assert len(approver.asked) == 1
    assert thread["last_run"]["status"] == "interrupted"
    assert thread["status"] == "idle"
