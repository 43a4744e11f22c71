"""The audit chain head of each stream, as `agora audit export` computes it
(``agora_events.audit``): the SHA-256 chain over every stored message, from the stream's
genesis value. The first view reads a stream's log once; each later one only what was stored
since, so the operations page can show it without reading the whole log every time."""

from __future__ import annotations

import asyncio
from contextlib import aclosing

from nats.aio.client import Client as NatsClient

from agora_events.audit import genesis, link, read_log


class ChainHeads:
    def __init__(self) -> None:
        # Per stream and its creation time (a stream made anew is another log).
        self._heads: dict[tuple[str, str], tuple[int, bytes]] = {}
        self._lock = asyncio.Lock()

    async def head(self, nc: NatsClient, stream: str, created: str, last_sequence: int) -> str:
        """The head after the stream's messages through ``last_sequence``, in hex."""
        async with self._lock:
            key = (stream, created)
            sequence, chain = self._heads.get(key, (0, genesis(stream)))
            if last_sequence > sequence:
                messages = read_log(nc, stream, first=sequence + 1, up_to=last_sequence)
                async with aclosing(messages) as stored:
                    async for message in stored:
                        chain, sequence = link(chain, message), message.sequence
                self._heads[key] = (sequence, chain)
            return chain.hex()
