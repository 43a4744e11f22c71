"""Reading a stream through a JetStream pull consumer, one batch per request.

Each pull request is ``{"batch": n, "no_wait": true, "expires": t}``: the server answers at
once with every message available (up to n) followed by a "404 No Messages" status, or, when
none is available, waits up to ``t`` for the first one. So a caught-up reader hears of a new
event at once, and a reader far behind gets full batches.

The database checkpoint is the source of truth for where a reader starts: a consumer is
(re)created to deliver from ``checkpoint + 1`` whenever a reader starts or something went
wrong, so a batch that was fetched but not committed is never skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from .delivery import Delivery

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_DONE = {"404", "408"}  # no messages now / the request expired
_HEARTBEAT = "100"


class SourceError(Exception):
    """The stream or consumer misbehaved; the reader should be recreated."""


class StreamRecreatedError(SourceError):
    """The checkpoint lies beyond the end of the stream: the stream was recreated."""


def consumer_name(*parts: str) -> str:
    return "_".join(_UNSAFE.sub("-", part) for part in parts)


@dataclass(frozen=True, slots=True)
class ConsumerOptions:
    ack_wait: float = 60.0
    max_ack_pending: int = 20_000
    # A durable consumer nobody pulls from for this long is removed by the server, so the
    # consumers of read-model databases thrown away do not pile up.
    inactive_threshold: float = 3 * 24 * 3600.0


class _Pull:
    """The answer to one pull request, filled in by the subscription's callback."""

    def __init__(self, batch: int) -> None:
        self.batch = batch
        self.messages: list[Msg] = []
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def finish(self, error: Exception | None = None) -> None:
        if self.done.done():
            return
        if error is None:
            self.done.set_result(None)
        else:
            self.done.set_exception(error)


class PullReader:
    """Batches of deliveries from one consumer of one stream."""

    def __init__(self, nc: NatsClient, stream: str, consumer: str, *, ack: bool) -> None:
        self._nc = nc
        self.stream = stream
        self.consumer = consumer
        self._ack = ack
        self._subscription: Subscription | None = None
        self._inbox = ""
        self._pull: _Pull | None = None

    @classmethod
    async def open(
        cls,
        nc: NatsClient,
        stream: str,
        subjects: Sequence[str],
        *,
        after: int,
        durable: str | None = None,
        options: ConsumerOptions | None = None,
    ) -> PullReader:
        """A reader delivering ``subjects`` of ``stream`` from sequence ``after + 1``.

        ``durable`` names a durable consumer acknowledged after each commit; without it the
        consumer is ephemeral and unacknowledged (a replay keeps no server-side state)."""
        options = options or ConsumerOptions()
        js = nc.jetstream()
        info = await js.stream_info(stream)
        if after > info.state.last_seq:
            raise StreamRecreatedError(
                f"the checkpoint {after} is past the end of {stream} "
                f"(last sequence {info.state.last_seq}): the stream was recreated; "
                "rebuild the read model"
            )
        name = durable or consumer_name("replay", uuid.uuid4().hex[:12])
        config = ConsumerConfig(
            name=name,
            durable_name=durable,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE if after else DeliverPolicy.ALL,
            opt_start_seq=after + 1 if after else None,
            ack_policy=AckPolicy.ALL if durable else AckPolicy.NONE,
            ack_wait=options.ack_wait if durable else None,
            max_ack_pending=options.max_ack_pending if durable else None,
            inactive_threshold=options.inactive_threshold if durable else 60.0,
            mem_storage=None if durable else True,
            filter_subject=subjects[0] if len(subjects) == 1 else None,
            filter_subjects=list(subjects) if len(subjects) > 1 else None,
        )
        if durable:
            with contextlib.suppress(NotFoundError):
                await js.delete_consumer(stream, durable)
        await js.add_consumer(stream, config)
        reader = cls(nc, stream, name, ack=durable is not None)
        await reader._subscribe()
        return reader

    async def _subscribe(self) -> None:
        self._inbox = self._nc.new_inbox()
        # A callback is far cheaper per message than next_msg(), which wraps every call
        # in asyncio.wait_for.
        self._subscription = await self._nc.subscribe(self._inbox, cb=self._receive)

    async def _receive(self, message: Msg) -> None:
        pull = self._pull
        if pull is None:
            return  # left over from a request given up on; its consumer is being replaced
        status = message.headers.get("Status") if message.headers else None
        if status is None:
            pull.messages.append(message)
            if len(pull.messages) >= pull.batch:
                pull.finish()
        elif status in _DONE:
            pull.finish()
        elif status != _HEARTBEAT:
            description = message.headers.get("Description") if message.headers else ""
            pull.finish(SourceError(f"consumer {self.consumer}: {status} {description}"))

    async def fetch(self, batch: int, *, wait: float | None) -> list[Delivery]:
        """Up to ``batch`` deliveries; waits up to ``wait`` seconds for the first one
        (``None``: answer at once, empty when the consumer has nothing pending)."""
        if self._subscription is None:
            raise SourceError("the reader is closed")
        request: dict[str, object] = {"batch": batch, "no_wait": True}
        if wait:
            request["expires"] = int(wait * 1_000_000_000)
        pull = self._pull = _Pull(batch)
        subject = f"$JS.API.CONSUMER.MSG.NEXT.{self.stream}.{self.consumer}"
        try:
            await self._nc.publish(subject, json.dumps(request).encode(), reply=self._inbox)
            await asyncio.wait_for(asyncio.shield(pull.done), (wait or 0) + 5.0)
        except TimeoutError:
            # Late answers must not land in a later request: listen on a new inbox.
            await self._resubscribe()
            raise SourceError(f"no answer from consumer {self.consumer} in time") from None
        finally:
            self._pull = None
        return [Delivery.from_msg(message) for message in pull.messages]

    async def _resubscribe(self) -> None:
        if self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()
        await self._subscribe()

    async def acknowledge(self, deliveries: Sequence[Delivery]) -> None:
        """Acknowledge everything up to the last delivery (the consumer acks cumulatively)."""
        if not self._ack or not deliveries:
            return
        reply = deliveries[-1].reply
        if reply:
            await self._nc.publish(reply, b"+ACK")

    async def close(self, *, delete: bool | None = None) -> None:
        subscription, self._subscription = self._subscription, None
        # Closing over a dead connection is not an error; the server drops an ephemeral
        # consumer after a minute of inactivity anyway.
        if subscription is not None:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
        if delete if delete is not None else not self._ack:
            with contextlib.suppress(Exception):
                await self._nc.jetstream().delete_consumer(self.stream, self.consumer)


async def last_sequence(nc: NatsClient, stream: str) -> int:
    info = await nc.jetstream().stream_info(stream)
    return int(info.state.last_seq)


async def next_matching(
    nc: NatsClient, stream: str, subjects: Sequence[str], after: int
) -> int | None:
    """The sequence of the first message after ``after`` matching any of ``subjects`` (one
    direct get per subject, sent together)."""
    found = await asyncio.gather(*(_next_by_subject(nc, stream, s, after) for s in subjects))
    sequences = [sequence for sequence in found if sequence is not None]
    return min(sequences) if sequences else None


async def _next_by_subject(nc: NatsClient, stream: str, subject: str, after: int) -> int | None:
    request = {"seq": after + 1, "next_by_subj": subject}
    try:
        reply = await nc.request(
            f"$JS.API.DIRECT.GET.{stream}", json.dumps(request).encode(), timeout=2.0
        )
    except NatsTimeoutError as exc:
        raise SourceError(f"{stream} did not answer a direct get in time") from exc
    headers = reply.headers or {}
    status = headers.get("Status")
    if status == "404":
        return None
    if status:
        raise SourceError(f"direct get on {stream}: {status} {headers.get('Description')}")
    return int(headers["Nats-Sequence"])
