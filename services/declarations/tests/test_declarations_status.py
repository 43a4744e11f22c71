"""The depositary's status table as of any instant equals the fold of the log up to that
instant: a property over random histories of signatures and withdrawals, each written to a
real nats-server through the use cases and replayed into a real SQLite read model."""

from __future__ import annotations

import asyncio
import tempfile
from datetime import datetime, timedelta

import nats
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agora_declarations import queries
from agora_declarations.application import Declarations
from agora_declarations.domain import Status, status_as_of
from agora_declarations.projections import declaration_view, signature_view
from agora_events.contracts.declarations import DeclarationSigned, SignatureWithdrawn
from agora_events.decider import Rejected
from agora_events.projections.database import ReadModelDatabase
from agora_events.projections.rebuild import replay
from agora_events.store import EventStore
from agora_events.streams import ensure_streams

from .conftest import Clock, new_id, open_declaration, standing

STATES = ("ALB", "ARM", "COL", "ECU", "JOR", "MEX")
Step = tuple[int, bool, int]
"""(which State, sign or withdraw, minutes later)."""

steps = st.lists(
    st.tuples(st.integers(0, len(STATES) - 1), st.booleans(), st.integers(0, 3 * 24 * 60)),
    min_size=1,
    max_size=25,
)


def rows(status: Status | queries.StatusView) -> list[tuple[object, ...]]:
    return [
        (r.state, r.signatory_name, r.capacity, r.signed_at, r.withdrawn_at, r.withdrawal_reason)
        for r in status.rows
    ]


async def history_and_check(nats_url: str, history: list[Step]) -> None:
    nc = await nats.connect(nats_url)
    folder = tempfile.TemporaryDirectory()
    db = ReadModelDatabase(f"sqlite+aiosqlite:///{folder.name}/status.db")
    try:
        await ensure_streams(nc.jetstream())
        store = EventStore(nc, source="/agora-test/declarations")
        clock = Clock()
        declarations = Declarations(store, clock=clock)
        declaration_id = new_id("property")
        await open_declaration(declarations, declaration_id)
        sha256 = (await declarations.declaration(declaration_id)).texts["en"]
        people = {s: await standing(declarations, delegation=s) for s in STATES}
        for which, signs, minutes in history:
            clock.advance(minutes=minutes, microseconds=1)
            state = STATES[which]
            try:
                if signs:
                    await declarations.sign(
                        declaration_id,
                        state,
                        participant_id=people[state],
                        language="en",
                        text_sha256=sha256,
                    )
                else:
                    await declarations.withdraw_signature(declaration_id, state, f"step {minutes}")
            except Rejected:
                pass  # a refused step is part of the history: it recorded nothing

        log = [
            r.event
            for r in await store.read("declarations.state.*.*")
            if isinstance(r.event, DeclarationSigned | SignatureWithdrawn)
        ]
        await replay(nc, db, [declaration_view, signature_view])
        times = sorted(
            {e.signed_at if isinstance(e, DeclarationSigned) else e.withdrawn_at for e in log}
        )
        instants = [clock.now - timedelta(days=30), clock.now, *times]
        instants += [t - timedelta(microseconds=1) for t in times]
        for instant in instants:
            async with db.session() as session:
                answered = await queries.status(session, declaration_id, instant)
            folded = status_as_of(log, declaration_id, instant)
            assert rows(answered) == rows(folded), instant
            assert (answered.signed, answered.withdrawn) == (folded.signed, folded.withdrawn)
    finally:
        await db.dispose()
        await nc.close()
        folder.cleanup()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=steps)
def test_the_status_as_of_any_instant_equals_the_fold_of_the_log_up_to_it(
    nats_url: str, history: list[Step]
) -> None:
    asyncio.run(history_and_check(nats_url, history))


def test_a_withdrawal_counts_from_its_instant_not_before() -> None:
    signed_at = datetime.fromisoformat("2025-06-23T10:00:00+05:00")
    withdrawn_at = signed_at + timedelta(days=1)
    log: list[DeclarationSigned | SignatureWithdrawn] = [
        DeclarationSigned(
            state="ALB",
            declaration_id="d",
            participant_id="p",
            signatory_name="A",
            capacity="minister",
            language="en",
            text_sha256="0" * 64,
            signed_at=signed_at,
        ),
        SignatureWithdrawn(
            state="ALB",
            declaration_id="d",
            signed_at=signed_at,
            withdrawn_at=withdrawn_at,
            reason="r",
        ),
    ]
    assert status_as_of(log, "d", withdrawn_at - timedelta(seconds=1)).signed == 1
    assert status_as_of(log, "d", withdrawn_at).withdrawn == 1
    assert status_as_of(log, "d", signed_at - timedelta(seconds=1)).rows == ()
