"""Live pages: a server-sent event each time the console's read model has applied a new
event of a context.

A page is rendered with the console's checkpoint on the context's stream (``after``); the
page then opens ``/live/<context>?after=N``. The endpoint follows the live feed
(``feed.<context>.>``, which carries stored events only, each with its stream sequence) and
for each event waits until the console's own projection has applied it; only then does it
tell the page, which fetches itself again. So a page never re-renders before the change is
in the read model it is rendered from, and a change made between the render and the
subscription is not lost: once the server holds the subscription, the endpoint compares
``after`` with the stream's end.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from agora_events.projections.runner import ProjectionRunner, ReadModelBehind
from agora_events.projections.source import last_sequence
from agora_events.streams import STREAMS

KEEP_ALIVE_SECONDS = 15.0
"""A comment this often keeps proxies from closing a quiet stream, and lets the server
notice a page that went away."""
CATCH_UP_SECONDS = 10.0
LIVE_CONTEXTS = ("agenda", "declarations", "registration")


async def checkpoint(runner: ProjectionRunner, context: str) -> int:
    """How far every console projection reading the context's stream has applied it: per
    projection, the stream's end when nothing it reads is pending, else its checkpoint (a
    projection's checkpoint stays put while events it does not read go by); the lowest."""
    stream = STREAMS[context].name
    found = [
        lag.last_sequence if lag.lag == 0 else lag.checkpoint
        for lag in await runner.lag()
        if lag.stream == stream
    ]
    return min(found, default=0)


def _sequence(msg: Msg) -> int | None:
    try:
        return int((msg.headers or {})["Nats-Sequence"])
    except (KeyError, ValueError):
        return None


async def changes(
    nc: NatsClient, runner: ProjectionRunner, context: str, after: int
) -> AsyncGenerator[str, None]:
    """The ``text/event-stream`` of a page that shows the context's events up to ``after``."""
    stream = STREAMS[context].name
    arrived: asyncio.Queue[int] = asyncio.Queue()

    async def heard(msg: Msg) -> None:
        sequence = _sequence(msg)
        if sequence is not None:
            arrived.put_nowait(sequence)

    subscription = await nc.subscribe(STREAMS[context].feed, cb=heard)
    try:
        # subscribe() only queues the SUB; the round trip makes sure the server holds it, so
        # every event stored from here on is heard. What was stored before is waited for as
        # the stream's end: the read model may not have applied it yet.
        await nc.flush()
        yield "retry: 3000\n: following the log\n\n"
        shown = after
        stored = await last_sequence(nc, stream)
        if stored > shown:
            arrived.put_nowait(stored)
        while True:
            try:
                async with asyncio.timeout(KEEP_ALIVE_SECONDS):
                    wanted = await arrived.get()
            except TimeoutError:
                yield ": still here\n\n"
                continue
            while not arrived.empty():
                wanted = max(wanted, arrived.get_nowait())
            if wanted <= shown:
                continue
            try:
                await runner.wait_for(wanted, stream=stream, timeout=CATCH_UP_SECONDS)
            except ReadModelBehind:
                arrived.put_nowait(wanted)  # still coming: wait for it with the next one
                continue
            shown = wanted
            yield _changed(shown)
    finally:
        with contextlib.suppress(Exception):
            await subscription.unsubscribe()


def _changed(sequence: int) -> str:
    return f"event: changed\ndata: {sequence}\n\n"
