"""The running Citadel server's thread/run API, as the voice agent uses it (`langgraph-sdk`).

The server owns the threads, runs and stores; a voice job process holds only this client, so the
worker runs beside `citadel serve` on the embedded defaults and needs nothing but `CITADEL_URL` and,
with auth on, `CITADEL_TOKEN` (a token with the admin role). Each call acts for the participant
(`X-Citadel-User`): the threads and runs are theirs, with the same ownership and busy-thread rules as
on every face. The SDK's errors come back as Citadel's (`NotFound`, `Conflict`, `Unavailable`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
from langgraph_sdk import errors as sdk
from langgraph_sdk import get_client

from citadel.errors import CitadelError, Conflict, InvalidRequest, NotFound, Unavailable
from citadel.settings import Settings

ACT_FOR_HEADER = "X-Citadel-User"


@contextlib.contextmanager
def _citadel_errors() -> Iterator[None]:
    try:
        yield
    except sdk.NotFoundError as error:
        raise NotFound(_message(error)) from error
    except sdk.ConflictError as error:
        raise Conflict(_message(error)) from error
    except (sdk.BadRequestError, sdk.UnprocessableEntityError) as error:
        raise InvalidRequest(_message(error)) from error
    except (httpx.TransportError, sdk.InternalServerError, sdk.RateLimitError) as error:
        raise Unavailable(f"the Citadel server is unavailable: {error}") from error
    except httpx.HTTPStatusError as error:
        raise CitadelError(_message(error)) from error


def _message(error: httpx.HTTPStatusError) -> str:
    try:
        return str(error.response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError, httpx.ResponseNotRead):
        return str(error)


class ServerAPI:
    def __init__(self, url: str, token: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else None
        self.url = url
        self._client = get_client(url=url, api_key=None, headers=headers)

    @classmethod
    def from_settings(cls, settings: Settings) -> ServerAPI:
        return cls(settings.server_url, settings.token.get_secret_value() if settings.token else None)

    async def aclose(self) -> None:
        await self._client.aclose()

    @staticmethod
    def _as(user_id: str) -> dict[str, str]:
        return {ACT_FOR_HEADER: user_id}

    async def check_graph(self, user_id: str, graph: str) -> None:
        """NotFound for a graph the server does not serve."""
        with _citadel_errors():
            await self._client.assistants.get(graph, headers=self._as(user_id))

    async def get_thread(self, user_id: str, thread_id: str) -> dict[str, Any]:
        with _citadel_errors():
            return dict(await self._client.threads.get(thread_id, headers=self._as(user_id)))

    async def create_thread(
        self, user_id: str, graph: str, metadata: dict[str, Any], thread_id: str | None = None
    ) -> dict[str, Any]:
        with _citadel_errors():
            created = await self._client.threads.create(
                thread_id=thread_id, metadata=metadata, graph_id=graph, headers=self._as(user_id)
            )
        return dict(created)

    async def stream(
        self,
        user_id: str,
        thread_id: str,
        graph: str,
        *,
        input: Any = None,
        command: dict[str, Any] | None = None,
        config: dict[str, Any] | None = None,
        stream_mode: list[str],
        metadata: dict[str, Any] | None = None,
        on_run: Callable[[str], None] | None = None,
    ) -> AsyncIterator[tuple[str, Any]]:
        """A run on the thread, streamed: `(event, data)`. `on_run(run_id)` once it is accepted."""
        parts = self._client.runs.stream(
            thread_id,
            graph,
            input=input,
            command=command,  # type: ignore[arg-type]
            config=config,  # type: ignore[arg-type]
            stream_mode=stream_mode,  # type: ignore[arg-type]
            metadata=metadata,
            headers=self._as(user_id),
            on_run_created=(lambda created: on_run(created["run_id"])) if on_run is not None else None,
        )
        with _citadel_errors():
            async for part in parts:
                yield part.event, part.data

    async def cancel(self, user_id: str, thread_id: str, run_id: str) -> None:
        """Cancel a run and wait until it has stopped (a no-op once it has ended)."""
        with _citadel_errors():
            await self._client.runs.cancel(thread_id, run_id, wait=True, headers=self._as(user_id))
