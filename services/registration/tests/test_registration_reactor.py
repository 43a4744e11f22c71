"""The reactor on FastStream: its typed handlers in memory (``TestNatsBroker``, no server),
then the same guarantees against a real nats-server: redelivery changes nothing, a refused
event does not block the next one, a restart resumes from the durable consumer, and the
streams stay as ``agora_events.streams`` made them."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from faststream.nats import NatsBroker, TestNatsBroker
from nats.aio.client import Client as NatsClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from agora_events.catalogue import DomainEvent, catalogue
from agora_events.contracts.agenda import (
    PersonAssigned,
    RoomAdded,
    SessionScheduled,
)
from agora_events.contracts.registration import ClaimRef, ParticipantWithdrew, ReleaseReason
from agora_events.decider import InvariantViolated
from agora_events.envelope import Envelope
from agora_events.messaging import Outcome, Settled, ack_subject
from agora_events.reactor import FETCH_TIMEOUT
from agora_events.store import EventStore
from agora_events.streams import STREAMS
from agora_events.usecases import SYSTEM, Caller
from agora_registration.application import Registration
from agora_registration.domain import SyncSession
from agora_registration.reactor import Reactor, Recorded

if TYPE_CHECKING:
    from tests.conftest import Agenda, ReactorRunner

EDITION = "unpsf-2025"
AGENDA_CONSUMER = "registration-reactor-agenda"
RELEASES_CONSUMER = "registration-reactor-releases"
WITHIN = 5.0


def at(hour: int) -> datetime:
    return datetime(2025, 6, 24, hour, tzinfo=UTC)


def workshop(session_id: str, room_id: str = "room-a", hour: int = 9) -> SessionScheduled:
    return SessionScheduled(
        session_id=session_id,
        edition_id=EDITION,
        kind="workshop_session",
        title=f"Workshop {session_id}",
        room_id=room_id,
        starts_at=at(hour),
        ends_at=at(hour + 1),
    )


def room(room_id: str = "room-a", capacity: int = 3) -> RoomAdded:
    return RoomAdded(room_id=room_id, edition_id=EDITION, name=room_id.title(), capacity=capacity)


# -- fakes of what the reactor talks to (in memory only) ----------------------------------------


@dataclass(frozen=True)
class Record:
    event: DomainEvent


def subject_matches(subject: str, subject_filter: str) -> bool:
    tokens, wanted = subject.split("."), subject_filter.split(".")
    for index, token in enumerate(wanted):
        if token == ">":
            return len(tokens) > index
        if index >= len(tokens) or token not in ("*", tokens[index]):
            return False
    return len(tokens) == len(wanted)


@dataclass
class AgendaLog:
    """The agenda's stream, in memory: what the reactor reads with ``up_to``."""

    events: list[tuple[int, DomainEvent]] = field(default_factory=list)

    def append(self, event: DomainEvent) -> int:
        self.events.append((len(self.events) + 1, event))
        return len(self.events)

    async def read(self, subject_filter: str, *, up_to: int | None = None) -> Sequence[Recorded]:
        return [
            Record(event)
            for sequence, event in self.events
            if subject_matches(event.subject, subject_filter)
            and (up_to is None or sequence <= up_to)
        ]


@dataclass
class RecordingRegistration:
    """Registration's use cases, recording commands by idempotency key as the store would:
    a key seen before has no second effect."""

    effects: dict[str, SyncSession] = field(default_factory=dict)
    keys_sent: list[str] = field(default_factory=list)
    released: list[tuple[str, tuple[ClaimRef, ...], str]] = field(default_factory=list)
    refused_sessions: set[str] = field(default_factory=set)
    store_failures: int = 0

    async def sync_session(self, command: SyncSession, caller: Caller) -> object:
        assert caller.key is not None
        key = caller.key
        if self.store_failures:
            self.store_failures -= 1
            raise ConnectionError("the store cannot be reached")
        if command.session_id in self.refused_sessions:
            raise InvariantViolated("Participant Ana Example cannot be moved")
        self.keys_sent.append(key)
        self.effects.setdefault(key, command)
        return None

    async def release_places(
        self,
        participant_id: str,
        released: Sequence[ClaimRef],
        reason: ReleaseReason,
        caller: Caller = SYSTEM,
    ) -> object:
        self.released.append((participant_id, tuple(released), reason))
        return None


@dataclass
class InMemoryReactor:
    """The reactor's routes on FastStream's in-memory broker: deliveries as JetStream would
    make them (the reply subject carries the stream sequence and the attempt)."""

    broker: NatsBroker
    agenda: AgendaLog
    settled: list[Settled]

    async def deliver(
        self, event: DomainEvent, *, sequence: int | None = None, attempt: int = 1
    ) -> Envelope:
        if sequence is None:
            sequence = self.agenda.append(event) if event.meta.context == "agenda" else 1
        envelope = Envelope(
            id=str(uuid.uuid4()),
            source="/agora-test",
            type=event.meta.type,
            time=datetime.now(UTC),
            data=catalogue.encode(event),
            subject=event.aggregate_id,
        )
        await self.send(envelope, event.subject, sequence=sequence, attempt=attempt)
        return envelope

    async def send(
        self, envelope: Envelope, subject: str, *, sequence: int, attempt: int = 1
    ) -> None:
        stream = "AGENDA" if subject.startswith("agenda.") else "REGISTRATION"
        consumer = AGENDA_CONSUMER if stream == "AGENDA" else RELEASES_CONSUMER
        await self.broker.publish(
            envelope.data,
            subject,
            headers=envelope.to_headers(),
            reply_to=ack_subject(stream, consumer, sequence, attempt=attempt),
        )

    def outcomes(self) -> list[Outcome]:
        return [s.outcome for s in self.settled]


@pytest.fixture
def registrar() -> RecordingRegistration:
    return RecordingRegistration()


@pytest.fixture
async def in_memory(registrar: RecordingRegistration) -> AsyncIterator[InMemoryReactor]:
    agenda = AgendaLog()
    settled: list[Settled] = []

    async def observe(outcome: Settled) -> None:
        settled.append(outcome)

    broker = NatsBroker()
    reactor = Reactor(broker, agenda, registrar, observe=observe)
    broker.include_router(reactor.router)
    async with TestNatsBroker(broker) as test_broker:
        yield InMemoryReactor(test_broker, agenda, settled)


def unknown_type_envelope() -> Envelope:
    return Envelope(
        id=str(uuid.uuid4()),
        source="/agora-test",
        type="agora.agenda.session.teleported.v1",
        time=datetime.now(UTC),
        data=b'{"session_id": "ws-a"}',
        subject="ws-a",
    )


# -- in memory -----------------------------------------------------------------------------


async def test_in_memory_a_scheduled_workshop_is_recorded_with_its_rooms_capacity(
    in_memory: InMemoryReactor, registrar: RecordingRegistration
) -> None:
    await in_memory.deliver(room(capacity=7))
    scheduled = await in_memory.deliver(workshop("ws-a"))
    assert in_memory.outcomes() == [Outcome.ACKNOWLEDGED, Outcome.ACKNOWLEDGED]
    command = registrar.effects[f"agenda:{scheduled.id}:ws-a"]
    assert command.session_id == "ws-a"
    assert command.terms.capacity == 7


async def test_in_memory_a_room_made_larger_resyncs_every_session_in_it(
    in_memory: InMemoryReactor, registrar: RecordingRegistration
) -> None:
    await in_memory.deliver(room(capacity=2))
    await in_memory.deliver(workshop("ws-a", hour=9))
    await in_memory.deliver(workshop("ws-b", hour=11))
    await in_memory.deliver(workshop("ws-c", room_id="room-b", hour=9))
    grown = await in_memory.deliver(room(capacity=4))
    assert sorted(k for k in registrar.effects if k.startswith(f"agenda:{grown.id}:")) == [
        f"agenda:{grown.id}:ws-a",
        f"agenda:{grown.id}:ws-b",
    ]


async def test_in_memory_the_same_event_delivered_twice_sends_the_same_command_under_one_key(
    in_memory: InMemoryReactor, registrar: RecordingRegistration
) -> None:
    await in_memory.deliver(room())
    scheduled = await in_memory.deliver(workshop("ws-a"))
    await in_memory.send(scheduled, workshop("ws-a").subject, sequence=2, attempt=2)
    key = f"agenda:{scheduled.id}:ws-a"
    assert registrar.keys_sent == [key, key]
    assert list(registrar.effects) == [key]
    assert [s.attempt for s in in_memory.settled] == [1, 1, 2]


async def test_in_memory_a_store_failure_hands_the_event_back_for_redelivery(
    in_memory: InMemoryReactor, registrar: RecordingRegistration
) -> None:
    await in_memory.deliver(room())
    registrar.store_failures = 1
    scheduled = await in_memory.deliver(workshop("ws-a"))
    assert in_memory.outcomes()[-1] is Outcome.REDELIVERY
    assert registrar.effects == {}
    await in_memory.send(scheduled, workshop("ws-a").subject, sequence=2, attempt=2)
    assert in_memory.outcomes()[-1] is Outcome.ACKNOWLEDGED
    assert list(registrar.effects) == [f"agenda:{scheduled.id}:ws-a"]


async def test_in_memory_a_refused_event_is_terminated_by_id_and_does_not_block_the_next(
    in_memory: InMemoryReactor, registrar: RecordingRegistration, caplog: pytest.LogCaptureFixture
) -> None:
    registrar.refused_sessions.add("ws-a")
    await in_memory.deliver(room())
    with caplog.at_level(logging.ERROR, logger="agora.messaging"):
        refused = await in_memory.deliver(workshop("ws-a"))
    accepted = await in_memory.deliver(workshop("ws-b", hour=11))
    assert in_memory.outcomes() == [Outcome.ACKNOWLEDGED, Outcome.TERMINATED, Outcome.ACKNOWLEDGED]
    assert list(registrar.effects) == [f"agenda:{accepted.id}:ws-b"]
    [line] = caplog.records
    assert line.__dict__["event_id"] == refused.id
    assert line.__dict__["error"] == "InvariantViolated"
    assert "Ana Example" not in caplog.text  # the refusal's reason may name a person


async def test_in_memory_an_unknown_event_type_is_reported_never_silently_dropped(
    in_memory: InMemoryReactor, registrar: RecordingRegistration, caplog: pytest.LogCaptureFixture
) -> None:
    unknown = unknown_type_envelope()
    with caplog.at_level(logging.ERROR, logger="agora.messaging"):
        await in_memory.send(unknown, "agenda.session.ws-a.teleported", sequence=1)
    await in_memory.deliver(room(), sequence=2)
    assert in_memory.outcomes() == [Outcome.TERMINATED, Outcome.ACKNOWLEDGED]
    [line] = caplog.records
    assert line.__dict__["event_id"] == unknown.id
    assert line.__dict__["event_type"] == "agora.agenda.session.teleported.v1"
    assert line.__dict__["error"] == "UnreadableEvent"


async def test_in_memory_an_undecodable_payload_is_reported_without_its_content(
    in_memory: InMemoryReactor, caplog: pytest.LogCaptureFixture
) -> None:
    bad = Envelope(
        id=str(uuid.uuid4()),
        source="/agora-test",
        type=RoomAdded.meta.type,
        time=datetime.now(UTC),
        data=b'{"room_id": "room-a", "name": "ana.example@example.org"}',
        subject="room-a",
    )
    with caplog.at_level(logging.ERROR, logger="agora.messaging"):
        await in_memory.send(bad, "agenda.room.room-a.added", sequence=1)
    assert in_memory.outcomes() == [Outcome.TERMINATED]
    assert caplog.records[0].__dict__["event_id"] == bad.id
    assert "ana.example" not in caplog.text


async def test_in_memory_agenda_events_the_reactor_does_not_follow_are_acknowledged(
    in_memory: InMemoryReactor, registrar: RecordingRegistration
) -> None:
    await in_memory.deliver(
        PersonAssigned(
            session_id="ws-a",
            edition_id=EDITION,
            person_id="p-1",
            name="Ana Example",
            role="speaker",
        )
    )
    assert in_memory.outcomes() == [Outcome.ACKNOWLEDGED]
    assert registrar.effects == {}


async def test_in_memory_a_withdrawal_releases_the_places_its_event_lists(
    in_memory: InMemoryReactor, registrar: RecordingRegistration
) -> None:
    claims = (ClaimRef(session_id="ws-a", claim=1), ClaimRef(session_id="ws-b", claim=2))
    await in_memory.deliver(ParticipantWithdrew(participant_id="p7k2m9qx", released=claims))
    assert in_memory.outcomes() == [Outcome.ACKNOWLEDGED]
    assert registrar.released == [("p7k2m9qx", claims, "withdrew")]


# -- against a real nats-server -----------------------------------------------------------------


@dataclass
class Spy:
    """Registration's use cases, with a hand in how they go: ``before_sync`` runs before
    each sync command reaches the real use case, ``after_sync`` after it succeeded."""

    inner: Registration
    keys: list[str] = field(default_factory=list)
    before_sync: Callable[[SyncSession], Awaitable[None]] | None = None
    after_sync: Callable[[SyncSession], Awaitable[None]] | None = None

    async def sync_session(self, command: SyncSession, caller: Caller) -> object:
        assert caller.key is not None
        self.keys.append(caller.key)
        if self.before_sync is not None:
            await self.before_sync(command)
        outcome = await self.inner.sync_session(command, caller)
        if self.after_sync is not None:
            await self.after_sync(command)
        return outcome

    async def release_places(
        self,
        participant_id: str,
        released: Sequence[ClaimRef],
        reason: ReleaseReason,
        caller: Caller = SYSTEM,
    ) -> object:
        return await self.inner.release_places(participant_id, released, reason, caller)


async def test_a_redelivered_agenda_event_changes_nothing(
    agenda: Agenda, reactors: ReactorRunner, registration: Registration, store: EventStore
) -> None:
    spy = Spy(registration)
    acks_lost = 1

    async def lose_the_ack(command: SyncSession) -> None:
        nonlocal acks_lost
        if acks_lost:  # the commands were appended, then the process lost its connection
            acks_lost -= 1
            raise ConnectionError("connection lost before the ack")

    spy.after_sync = lose_the_ack
    async with reactors(spy) as reactor:
        await agenda.room("room-a", 3)
        await agenda.workshop("ws-a", "room-a", agenda.at(9), agenda.at(10))
        await reactor.wait_for(agenda.sequence)
    assert len(spy.keys) == 2 and spy.keys[0] == spy.keys[1]
    assert len(await store.read("registration.enrolment.ws-a.*")) == 1
    assert (await registration.session("ws-a")).terms is not None


async def test_a_refused_event_does_not_block_the_next_one(
    agenda: Agenda,
    reactors: ReactorRunner,
    registration: Registration,
    nats_client: NatsClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    spy = Spy(registration)

    async def refuse_ws_a(command: SyncSession) -> None:
        if command.session_id == "ws-a":
            raise InvariantViolated("refused for the test")

    spy.before_sync = refuse_ws_a
    unknown = unknown_type_envelope()
    with caplog.at_level(logging.ERROR, logger="agora.messaging"):
        async with reactors(spy) as reactor:
            await agenda.room("room-a", 3)
            await nats_client.jetstream().publish(
                "agenda.session.ws-x.teleported", unknown.data, headers=unknown.to_headers()
            )
            await agenda.workshop("ws-a", "room-a", agenda.at(9), agenda.at(10))
            await agenda.workshop("ws-b", "room-a", agenda.at(11), agenda.at(12))
            await reactor.wait_for(agenda.sequence)
            assert await reactor.lag() == {AGENDA_CONSUMER: 0, RELEASES_CONSUMER: 0}
    assert (await registration.session("ws-b")).terms is not None
    assert (await registration.session("ws-a")).terms is None
    refused = {r.__dict__["event_type"]: r.__dict__["event_id"] for r in caplog.records}
    assert refused[unknown.type] == unknown.id
    assert SessionScheduled.meta.type in refused


async def test_a_restarted_reactor_resumes_from_its_durable_consumer(
    agenda: Agenda, reactors: ReactorRunner, registration: Registration
) -> None:
    before = Spy(registration)
    async with reactors(before) as reactor:
        await agenda.room("room-a", 3)
        await agenda.workshop("ws-a", "room-a", agenda.at(9), agenda.at(10))
        await reactor.wait_for(agenda.sequence)
    # Stopped: the agenda goes on without it.
    await agenda.workshop("ws-b", "room-a", agenda.at(11), agenda.at(12))
    after = Spy(registration)
    async with reactors(after) as reactor:
        await reactor.wait_for(agenda.sequence)
    assert [k.rsplit(":", 1)[1] for k in before.keys] == ["ws-a"]
    assert [k.rsplit(":", 1)[1] for k in after.keys] == ["ws-b"]
    assert (await registration.session("ws-b")).terms is not None


async def test_a_deleted_consumer_is_re_created_after_the_last_event_handled(
    agenda: Agenda, reactors: ReactorRunner, registration: Registration, nats_client: NatsClient
) -> None:
    spy = Spy(registration)
    async with reactors(spy) as reactor:
        await agenda.room("room-a", 3)
        await agenda.workshop("ws-a", "room-a", agenda.at(9), agenda.at(10))
        await reactor.wait_for(agenda.sequence)
        await nats_client.jetstream().delete_consumer("AGENDA", AGENDA_CONSUMER)
        await agenda.workshop("ws-b", "room-a", agenda.at(11), agenda.at(12))
        assert await reactor.ensure_consumers() == [AGENDA_CONSUMER]
        assert await reactor.ensure_consumers() == []  # there now: left alone
        # The fetch that was waiting on the deleted consumer runs out first (FETCH_TIMEOUT).
        await reactor.wait_for(agenda.sequence, timeout=FETCH_TIMEOUT + WITHIN)
    # ws-b reached registration; ws-a was not handled a second time.
    assert [k.rsplit(":", 1)[1] for k in spy.keys] == ["ws-a", "ws-b"]
    assert (await registration.session("ws-b")).terms is not None


async def test_lag_counts_the_events_the_reactor_has_not_finished(
    agenda: Agenda, reactors: ReactorRunner, registration: Registration
) -> None:
    entered, release = asyncio.Event(), asyncio.Event()

    async def hold(command: SyncSession) -> None:
        entered.set()
        await release.wait()

    spy = Spy(registration, before_sync=hold)
    async with reactors(spy) as reactor:
        await agenda.workshop("ws-a", "room-a", agenda.at(9), agenda.at(10), capacity=5)
        await agenda.workshop("ws-b", "room-a", agenda.at(11), agenda.at(12), capacity=5)
        async with asyncio.timeout(WITHIN):
            await entered.wait()
        # One in the handler (awaiting its ack), one the server holds back behind it.
        assert await reactor.lag() == {AGENDA_CONSUMER: 2, RELEASES_CONSUMER: 0}
        release.set()
        await reactor.wait_for(agenda.sequence)
        assert await reactor.lag() == {AGENDA_CONSUMER: 0, RELEASES_CONSUMER: 0}


async def test_the_reactor_binds_to_the_streams_and_never_changes_them(
    agenda: Agenda, reactors: ReactorRunner, registration: Registration, nats_client: NatsClient
) -> None:
    js = nats_client.jetstream()
    before = {name: (await js.stream_info(name)).config for name in ("AGENDA", "REGISTRATION")}
    async with reactors(registration) as reactor:
        await agenda.room("room-a", 3)
        await reactor.wait_for(agenda.sequence)
    for name, config in before.items():
        assert (await js.stream_info(name)).config == config
    names = {s.config.name for s in await js.streams_info()}
    assert names == {s.name for s in STREAMS.values()}
    consumer = await js.consumer_info("AGENDA", AGENDA_CONSUMER)
    assert consumer.config.max_ack_pending == 1
    assert consumer.config.filter_subject == "agenda.>"
    releases = await js.consumer_info("REGISTRATION", RELEASES_CONSUMER)
    assert sorted(releases.config.filter_subjects or ()) == [
        "registration.participant.*.rejected",
        "registration.participant.*.withdrawn",
    ]


async def test_the_commands_an_event_causes_continue_the_events_trace(
    agenda: Agenda,
    reactor: Reactor,
    store: EventStore,
    recorded_spans: InMemorySpanExporter,
) -> None:
    await agenda.room("room-a", 3)
    await agenda.workshop("ws-a", "room-a", agenda.at(9), agenda.at(10))
    await reactor.wait_for(agenda.sequence)
    [scheduled] = await store.read("agenda.session.ws-a.*")
    [recorded] = await store.read("registration.enrolment.ws-a.*")
    assert scheduled.envelope.traceparent and recorded.envelope.traceparent
    agenda_trace = scheduled.envelope.traceparent.split("-")[1]
    assert recorded.envelope.traceparent.split("-")[1] == agenda_trace
    [react] = [
        s
        for s in recorded_spans.get_finished_spans()
        if s.name == f"react {SessionScheduled.meta.type}"
    ]
    assert react.kind is SpanKind.CONSUMER
    assert react.context is not None and f"{react.context.trace_id:032x}" == agenda_trace
    assert react.attributes is not None
    assert react.attributes["messaging.message.id"] == scheduled.envelope.id
    assert react.attributes["agora.outcome"] == "acknowledged"
