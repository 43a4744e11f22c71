"""``ce-aggregateversion`` counts per aggregate, even though every agenda command shares the
one consistency scope ``agenda.>``: two sessions' events each count 1, 2, 3 however they
interleave in the stream, and a process that starts cold continues the count from the log."""

from __future__ import annotations

from collections import defaultdict

from nats.aio.client import Client as NATS

from agora_agenda.application import SCOPE
from agora_agenda.domain import Agenda, ChangeSessionDetails, Command, MoveSession, agenda_decider
from agora_events.commands import CommandHandler
from agora_events.store import EventStore, aggregate_of

from .conftest import Build


def handler(nc: NATS) -> CommandHandler[Agenda, Command]:
    return CommandHandler(EventStore(nc), agenda_decider, scope_of=lambda _: SCOPE)


async def versions(nc: NATS) -> dict[str, list[int | None]]:
    by_aggregate: dict[str, list[int | None]] = defaultdict(list)
    for record in await EventStore(nc).read(SCOPE):
        by_aggregate[aggregate_of(record.subject)].append(record.envelope.aggregateversion)
    return dict(by_aggregate)


async def test_two_sessions_in_one_scope_each_count_their_own_events(
    nats_client: NATS, build: Build
) -> None:
    agenda = handler(nats_client)
    setup: list[Command] = [build.plan(), *build.rooms()]
    for command in setup:
        await agenda.handle(command)
    s1 = build.workshop("ws5-s1", room_id="ws-room-5")
    s2 = build.workshop("ws7-s1", room_id="ws-room-7", workshop=build.ws7, title="Data")
    for command in (
        s1,
        s2,
        MoveSession("ws5-s1", starts_at=build.at(24, "09:00")),
        MoveSession("ws7-s1", starts_at=build.at(24, "11:00")),
        ChangeSessionDetails("ws5-s1", title="Futures literacy, part one"),
        ChangeSessionDetails("ws7-s1", title="Data, part one"),
    ):
        await agenda.handle(command)

    counted = await versions(nats_client)
    assert counted["agenda.session.ws5-s1"] == [1, 2, 3]
    assert counted["agenda.session.ws7-s1"] == [1, 2, 3]
    assert counted["agenda.room.hall"] == [1]
    assert all(v == list(range(1, len(v) + 1)) for v in counted.values()), counted

    await handler(nats_client).handle(ChangeSessionDetails("ws5-s1", title="Part one"))
    assert (await versions(nats_client))["agenda.session.ws5-s1"] == [1, 2, 3, 4]
