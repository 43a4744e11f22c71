"""The dispatcher: delivers the notices that are due, and records what happened.

It picks pending notices whose time has come from the ``deliveries`` read model, asks the log
whether each is still pending (the read model may lag behind an outcome already recorded),
delivers it, and records the outcome in the notice's own scope. So a notice recorded as
delivered is never sent again, whatever restarts or redeliveries happen; the one window left
is a crash after the remote accepted and before the record, and then the repeat carries the
same Message-ID or webhook-id.

Failures follow the retry schedule (``RetrySchedule``); when it runs out, or the remote says
never (an SMTP 5xx, an HTTP 410), the notice becomes a dead letter. An endpoint that has
failed continuously for ``disable_after`` seconds is disabled (the organisers hear of it
from the ``disabled`` event), and its pending notices become dead letters as they come due.

Session changes for one person and session share a digest key: when the first is due, every
pending one with that key goes in the same mail, the final state and each change.

One dispatcher delivers per database: it holds a lease (a PostgreSQL advisory lock, a file
lock beside a SQLite database) while it runs, and another replica's stands by.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Counter, Histogram
from sqlalchemy import func, select

from agora_events.contracts.notifications import NoticeDecided
from agora_events.projections.database import ReadModelDatabase
from agora_events.projections.lease import Lease

from .application import Notifications
from .domain import RecordDelivery, RecordFailure, message_id, webhook_id
from .mail import Mailer, MailUndelivered, compose
from .projections import attempts, endpoints, notices
from .settings import NotificationsSettings
from .webhooks import Posted, WebhookPoster, body_of, signed_headers

log = logging.getLogger("agora.notifications.delivery")
SETTLED_KEPT = 100_000
DELIVERIES = Counter(
    "agora_notifications_deliveries_total",
    "Delivery attempts by channel and outcome (delivered, failed, dead)",
    ["channel", "outcome"],
)
DELIVERY_SECONDS = Histogram(
    "agora_notifications_delivery_seconds",
    "Time the remote took to accept or refuse one attempt",
    ["channel"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Dispatcher:
    def __init__(
        self,
        commands: Notifications,
        db: ReadModelDatabase,
        settings: NotificationsSettings,
        *,
        clock: Clock = utc_now,
        draw: Callable[[], float] = random.random,
        mailer: Mailer | None = None,
        poster: WebhookPoster | None = None,
    ) -> None:
        self._commands = commands
        self._db = db
        self._settings = settings
        self._clock = clock
        self._draw = draw
        self._mailer = mailer or Mailer(settings)
        self._poster = poster or WebhookPoster(
            timeout=settings.webhook_timeout, production=settings.env != "local"
        )
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(settings.deliveries_in_flight)
        self._in_flight: set[str] = set()
        self._settled: OrderedDict[str, int] = OrderedDict()
        """Notices this process recorded an outcome for, with its sequence: skipped until
        the read model shows it. Bounded: one forgotten is only read from the log again."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.Task[None] | None = None
        self._lease = Lease(db, "dispatcher", "NOTIFICATIONS")

    def start(self) -> None:
        if self._loop is None:
            self._loop = asyncio.create_task(self._run(), name="notifications dispatcher")

    async def stop(self) -> None:
        loop, self._loop = self._loop, None
        if loop is not None:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._lease.release()
        await self._poster.close()

    def _settle(self, notice: str, sequence: int) -> None:
        self._settled[notice] = sequence
        self._settled.move_to_end(notice)
        while len(self._settled) > SETTLED_KEPT:
            self._settled.popitem(last=False)

    def wake(self) -> None:
        """Look for due notices now (a notice was decided, the clock moved in a test)."""
        self._wake.set()

    async def take_lease(self) -> bool:
        """Whether this dispatcher is the one that delivers for its database (a lock held
        while the process lives); another stands by."""
        return await self._lease.acquire()

    async def _run(self) -> None:
        standing_by = False
        while True:
            self._wake.clear()
            try:
                if await self.take_lease():
                    await self.dispatch_due()
                elif not standing_by:
                    log.info("another dispatcher delivers for this database; standing by")
                standing_by = not self._lease.held
            except Exception as exc:  # the database or NATS is away: the next round retries
                log.warning("dispatch round failed", extra={"error": type(exc).__name__})
            with contextlib.suppress(TimeoutError):
                # A polling period (notices come due with time), cut short by wake().
                await asyncio.wait_for(self._wake.wait(), self._settings.poll_every)

    async def dispatch_due(self) -> int:
        """Start delivering every notice due now; how many were started."""
        now = self._clock()
        async with self._db.session() as db:
            rows = (
                await db.execute(
                    select(notices.c.notice_id, notices.c.digest_key, notices.c.sequence)
                    .where(notices.c.status == "pending", notices.c.next_attempt_at <= now)
                    .order_by(notices.c.next_attempt_at, notices.c.sequence)
                    .limit(500)
                )
            ).all()
        started = 0
        for row in rows:
            if (
                row.notice_id in self._in_flight
                or self._settled.get(row.notice_id, 0) > row.sequence
            ):
                continue
            self._settled.pop(row.notice_id, None)
            group = [row.notice_id]
            if row.digest_key is not None:
                group = await self._digest_group(row.digest_key, row.notice_id)
            self._in_flight.update(group)
            await self._slots.acquire()
            task = asyncio.create_task(self._deliver_guarded(group))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            started += 1
        return started

    async def _digest_group(self, key: str, lead: str) -> list[str]:
        async with self._db.session() as db:
            found = (
                await db.scalars(
                    select(notices.c.notice_id)
                    .where(notices.c.digest_key == key, notices.c.status == "pending")
                    .order_by(notices.c.sequence)
                )
            ).all()
        group = [n for n in found if n not in self._in_flight]
        return group if lead in group else [lead, *group]

    async def _deliver_guarded(self, group: list[str]) -> None:
        try:
            await self._deliver(group)
        except Exception as exc:
            # Not recorded: the notice stays pending and is tried on a later round.
            log.warning(
                "delivery not recorded", extra={"notice_id": group[0], "error": type(exc).__name__}
            )
        finally:
            self._in_flight.difference_update(group)
            self._slots.release()

    async def _deliver(self, group: list[str]) -> None:
        decided: list[tuple[NoticeDecided, int]] = []
        for notice in group:
            state, last = await self._commands.notice(notice)
            if state.status == "pending" and state.decided is not None:
                decided.append((state.decided, state.attempts + 1))
            else:
                self._settle(notice, last)  # recorded already; the read model catches up
        if not decided:
            return
        lead, attempt = decided[0]
        if lead.channel == "email":
            await self._email([d for d, _ in decided], attempt)
        else:
            for decision, decision_attempt in decided:
                await self._webhook(decision, decision_attempt)

    # -- email -------------------------------------------------------------------------------------

    async def _email(self, carried: Sequence[NoticeDecided], attempt: int) -> None:
        lead = carried[0]
        message = compose(lead, self._settings, digest=carried if len(carried) > 1 else ())
        started = asyncio.get_running_loop().time()
        try:
            await self._mailer.send(message)
        except MailUndelivered as exc:
            for notice in carried:
                await self._failed(notice.notice_id, attempt, str(exc), permanent=exc.permanent)
            return
        latency = int((asyncio.get_running_loop().time() - started) * 1000)
        DELIVERIES.labels("email", "delivered").inc(len(carried))
        DELIVERY_SECONDS.labels("email").observe(latency / 1000)
        sent_as = message_id(lead.notice_id, self._settings.message_id_domain)
        others = tuple(n.notice_id for n in carried[1:])
        result = await self._commands.record_delivery(
            RecordDelivery(lead.notice_id, attempt, sent_as, latency_ms=latency, digest_of=others)
        )
        self._settle(lead.notice_id, result.last_sequence)
        for other in others:
            result = await self._commands.record_delivery(
                RecordDelivery(
                    other, attempt, sent_as, latency_ms=latency, carried_by=lead.notice_id
                )
            )
            self._settle(other, result.last_sequence)

    # -- webhooks ----------------------------------------------------------------------------------

    async def _endpoint_row(self, endpoint_id: str) -> Any:
        async with self._db.session() as db:
            return (
                await db.execute(select(endpoints).where(endpoints.c.endpoint_id == endpoint_id))
            ).one_or_none()

    def secrets_for(
        self, endpoint_id: str, generation: int, previous_until: datetime | None
    ) -> list[str]:
        secrets = [self._commands.secret_of(endpoint_id, generation)]
        if generation > 1 and previous_until is not None and self._clock() < previous_until:
            secrets.append(self._commands.secret_of(endpoint_id, generation - 1))
        return secrets

    async def _webhook(self, notice: NoticeDecided, attempt: int) -> None:
        endpoint = await self._endpoint_row(notice.recipient)
        if endpoint is None or endpoint.status != "enabled":
            status = "unknown" if endpoint is None else endpoint.status
            result = await self._commands.dead_letter(notice.notice_id, f"endpoint {status}")
            self._settle(notice.notice_id, result.last_sequence)
            return
        body = body_of(notice.facts.get("cloudevent") or {})
        secrets = self.secrets_for(
            endpoint.endpoint_id, endpoint.generation, endpoint.previous_valid_until
        )
        headers = signed_headers(
            secrets, webhook_id(notice.notice_id), body, timestamp=int(self._clock().timestamp())
        )
        posted = await self._poster.post(endpoint.url, headers, body)
        DELIVERY_SECONDS.labels("webhook").observe(posted.latency_ms / 1000)
        if posted.ok:
            DELIVERIES.labels("webhook", "delivered").inc()
            result = await self._commands.record_delivery(
                RecordDelivery(
                    notice.notice_id,
                    attempt,
                    headers["webhook-id"],
                    status=posted.status,
                    latency_ms=posted.latency_ms,
                )
            )
            self._settle(notice.notice_id, result.last_sequence)
            return
        error = posted.error or f"HTTP {posted.status}"
        if posted.gone:
            await self._commands.disable_endpoint(
                endpoint.endpoint_id, "the endpoint answered 410 Gone"
            )
        await self._failed(notice.notice_id, attempt, error, posted=posted, permanent=posted.gone)
        if not posted.gone:
            await self._disable_if_failing(endpoint.endpoint_id)

    async def _disable_if_failing(self, endpoint_id: str) -> None:
        async with self._db.session() as db:
            last_success = await db.scalar(
                select(func.max(attempts.c.at)).where(
                    attempts.c.recipient == endpoint_id, attempts.c.outcome == "delivered"
                )
            )
            failing = select(func.min(attempts.c.at)).where(
                attempts.c.recipient == endpoint_id, attempts.c.outcome == "failed"
            )
            if last_success is not None:
                failing = failing.where(attempts.c.at > last_success)
            failing_since = await db.scalar(failing)
        limit = timedelta(seconds=self._settings.disable_after)
        if failing_since is not None and self._clock() - failing_since >= limit:
            hours = self._settings.disable_after / 3600
            await self._commands.disable_endpoint(
                endpoint_id,
                f"every delivery failed for {hours:g} h",
                failing_since=failing_since,
            )

    # -- failures ----------------------------------------------------------------------------------

    async def _failed(
        self,
        notice: str,
        attempt: int,
        error: str,
        *,
        permanent: bool = False,
        posted: Posted | None = None,
    ) -> None:
        now = self._clock()
        upcoming = (
            None if permanent else self._settings.schedule.next_attempt(attempt, now, self._draw)
        )
        channel = "webhook" if posted is not None else "email"
        DELIVERIES.labels(channel, "failed" if upcoming else "dead").inc()
        result = await self._commands.record_failure(
            RecordFailure(
                notice,
                attempt,
                error,
                upcoming,
                status=posted.status if posted else None,
                latency_ms=posted.latency_ms if posted else None,
                dead_reason=error if permanent else None,
            )
        )
        self._settle(notice, result.last_sequence)
        log.info(
            "delivery failed",
            extra={"notice_id": notice, "attempt": attempt, "retry": upcoming is not None},
        )
