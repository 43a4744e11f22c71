"""Reactors: durable JetStream consumers whose handlers turn stored events into commands.

What every reactor needs besides its handlers lives here once: the consumers' declaration
(bound to existing streams, one message at a time, in stream order), settling each delivery
(``JetStreamAcknowledgement``), re-creating a consumer that disappeared, lag for readiness,
and ``wait_for`` (has every followed event up to a sequence been handled?).

A service's reactor subclasses ``Reactor``, passes its consumers and declares its routes in
``routes``; the service shell owns the FastStream broker, includes ``router`` and calls
``keep_consumers``/``stop_keeping`` around it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from faststream.middlewares import AckPolicy
from faststream.nats import NatsBroker, NatsRouter, PullSub
from faststream.nats.subscriber import PullStreamSubscriber
from nats.js.api import AckPolicy as ConsumerAckPolicy
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from .messaging import (
    RETRY_DELAYS,
    JetStreamAcknowledgement,
    Outcome,
    Settled,
    SettledHook,
    decode_event,
    existing_stream,
)

log = logging.getLogger("agora.reactor")
# How often the consumers are checked. Short, because while a consumer is missing, FastStream's
# fetch loop retries without pause once its waiting fetch has run out (measured: most of a core).
KEEP_EVERY = 1.0
FETCH_TIMEOUT = 5.0
"""Seconds one pull request waits for a message before the next is sent."""
RECHECK_SECONDS = 0.5
"""How often ``wait_for`` asks the consumer again when no settlement woke it."""
FINISHED = frozenset({Outcome.ACKNOWLEDGED, Outcome.TERMINATED})


class ReactorBehindError(Exception):
    """The reactor did not reach a sequence in the time given."""


@dataclass(frozen=True, slots=True)
class Consumer:
    stream: str
    durable: str
    filters: tuple[str, ...]
    description: str = ""

    def subscribe(self, router: NatsRouter, description: str) -> PullStreamSubscriber:
        """This consumer's subscriber on ``router``: one message at a time, in stream order,
        settled by the router's ``JetStreamAcknowledgement``."""
        return router.subscriber(
            # One filter is the subscription's subject; several live in the config.
            self.filters[0] if len(self.filters) == 1 else "",
            stream=existing_stream(self.stream),
            durable=self.durable,
            config=self.config(),
            pull_sub=PullSub(batch_size=1, timeout=FETCH_TIMEOUT),
            ack_policy=AckPolicy.MANUAL,
            decoder=decode_event,
            no_reply=True,
            title=f"{self.durable}:subscribe",
            description=description,
        )

    async def next_followed(self, js: JetStreamContext, after: int) -> int | None:
        """The stream sequence of the first event past ``after`` that this consumer follows
        (None: there is none yet), by direct get."""
        found = []
        for subject in self.filters:
            try:
                message = await js.get_msg(
                    self.stream, seq=after + 1, subject=subject, next=True, direct=True
                )
            except NotFoundError:
                continue
            if message.seq is not None:
                found.append(message.seq)
        return min(found, default=None)

    def config(self, after: int = 0) -> ConsumerConfig:
        """Created as this when missing; an existing consumer of that name is bound as is.
        ``after``: start past that stream sequence instead of at the beginning."""
        one = len(self.filters) == 1
        return ConsumerConfig(
            durable_name=self.durable,
            description=self.description or None,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE if after else DeliverPolicy.ALL,
            opt_start_seq=after + 1 if after else None,
            ack_policy=ConsumerAckPolicy.EXPLICIT,
            ack_wait=60.0,
            max_ack_pending=1,
            filter_subject=self.filters[0] if one else None,
            filter_subjects=None if one else list(self.filters),
        )


def caught_up(floor: int, next_followed: int | None, sequence: int) -> bool:
    """Whether a consumer has finished every event it follows up to stream ``sequence``:
    its ack floor (everything up to it settled) reaches the sequence, or the first event it
    follows after the floor comes later (or not at all).

    The stream is asked which event comes next, not the consumer's pending counts: those are
    updated after the publisher's acknowledgement, so right after an append they may still
    say "nothing pending" (seen under load), and a delivery handed back for a later retry is
    neither pending nor awaiting its ack for a while."""
    return floor >= sequence or next_followed is None or next_followed > sequence


class Reactor:
    """Durable consumers and their routes on one FastStream router."""

    def __init__(
        self,
        broker: NatsBroker,
        consumers: Sequence[Consumer],
        *,
        name: str,
        retry_delays: Sequence[float] = RETRY_DELAYS,
        observe: SettledHook | None = None,
    ) -> None:
        self.name = name
        self._broker = broker
        self._observe = observe
        self.consumers = {consumer.stream: consumer for consumer in consumers}
        self._progress = asyncio.Condition()
        self._finished: dict[str, int] = {}  # durable → highest sequence settled for good
        self._keeper: asyncio.Task[None] | None = None
        acknowledgement = JetStreamAcknowledgement(retry_delays=retry_delays, settled=self._settled)
        self.router = NatsRouter(middlewares=[acknowledgement])
        self.routes(self.router)

    def routes(self, router: NatsRouter) -> None:
        """Declare the handlers on ``router`` (subscribe through ``self.consumers``)."""
        raise NotImplementedError

    async def _settled(self, settled: Settled) -> None:
        if settled.consumer and settled.sequence and settled.outcome in FINISHED:
            durable, sequence = settled.consumer, settled.sequence
            self._finished[durable] = max(self._finished.get(durable, 0), sequence)
        async with self._progress:
            self._progress.notify_all()
        if self._observe is not None:
            await self._observe(settled)

    # -- keeping the consumers -----------------------------------------------------------------

    async def ensure_consumers(self) -> list[str]:
        """Re-create a consumer that has disappeared (deleted by hand, lost in a restore of
        the stream), starting after the last event this process finished with; returns the
        durable names re-created. FastStream's fetch loop picks the new consumer up."""
        js = self._broker.connection.jetstream()
        recreated = []
        for consumer in self.consumers.values():
            try:
                await js.consumer_info(consumer.stream, consumer.durable)
            except NotFoundError:
                after = self._finished.get(consumer.durable, 0)
                await js.add_consumer(consumer.stream, consumer.config(after=after))
                log.warning(
                    "consumer re-created",
                    extra={"consumer": consumer.durable, "after_sequence": after},
                )
                recreated.append(consumer.durable)
        return recreated

    def keep_consumers(self, every: float = KEEP_EVERY) -> None:
        """Check the consumers every ``every`` seconds until ``stop_keeping``."""
        if self._keeper is None:
            self._keeper = asyncio.create_task(self._keep(every), name=f"{self.name} consumers")

    async def stop_keeping(self) -> None:
        keeper, self._keeper = self._keeper, None
        if keeper is not None:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper

    async def _keep(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)  # a polling period, not a synchronisation
            try:
                await self.ensure_consumers()
            except Exception as exc:  # NATS away: the next round tries again
                log.warning("cannot check the consumers", extra={"error": type(exc).__name__})

    # -- progress ------------------------------------------------------------------------------

    async def lag(self) -> dict[str, int]:
        """Messages each consumer has not yet finished with (for /readyz)."""
        js = self._broker.connection.jetstream()
        lag = {}
        for consumer in self.consumers.values():
            info = await js.consumer_info(consumer.stream, consumer.durable)
            lag[consumer.durable] = info.num_pending + info.num_ack_pending
        return lag

    async def wait_for(
        self, sequence: int, *, stream: str | None = None, timeout: float = 30.0
    ) -> None:
        """Return once every event of ``stream`` (by default the stream of the first
        consumer) up to ``sequence`` that the reactor follows has been handled; raise
        ReactorBehindError after ``timeout`` seconds (generous by default: a loaded machine
        may take seconds to start a consumer and handle what it holds)."""
        consumer = self.consumers[stream or next(iter(self.consumers))]
        js = self._broker.connection.jetstream()
        try:
            async with asyncio.timeout(timeout):
                while True:
                    async with self._progress:
                        info = await js.consumer_info(consumer.stream, consumer.durable)
                        floor = (info.ack_floor.stream_seq if info.ack_floor else 0) or 0
                        following = (
                            None
                            if floor >= sequence
                            else await consumer.next_followed(js, after=floor)
                        )
                        if caught_up(floor, following, sequence):
                            return
                        # Woken by each settled event; the server may record a settlement
                        # it was not asked to confirm (a term) after the wake-up, so look
                        # again now and then even without one.
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(RECHECK_SECONDS):
                                await self._progress.wait()
        except TimeoutError:
            raise ReactorBehindError(
                f"{self.name} has not handled {consumer.stream} up to {sequence} within {timeout}s"
            ) from None


__all__ = ["Consumer", "Reactor", "ReactorBehindError", "caught_up"]
