"""The programme pages: the published version only, days as tabs, rooms as columns,
filters, a session's page, and the live feed that tells a page to fetch itself again."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime

import httpx

from agora_console import queries
from agora_console.live import changes, checkpoint
from agora_events.contracts.agenda import SchedulePublished, SessionScheduled
from agora_events.contracts.registration import ParticipantRegistered

from .conftest import EDITION, Console, Log, applied, at, move, next_change, plan_edition


def blocks(html: str) -> list[str]:
    """The sessions a programme page shows as blocks."""
    return re.findall(r'data-session="([^"]+)"', html)


async def test_the_programme_shows_the_published_sessions_of_the_first_day_in_room_columns(
    console: Console, web: httpx.AsyncClient, log: Log
) -> None:
    await applied(console, "AGENDA", await plan_edition(log))

    page = await web.get("/programme")

    assert page.status_code == 200
    html = page.text
    assert "Version 1 (As announced)" in html
    assert 'aria-current="page">Tue 24 Jun' in html
    assert "Wed 25 Jun" in html
    assert "Opening Ceremony" in html and "Foresight and Creativity in Public Service" in html
    assert "Closing Session" not in html  # another day's tab
    assert html.index(">Congress Hall<") < html.index(">Workshop Room 5<")


async def test_a_change_after_the_last_publication_stays_off_the_public_programme(
    console: Console, web: httpx.AsyncClient, log: Log
) -> None:
    await plan_edition(log)
    sequence = await log.append(
        SessionScheduled(
            session_id="draft-only",
            edition_id=EDITION,
            kind="plenary",
            title="A plenary still in draft",
            room_id="hall",
            starts_at=at(24, 11),
            ends_at=at(24, 12),
        )
    )
    await applied(console, "AGENDA", sequence)

    assert "A plenary still in draft" not in (await web.get("/programme")).text

    sequence = await log.append(
        SchedulePublished(
            edition_id=EDITION,
            version=2,
            label="Draft 2",
            published_at=datetime.now(UTC),
            new=("draft-only",),
        )
    )
    await applied(console, "AGENDA", sequence)
    html = (await web.get("/programme")).text
    assert "A plenary still in draft" in html and "Version 2 (Draft 2)" in html
    changelog = html[html.index('id="changelog"') :]
    assert "What version 2 changed" in changelog and "<dt>New</dt>" in changelog
    assert "#s-draft-only" in changelog


async def test_the_version_picker_shows_an_older_version_as_it_was_published(
    console: Console, web: httpx.AsyncClient, log: Log
) -> None:
    await plan_edition(log)
    await move(
        log, "opening", ("hall", at(24, 9), at(24, 10, 30)), ("hall", at(24, 11), at(24, 12, 30))
    )
    sequence = await log.append(
        SchedulePublished(
            edition_id=EDITION,
            version=2,
            label="Opening later",
            published_at=datetime.now(UTC),
            moved=("opening",),
        )
    )
    await applied(console, "AGENDA", sequence)

    latest = (await web.get("/programme", params={"day": "2025-06-24"})).text
    first = (await web.get("/programme", params={"day": "2025-06-24", "version": 1})).text

    assert '<time datetime="2025-06-24T06:00:00+00:00">11:00</time>' in latest
    assert '<time datetime="2025-06-24T04:00:00+00:00">09:00</time>' in first
    assert "Version 1 (As announced)" in first and '<option value="1" selected>' in first


async def test_filters_keep_only_the_sessions_of_a_room_kind_or_workshop(
    console: Console, web: httpx.AsyncClient, log: Log
) -> None:
    await applied(console, "AGENDA", await plan_edition(log))

    by_workshop = (await web.get("/programme", params={"day": "2025-06-24", "workshop": 5})).text
    by_kind = (await web.get("/programme", params={"kind": "opening_ceremony"})).text
    by_room = (await web.get("/programme", params={"room": "ws5"})).text

    assert blocks(by_workshop) == ["ws5-s1"]
    assert blocks(by_kind) == ["opening"]
    assert blocks(by_room) == ["ws5-s1"] and ">Congress Hall</div>" not in by_room


async def test_a_session_page_names_its_speakers_and_links_agendas_calendar(
    console: Console, web: httpx.AsyncClient, log: Log
) -> None:
    await applied(console, "AGENDA", await plan_edition(log))

    html = (await web.get("/sessions/opening")).text

    assert "Li Junhua" in html and "Under-Secretary-General, UN DESA" in html
    assert "(Keynote speaker)" in html
    assert 'href="http://127.0.0.1:8101/sessions/opening/calendar.ics"' in html
    assert (await web.get("/sessions/nothing-like-it")).status_code == 404


async def test_the_programme_speaks_french_when_asked_and_remembers_it(
    console: Console, web: httpx.AsyncClient, log: Log
) -> None:
    await applied(console, "AGENDA", await plan_edition(log))

    asked = await web.get("/programme", params={"lang": "fr"})
    later = await web.get("/programme")

    assert '<html lang="fr">' in asked.text and "mar. 24 juin" in asked.text
    assert "Cérémonie d&#39;ouverture" in asked.text
    assert "Version 1 (As announced), publiée le" in later.text


async def test_a_page_is_marked_with_the_checkpoint_it_was_rendered_at(
    console: Console, web: httpx.AsyncClient, log: Log
) -> None:
    sequence = await plan_edition(log)
    await applied(console, "AGENDA", sequence)

    html = (await web.get("/programme")).text

    found = re.search(r'data-live="agenda" data-after="(\d+)"', html)
    assert found is not None and int(found.group(1)) == sequence


async def test_the_live_feed_announces_a_move_once_the_read_model_has_it(
    console: Console, web: httpx.AsyncClient, log: Log
) -> None:
    shown = await plan_edition(log)
    await applied(console, "AGENDA", shown)
    feed = changes(console.nc, console.projections, "agenda", shown)
    assert (await anext(feed)).startswith("retry:")  # subscribed from here on

    moved = await move(
        log, "ws5-s1", ("ws5", at(24, 14, 30), at(24, 16)), ("hall", at(24, 14, 30), at(24, 16))
    )
    announced = await asyncio.wait_for(next_change(feed), timeout=60)
    await feed.aclose()

    assert announced == f"event: changed\ndata: {moved}\n\n"
    # By the time the page hears of it, the read model it is rendered from has it.
    (checkpoint,) = [
        lag.checkpoint for lag in await console.projections.lag() if lag.stream == "AGENDA"
    ]
    assert checkpoint >= moved


async def test_the_live_feed_catches_up_a_page_rendered_before_a_change(
    console: Console, log: Log
) -> None:
    rendered_at = await plan_edition(log)
    moved = await move(
        log, "ws5-s1", ("ws5", at(24, 14, 30), at(24, 16)), ("hall", at(24, 14, 30), at(24, 16))
    )
    await applied(console, "AGENDA", moved)

    feed = changes(console.nc, console.projections, "agenda", rendered_at)
    await anext(feed)
    caught_up = await anext(feed)
    await feed.aclose()

    assert caught_up == f"event: changed\ndata: {moved}\n\n"


async def test_the_live_feed_announces_a_change_stored_before_it_subscribed_once_applied(
    console: Console, log: Log
) -> None:
    rendered_at = await plan_edition(log)
    moved = await move(
        log, "ws5-s1", ("ws5", at(24, 14, 30), at(24, 16)), ("hall", at(24, 14, 30), at(24, 16))
    )
    # Not waited for: the read model may or may not have the move when the page subscribes,
    # and the feed republished it before the subscription existed. Either way it is told.
    feed = changes(console.nc, console.projections, "agenda", rendered_at)
    await anext(feed)
    told = await asyncio.wait_for(next_change(feed), timeout=60)
    await feed.aclose()

    assert told == f"event: changed\ndata: {moved}\n\n"
    (checkpoint,) = [
        lag.checkpoint for lag in await console.projections.lag() if lag.stream == "AGENDA"
    ]
    assert checkpoint >= moved


async def test_now_and_next_name_the_session_on_and_the_next_the_same_day(
    console: Console, web: httpx.AsyncClient, log: Log
) -> None:
    await applied(console, "AGENDA", await plan_edition(log))
    none = queries.Filters()

    async with console.session() as db:
        during = await queries.programme(db, None, None, none, at=at(24, 9, 30))
        between = await queries.programme(db, None, None, none, at=at(24, 12))
        evening = await queries.programme(db, None, None, none, at=at(24, 20))
    page = (await web.get("/programme")).text

    assert during is not None and between is not None and evening is not None
    assert [s.session_id for s in during.now] == ["opening"]
    assert [s.session_id for s in during.next] == ["ws5-s1"]
    assert between.now == () and [s.session_id for s in between.next] == ["ws5-s1"]
    assert evening.now == () and evening.next == ()  # the closing is another day
    assert 'id="now-next"' not in page  # the 2025 forum is over by the clock of this test


async def test_the_checkpoint_of_a_stream_two_projections_read_counts_events_either_reads(
    console: Console, log: Log
) -> None:
    """participants and workshops both read REGISTRATION; an event only one of them reads
    still moves the stream's checkpoint, so a page rendered before it is caught up."""
    sequence = await log.append(
        ParticipantRegistered(
            participant_id="dddd0001",
            name="Ed Example",
            email="ed@example.org",
            category="delegate",
        )
    )
    await applied(console, "REGISTRATION", sequence)

    assert await checkpoint(console.projections, "registration") == sequence


async def test_every_asset_is_served_by_the_console_itself(
    console: Console, web: httpx.AsyncClient
) -> None:
    html = (await web.get("/programme")).text
    assets = re.findall(r'(?:href|src)="(/static/[^"]+)"', html)

    assert sorted(assets) == ["/static/console.css", "/static/console.js"]
    assert "http" not in "".join(re.findall(r'(?:href|src)="(http[^"]*)"', html.split("<main")[0]))
    for asset in assets:
        assert (await web.get(asset)).status_code == 200
    assert (await web.get("/static/..%2Fapi.py")).status_code == 404
