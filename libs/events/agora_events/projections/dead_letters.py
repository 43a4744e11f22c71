"""Listing, retrying and discarding dead letters.

A retry works per aggregate chain: the parked events of one aggregate, oldest first. Each is
decoded again (a contract deployed since may now know its type) and applied in a savepoint;
the first that still fails stays parked, with its new error and one more attempt counted, and
so does everything behind it. A chain that applies completely is gone, and the live runner
applies that aggregate's next events normally again.

The retry locks the projection's checkpoint like a batch does, so it can run from another
process while the service runs. Parked events are applied after events of other aggregates
that came later in the stream; within an aggregate the order is the stream's.

A discard gives up on one parked event for good (a stray message, data no contract will ever
accept), records who, when and why, and retries what waited behind it the same way.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from typing import TYPE_CHECKING

from ..catalogue import EventRegistry, catalogue
from .applier import describe, is_infrastructure_error
from .bookkeeping import (
    DeadLetter,
    forget_dead_letter,
    load_dead_letters,
    lock_checkpoint,
    note_failed_retry,
    record_discard,
)
from .delivery import Delivery, decode_for

if TYPE_CHECKING:
    from .database import ReadModelDatabase
    from .definition import Projection
    from .writebehind import WriteBehindSession


@dataclass(slots=True)
class RetryOutcome:
    applied: list[DeadLetter] = field(default_factory=list)
    failed: list[tuple[DeadLetter, str]] = field(default_factory=list)  # chain heads
    still_waiting: list[DeadLetter] = field(default_factory=list)  # behind a failed head

    @property
    def clean(self) -> bool:
        return not self.failed


async def list_dead_letters(
    db: ReadModelDatabase, projection: str | None = None
) -> list[DeadLetter]:
    async with db.session() as session:
        return await load_dead_letters(session, projection)


async def retry_dead_letters(
    db: ReadModelDatabase,
    projections: Sequence[Projection],
    *,
    registry: EventRegistry = catalogue,
    ids: Collection[int] | None = None,
) -> RetryOutcome:
    """Retry the chains of ``projections`` (only those holding one of ``ids``, if given)."""
    outcome = RetryOutcome()
    for projection in projections:
        for stream in projection.streams:
            async with db.writer() as session:
                await lock_checkpoint(session, projection.name, stream)
                letters = await load_dead_letters(session, projection.name, stream)
                for chain in _chains(letters):
                    if ids is None or any(letter.id in ids for letter in chain):
                        await _retry_chain(session, projection, chain, registry, outcome)
    return outcome


@dataclass(slots=True)
class DiscardOutcome:
    discarded: DeadLetter
    retried: RetryOutcome
    """The events that waited behind the discarded one, retried at once."""


async def discard_dead_letter(
    db: ReadModelDatabase,
    projections: Sequence[Projection],
    letter_id: int,
    *,
    reason: str,
    by: str,
    registry: EventRegistry = catalogue,
) -> DiscardOutcome:
    """Give up on dead letter ``letter_id``: it is never applied, and who (``by``), when and
    why (``reason``) are recorded in ``agora_discarded_letters``. When it headed its
    aggregate's chain, the events that waited behind it are retried at once, in the same
    transaction under the checkpoint lock, so the aggregate's rows recover (or the next
    failing event heads the chain). Raises LookupError for an id not parked by one of
    ``projections``, ValueError for an empty reason."""
    if not reason.strip():
        raise ValueError("say why the event is discarded: the reason is recorded")
    async with db.session() as session:
        known = {letter.id: letter for letter in await load_dead_letters(session)}
    found = known.get(letter_id)
    chosen = {projection.name: projection for projection in projections}
    if found is None or found.projection not in chosen:
        raise LookupError(f"no dead letter with id {letter_id}")
    projection = chosen[found.projection]
    retried = RetryOutcome()
    async with db.writer() as session:
        await lock_checkpoint(session, projection.name, found.stream)
        letters = await load_dead_letters(session, projection.name, found.stream)
        chain = next(
            (chain for chain in _chains(letters) if any(x.id == letter_id for x in chain)), None
        )
        if chain is None:  # retried or discarded meanwhile
            raise LookupError(f"no dead letter with id {letter_id}")
        letter = next(x for x in chain if x.id == letter_id)
        await record_discard(session, letter, by, reason.strip())
        if chain[0].id == letter_id and len(chain) > 1:
            await _retry_chain(session, projection, chain[1:], registry, retried)
    return DiscardOutcome(letter, retried)


def _chains(letters: list[DeadLetter]) -> list[list[DeadLetter]]:
    chains: dict[str, list[DeadLetter]] = {}
    for letter in sorted(letters, key=lambda letter: letter.sequence):
        chains.setdefault(letter.aggregate, []).append(letter)
    return list(chains.values())


async def _retry_chain(
    session: WriteBehindSession,
    projection: Projection,
    chain: list[DeadLetter],
    registry: EventRegistry,
    outcome: RetryOutcome,
) -> None:
    for position, letter in enumerate(chain):
        error = await _apply_letter(session, projection, letter, registry)
        if error is not None:
            await note_failed_retry(session, letter.id, error)
            outcome.failed.append((letter, error))
            outcome.still_waiting.extend(chain[position + 1 :])
            return
        await forget_dead_letter(session, letter.id)
        outcome.applied.append(letter)


async def _apply_letter(
    session: WriteBehindSession, projection: Projection, letter: DeadLetter, registry: EventRegistry
) -> str | None:
    """None when the event applied (or no longer concerns the projection), else the error."""
    delivery = Delivery(
        stream=letter.stream,
        sequence=letter.sequence,
        subject=letter.subject,
        headers=letter.headers,
        data=letter.data,
        stored_at=letter.parked_at.replace(tzinfo=UTC),
    )
    decoded = decode_for(projection, delivery, registry)
    if decoded.problem is not None:
        return decoded.problem
    if decoded.event is None or decoded.context is None:
        return None
    try:
        async with session.begin_nested():
            await projection.apply(session, decoded.event, decoded.context)
    except Exception as exc:
        if is_infrastructure_error(exc):
            raise
        return describe(exc)
    return None
