"""The projection runner: one loop per projection and stream, from the log into the database.

Each loop takes its lease, (re)creates its durable pull consumer at its checkpoint + 1, and
then repeatedly fetches a batch, applies it in one transaction with the checkpoint (see
``applier``), and acknowledges it after the commit. Anything unexpected (NATS or the database
down, a consumer deleted, a gap in delivery) ends the pass; the loop waits a little and starts
again from the stored checkpoint, so nothing fetched is ever skipped.

``wait_for`` gives read-your-writes: a query waits (bounded) until the projections reading a
stream have applied every event of theirs up to a given sequence. A replica that does not
project (its lease is held elsewhere, or it was told not to) learns of progress from the
checkpoints the projecting replica announces on core NATS after each commit, and reads the
stored checkpoint now and then in case an announcement was lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError

from .. import contracts
from ..catalogue import EventRegistry, catalogue
from ..metrics import DEAD_LETTERS, PROJECTION_BATCH_SECONDS, PROJECTION_EVENTS
from ..streams import STREAMS
from .applier import Applier, BatchAbandonedError, BatchOutcome
from .bookkeeping import DeadLetter, database_id, read_checkpoints
from .database import ReadModelDatabase
from .dead_letters import (
    DiscardOutcome,
    RetryOutcome,
    discard_dead_letter,
    list_dead_letters,
    retry_dead_letters,
)
from .definition import Projection
from .delivery import Delivery
from .lease import Lease
from .progress import Progress
from .rebuild import REPLAY_BATCH, RebuildReport, rebuild
from .source import PullReader, SourceError, consumer_name, last_sequence, next_matching

log = logging.getLogger("agora.projections")

# Core NATS, no stream: an announcement is a hint that saves a poll, never the record (the
# checkpoint in the database is). Followed by the database's id, the projection and the stream.
CHECKPOINTS_SUBJECT = "_AGORA.checkpoint"

State = Literal["stopped", "standby", "running", "retrying"]


class ReadModelBehind(Exception):
    """The read model did not reach the wanted sequence in time. Retry shortly."""

    retry_after = 1

    def __init__(
        self, projection: str, stream: str, wanted: int, reached: int, waited: float
    ) -> None:
        super().__init__(
            f"read model {projection!r} has applied {stream} up to sequence {reached}, not yet "
            f"{wanted} (waited {waited:g} s); retry shortly"
        )
        self.projection = projection
        self.stream = stream
        self.wanted = wanted
        self.reached = reached


@dataclass(frozen=True, slots=True)
class Lag:
    projection: str
    stream: str
    checkpoint: int
    last_sequence: int
    lag: int
    """Stream sequences between the checkpoint and the stream's end; 0 when no event this
    projection reads is pending."""
    state: State = "stopped"


@dataclass(frozen=True, slots=True)
class RunnerOptions:
    batch_size: int = 500
    fetch_wait: float = 5.0  # how long one pull request waits for a first new event
    max_attempts: int = 3  # handler failures before an event is parked
    retry_delay: float = 0.1  # first backoff between handler attempts
    error_pause: float = 1.0  # after a failed pass, before starting again
    standby_pause: float = 5.0  # between attempts to take a lease held elsewhere
    # read-your-writes on a replica whose loop stands by: how often it reads the stored
    # checkpoint when no announcement has come (one may be lost in a reconnection)
    poll_interval: float = 0.05
    stop_grace: float = 10.0  # how long stop() waits for a batch to roll back, then cancels


class ProjectionRunner:
    """Keeps ``projections`` up to date in ``db`` from the log, in background tasks."""

    def __init__(
        self,
        nc: NatsClient,
        db: ReadModelDatabase,
        projections: Sequence[Projection],
        *,
        consumer_prefix: str,
        registry: EventRegistry = catalogue,
        options: RunnerOptions | None = None,
        project: bool = True,
    ) -> None:
        """``project=False``: never take a lease; follow the replica that projects."""
        self._nc = nc
        self._project = project
        self._subscription: Subscription | None = None
        self._announced: dict[str, _Loop] = {}
        self._db = db
        self._projections = {p.name: p for p in projections}
        self._prefix = consumer_prefix
        own = STREAMS.get(consumer_prefix)
        self._own_stream = own.name if own is not None else None
        self._registry = registry
        self.options = options or RunnerOptions()
        self._loops = [
            _Loop(self, projection, stream)
            for projection in projections
            for stream in projection.streams
        ]

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Start one background loop per projection and stream (db.prepare() first)."""
        contracts.load_all()  # every event type is known before the first batch
        async with self._db.session() as session:
            stored = await read_checkpoints(session)
            suffix = await database_id(session)
        missing = [f"{lp.name}/{lp.stream}" for lp in self._loops if lp.key not in stored]
        if missing:
            raise RuntimeError(
                f"no checkpoints for {', '.join(missing)}: call db.prepare(projections) first"
            )
        announced = f"{CHECKPOINTS_SUBJECT}.{consumer_name(suffix)}"
        self._announced = {
            f"{announced}.{consumer_name(loop.name)}.{loop.stream}": loop for loop in self._loops
        }
        # Listening before the loops start. An announcement made since the checkpoints were
        # read above is missed, as one lost in a reconnection is: a wait then reads the store.
        self._subscription = await self._nc.subscribe(f"{announced}.>", cb=self._heard)
        for loop, subject in zip(self._loops, self._announced, strict=True):
            loop.consumer = consumer_name(self._prefix, loop.name, loop.stream, suffix)
            loop.announce_on = subject
            loop.position = stored[loop.key]
            if self._project:
                loop.start()
            else:
                loop.state = "standby"

    async def stop(self) -> None:
        """Stop every loop: a waiting fetch is abandoned, a batch in progress rolls back
        before its next event (it comes again on the next start). Only a handler that hangs
        longer than ``stop_grace`` gets its task cancelled."""
        await asyncio.gather(*(loop.stop() for loop in self._loops))
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            with contextlib.suppress(NatsError):  # the connection is gone: so is the interest
                await subscription.unsubscribe()

    @property
    def listening(self) -> bool:
        """Whether announced checkpoints reach this runner's loops."""
        return self._subscription is not None

    async def _heard(self, message: Msg) -> None:
        loop = self._announced.get(message.subject)
        if loop is None or loop.state == "running":
            return  # not ours, or our own (the loop that projects knows its position)
        try:
            sequence = int(message.data)
        except ValueError:
            log.warning("ignored checkpoint announcement %r on %s", message.data, message.subject)
            return
        await loop.heard(sequence)

    async def __aenter__(self) -> ProjectionRunner:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- read-your-writes ------------------------------------------------------------------

    async def wait_for(
        self,
        sequence: int,
        stream: str | None = None,
        projection: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        """Return once every projection reading ``stream`` (or just ``projection``) has
        applied its events up to ``sequence``; raise ReadModelBehind after ``timeout``
        (generous by default; a request's wait names its own, the read-your-writes setting).

        ``stream`` defaults to the stream of the runner's own context (``consumer_prefix``
        "agenda" → AGENDA), where the sequences of its service's commands come from."""
        stream = stream or self._own_stream
        if stream is None:
            raise LookupError(f"name the stream: {self._prefix!r} is not an Agora context")
        loops = [
            loop
            for loop in self._loops
            if loop.stream == stream and projection in (None, loop.name)
        ]
        if not loops:
            which = f"projection {projection!r}" if projection else "no projection"
            raise LookupError(f"{which} reads {stream} in this runner")
        deadline = asyncio.get_running_loop().time() + timeout
        for loop in loops:
            await loop.wait_until(sequence, deadline)

    # -- lag -------------------------------------------------------------------------------

    async def lag(self) -> list[Lag]:
        async with self._db.session() as session:
            stored = await read_checkpoints(session)
        ends: dict[str, int] = {}
        report = []
        for loop in self._loops:
            if loop.stream not in ends:
                ends[loop.stream] = await last_sequence(self._nc, loop.stream)
            checkpoint = max(stored.get(loop.key, 0), loop.position)
            last = ends[loop.stream]
            behind = await loop.pending_after(checkpoint, last)
            report.append(Lag(loop.name, loop.stream, checkpoint, last, behind, loop.state))
        return report

    # -- dead letters ----------------------------------------------------------------------

    async def dead_letters(self, projection: str | None = None) -> list[DeadLetter]:
        return await list_dead_letters(self._db, projection)

    async def retry_dead_letters(self, ids: Collection[int] | None = None) -> RetryOutcome:
        """Retry parked events (see dead_letters); the loops carry on meanwhile."""
        return await retry_dead_letters(
            self._db, list(self._projections.values()), registry=self._registry, ids=ids
        )

    async def discard_dead_letter(self, letter_id: int, *, reason: str, by: str) -> DiscardOutcome:
        """Give up on one parked event, recorded with who and why, and retry what waited
        behind it (see dead_letters); the loops carry on meanwhile."""
        return await discard_dead_letter(
            self._db,
            list(self._projections.values()),
            letter_id,
            reason=reason,
            by=by,
            registry=self._registry,
        )

    # -- rebuild ---------------------------------------------------------------------------

    async def rebuild(
        self, projection: str, *, progress: Progress | None = None, batch_size: int = REPLAY_BATCH
    ) -> RebuildReport:
        """Rebuild one projection from zero beside the live one, then swap it in; the loops
        and queries carry on meanwhile."""
        if projection not in self._projections:
            known = ", ".join(sorted(self._projections))
            raise LookupError(f"no projection {projection!r}; known: {known}")
        return await rebuild(
            self._nc,
            self._db,
            self._projections[projection],
            registry=self._registry,
            progress=progress,
            batch_size=batch_size,
        )


class _Loop:
    """One projection reading one stream."""

    def __init__(self, runner: ProjectionRunner, projection: Projection, stream: str) -> None:
        self.runner = runner
        self.projection = projection
        self.name = projection.name
        self.stream = stream
        self.key = (projection.name, stream)
        self.subjects = projection.streams[stream]
        self.consumer = ""
        self.announce_on = ""  # the subject of this loop's checkpoint announcements
        self.position = 0  # the highest sequence known applied
        # The highest sequence a reader of this loop has delivered: position reaches it
        # without asking the stream (a reader opened after a failure delivers it again).
        self.fetched = 0
        self.state: State = "stopped"
        self._options = runner.options
        self._applier = Applier(
            runner._db,
            projection,
            stream,
            registry=runner._registry,
            max_attempts=self._options.max_attempts,
            retry_delay=self._options.retry_delay,
        )
        self._lease = Lease(runner._db, projection.name, stream)
        self._advanced = asyncio.Condition()
        self._stopping = asyncio.Event()
        self._idle = False
        self._task: asyncio.Task[None] | None = None
        self._probe: asyncio.Task[int | None] | None = None  # in flight
        self._next_probe: asyncio.Task[int | None] | None = None  # not yet sent

    # -- running ---------------------------------------------------------------------------

    def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name=f"projection {self.name} {self.stream}")

    async def stop(self) -> None:
        self._stopping.set()
        task, self._task = self._task, None
        if task is None:
            return
        if self._idle:
            task.cancel()  # waiting for events, not in the middle of a batch
        else:
            done, _ = await asyncio.wait({task}, timeout=self._options.stop_grace)
            if not done:
                task.cancel()  # a handler hangs; a batch rolls back when cancelled
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                if not await self._lease.acquire():
                    self.state = "standby"
                    await self._pause(self._options.standby_pause)
                    continue
                try:
                    self.state = "running"
                    await self._follow()
                except BatchAbandonedError:
                    return
                except Exception as exc:  # every failure ends the pass, none the loop
                    self.state = "retrying"
                    log.warning("projection %s on %s: %s", self.name, self.stream, exc)
                    await self._pause(self._options.error_pause)
        finally:
            self.state = "stopped"
            await self._lease.release()

    async def _follow(self) -> None:
        db = self.runner._db
        async with db.session() as session:
            await self._advance((await read_checkpoints(session)).get(self.key, 0))
        after = self.position
        reader = await PullReader.open(
            self.runner._nc, self.stream, self.subjects, after=after, durable=self.consumer
        )
        try:
            while True:
                self._idle = True
                if self._stopping.is_set():
                    return
                deliveries = await reader.fetch(
                    self._options.batch_size, wait=self._options.fetch_wait
                )
                self._idle = False
                if not deliveries:
                    continue
                self.fetched = max(self.fetched, deliveries[-1].sequence)
                await self._check_order(deliveries[0], after)
                started = time.perf_counter()
                outcome = await self._applier.apply(
                    deliveries, expected=after, abandon=self._stopping
                )
                await reader.acknowledge(deliveries)
                self._measure(outcome, deliveries[-1], time.perf_counter() - started)
                after = max(after, outcome.checkpoint, deliveries[-1].sequence)
                await self._advance(outcome.checkpoint)
                await self._announce(outcome.checkpoint)
        finally:
            self._idle = False
            await reader.close()

    def _measure(self, outcome: BatchOutcome, last: Delivery, seconds: float) -> None:
        PROJECTION_EVENTS.labels(self.name, self.stream).inc(outcome.applied)
        PROJECTION_BATCH_SECONDS.labels(self.name).observe(seconds)
        if outcome.parked:
            DEAD_LETTERS.labels(self.name).inc(outcome.parked)

    async def _check_order(self, first: Delivery, after: int) -> None:
        """Refuse a batch that does not start at the next matching event: delivery went
        wrong (another reader on the consumer, a redelivery gap), so start again."""
        if first.sequence <= after + 1:
            return
        expected = await next_matching(self.runner._nc, self.stream, self.subjects, after)
        if expected is not None and expected < first.sequence:
            raise SourceError(
                f"expected sequence {expected} after {after}, got {first.sequence}: restarting"
            )

    async def _advance(self, sequence: int) -> None:
        if sequence > self.position:
            async with self._advanced:
                self.position = sequence
                self._advanced.notify_all()

    async def heard(self, sequence: int) -> None:
        """The replica that projects committed the checkpoint ``sequence``."""
        await self._advance(sequence)

    async def _announce(self, checkpoint: int) -> None:
        """Tell the replicas that stand by, so their queries waiting for it answer now."""
        try:
            await self.runner._nc.publish(self.announce_on, b"%d" % checkpoint)
        except NatsError as exc:  # they poll the stored checkpoint meanwhile
            log.debug("checkpoint of %s on %s not announced: %s", self.name, self.stream, exc)

    async def _pause(self, seconds: float) -> None:
        """Wait ``seconds`` unless asked to stop first (a backoff, not a synchronisation)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    # -- read-your-writes and lag ----------------------------------------------------------

    async def wait_until(self, sequence: int, deadline: float) -> None:
        clock = asyncio.get_running_loop()
        waited_from = clock.time()
        while self.position < sequence:
            following: int | None
            if self.fetched >= sequence and self.state == "running":
                # Delivered already (the usual case for a command's own event): only applying
                # it is left, and no event of ours before it can still be missing.
                following = sequence
            else:
                # Skip the sequences of events this projection does not read.
                try:
                    following = await self._following()
                except SourceError:
                    # The stream did not answer in time (a loaded server): ask again while
                    # the deadline allows; past it, the reader hears "behind", with
                    # Retry-After.
                    if clock.time() < deadline:
                        await asyncio.sleep(min(0.05, deadline - clock.time()))  # a back-off
                        continue
                    waited = round(clock.time() - waited_from, 2)
                    raise ReadModelBehind(
                        self.name, self.stream, sequence, self.position, waited
                    ) from None
                if following is None or following > sequence:
                    return
            remaining = deadline - clock.time()
            try:
                if self.state == "running":
                    await self._wait_advanced(following, remaining)
                else:
                    await self._poll_database(following, deadline)
            except TimeoutError:
                waited = round(clock.time() - waited_from, 2)
                raise ReadModelBehind(
                    self.name, self.stream, sequence, self.position, waited
                ) from None

    async def _following(self) -> int | None:
        """The first sequence this projection reads after its position. Every waiter that
        asks before a request is sent shares that request; one that asks while a request is
        in flight waits for the next, sent after it, so an answer never predates the write
        its waiter wants (one direct get per round trip, not one per waiting query)."""
        if self._next_probe is None:
            probe = asyncio.ensure_future(self._probe_after(self._probe))
            # Its waiters may all have given up; its error is theirs, not the loop's.
            probe.add_done_callback(lambda done: done.cancelled() or done.exception())
            self._next_probe = probe
        return await asyncio.shield(self._next_probe)

    async def _probe_after(self, previous: asyncio.Task[int | None] | None) -> int | None:
        if previous is not None:
            await asyncio.wait([previous])
        self._probe, self._next_probe = self._next_probe, None
        return await next_matching(self.runner._nc, self.stream, self.subjects, self.position)

    async def _wait_advanced(self, sequence: int, remaining: float) -> None:
        if remaining <= 0:
            raise TimeoutError
        async with self._advanced:
            await asyncio.wait_for(
                self._advanced.wait_for(lambda: self.position >= sequence), remaining
            )

    async def _poll_database(self, sequence: int, deadline: float) -> None:
        """Another replica projects: wait for the checkpoint it announces, and read the one
        it stored when no announcement came for a ``poll_interval`` (or none can come: this
        runner was never started)."""
        clock = asyncio.get_running_loop()
        listening = self.runner.listening
        while True:
            if listening:
                wait = min(self._options.poll_interval, deadline - clock.time())
                with contextlib.suppress(TimeoutError):
                    await self._wait_advanced(sequence, wait)
                    return
            async with self.runner._db.session() as session:
                stored = (await read_checkpoints(session)).get(self.key, 0)
            await self._advance(stored)
            if self.position >= sequence:
                return
            if clock.time() >= deadline:
                raise TimeoutError
            if not listening:
                await asyncio.sleep(min(self._options.poll_interval, deadline - clock.time()))

    async def pending_after(self, checkpoint: int, last: int) -> int:
        if checkpoint >= last:
            return 0
        following = await next_matching(self.runner._nc, self.stream, self.subjects, checkpoint)
        return 0 if following is None else last - checkpoint
