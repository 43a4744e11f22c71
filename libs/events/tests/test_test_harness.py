"""The test harness itself: what it does when the server refuses to create a stream."""

from __future__ import annotations

from typing import Any

import pytest
from nats.js.errors import NotFoundError, ServerError

from agora_events.testing.pytest_plugin import reset_streams


class RefusingJetStream:
    """Refuses the first ``refusals`` stream creations with ``err_code``, then accepts."""

    def __init__(self, refusals: int, err_code: int) -> None:
        self.refusals = refusals
        self.err_code = err_code
        self.created: list[str] = []

    async def delete_stream(self, name: str) -> None:
        raise NotFoundError

    async def stream_info(self, name: str) -> Any:
        raise NotFoundError  # each creation attempt starts from a clean server here

    async def add_stream(self, config: Any) -> None:
        if self.refusals > 0:
            self.refusals -= 1
            raise ServerError(code=500, err_code=self.err_code, description="refused")
        self.created.append(config.name)


class Connection:
    def __init__(self, js: RefusingJetStream) -> None:
        self.js = js

    def jetstream(self) -> RefusingJetStream:
        return self.js


async def test_stream_creation_refused_right_after_a_deletion_is_tried_again() -> None:
    js = RefusingJetStream(refusals=3, err_code=10049)  # "error creating store for stream"
    await reset_streams(Connection(js))  # type: ignore[arg-type]
    assert js.created == ["REGISTRATION", "AGENDA", "DECLARATIONS", "NOTIFICATIONS"]


async def test_any_other_refusal_fails_the_test_at_once() -> None:
    js = RefusingJetStream(refusals=1, err_code=10052)
    with pytest.raises(ServerError):
        await reset_streams(Connection(js))  # type: ignore[arg-type]
    assert js.created == []
