"""The agenda's HTTP API: thin routers turning requests into commands and queries.

Writes need the organiser token and answer with a CommandAccepted (the ids touched and the
stream sequence reached). Reads take ``?after=<sequence>`` to wait, within a bound, until the
read model has caught up with a write.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.ext.asyncio import AsyncSession

from agora_events.contracts.agenda import PersonRole, SessionKind, WorkshopRef
from agora_events.http import CallerOf, CommandAccepted, accepted, organiser_guard
from agora_events.service import Reader, commands_of
from agora_events.text import Line, Prose
from agora_events.usecases import Caller

from . import ical, queries
from .application import AgendaCommands, SessionRef
from .domain import (
    AddRoom,
    AssignPerson,
    CancelSession,
    ChangeEditionDetails,
    ChangeRoomCapacity,
    ChangeSessionDetails,
    Command,
    MoveSession,
    Person,
    PlanEdition,
    RemovePerson,
    RenameRoom,
    ScheduleSession,
)
from .importer import ProgrammeError, bundled_editions, load_edition, parse_edition
from .recognitions import Recognitions, recognitions
from .settings import AgendaSettings

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$"
ID = Field(pattern=ID_PATTERN, examples=["2025-ws5-s3"])
TEXT = Field(min_length=1, max_length=500)
NAME = Field(min_length=1, max_length=200)
MAX_PROGRAMME_BYTES = 2_000_000


# -- request bodies ------------------------------------------------------------------------


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class PlanEditionBody(Body):
    edition_id: Line = ID
    name: Line = TEXT
    theme: Line | None = Field(default=None, max_length=500)
    host_city: Line = NAME
    host_country: Line = Field(pattern=r"^[A-Z]{3}$", description="ISO 3166-1 alpha-3")
    start_date: date
    end_date: date
    time_zone: Line = Field(max_length=64, examples=["Asia/Samarkand"])


class ChangeEditionBody(Body):
    name: Line | None = Field(default=None, min_length=1, max_length=500)
    theme: Line | None = Field(default=None, max_length=500)
    host_city: Line | None = Field(default=None, min_length=1, max_length=200)
    host_country: Line | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    start_date: date | None = None
    end_date: date | None = None
    time_zone: Line | None = Field(default=None, max_length=64)


class AddRoomBody(Body):
    room_id: Line = ID
    name: Line = NAME
    capacity: int = Field(ge=1, le=100_000)
    capacity_estimated: bool = False


class CapacityBody(Body):
    capacity: int = Field(ge=1, le=100_000)
    capacity_estimated: bool = False


class RoomNameBody(Body):
    name: Line = NAME


class WorkshopBody(Body):
    number: int = Field(ge=1, le=1000)
    title: Line = TEXT
    organisers: list[Annotated[Line, Field(min_length=1, max_length=200)]] = []

    def ref(self) -> WorkshopRef:
        return WorkshopRef(number=self.number, title=self.title, organisers=tuple(self.organisers))


class PersonBody(Body):
    person_id: Line = ID
    name: Line = NAME
    role: PersonRole
    title: Line | None = Field(default=None, max_length=500)

    def person(self) -> Person:
        return Person(self.person_id, self.name, self.role, self.title)


class ScheduleBody(Body):
    session_id: Line = ID
    kind: SessionKind
    title: Line = TEXT
    room_id: Line = ID
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    workshop: WorkshopBody | None = None
    capacity: int | None = Field(default=None, ge=1, le=100_000)
    people: list[PersonBody] = Field(default=[], max_length=100)


class MoveBody(Body):
    starts_at: AwareDatetime | None = Field(
        default=None, description="Without ends_at, the session keeps its length"
    )
    ends_at: AwareDatetime | None = None
    room_id: Line | None = Field(default=None, pattern=ID_PATTERN)

    @model_validator(mode="after")
    def _something_moves(self) -> MoveBody:
        if self.starts_at is None and self.ends_at is None and self.room_id is None:
            raise ValueError("give a new starts_at, ends_at or room_id")
        return self


class DetailsBody(Body):
    title: Line | None = Field(default=None, min_length=1, max_length=500)
    kind: SessionKind | None = None
    workshop: WorkshopBody | None = None
    clear_workshop: bool = False
    capacity: int | None = Field(default=None, ge=1, le=100_000)
    clear_capacity: bool = False


class AssignBody(Body):
    name: Line = NAME
    role: PersonRole
    title: Line | None = Field(default=None, max_length=500)


class CancelBody(Body):
    reason: Prose = TEXT


class PublishBody(Body):
    label: Line = Field(min_length=1, max_length=200, examples=["Final programme"])


# -- wiring --------------------------------------------------------------------------------

Commands = Annotated[AgendaCommands, Depends(commands_of(AgendaCommands))]
ORGANISER = "organiser"


async def run(commands: AgendaCommands, command: Command, caller: Caller) -> CommandAccepted:
    return accepted(await commands.execute(command, caller.acting_as(ORGANISER)))


class ImportAccepted(CommandAccepted):
    """An import's answer: ``missing`` lists the edition's scheduled sessions the file no
    longer holds (left as they are), ``cancelled`` those cancelled for it (``cancel_missing``)."""

    missing: list[SessionRef] = []
    cancelled: list[SessionRef] = []


async def run_import(commands: AgendaCommands, command: Command, caller: Caller) -> ImportAccepted:
    outcome = await commands.execute(command, caller.acting_as(ORGANISER))
    return ImportAccepted(
        **accepted(outcome).model_dump(),
        missing=list(outcome.missing),
        cancelled=list(outcome.cancelled),
    )


# -- routes --------------------------------------------------------------------------------


def writes(token: Callable[[], str]) -> APIRouter:
    router = APIRouter(dependencies=[Depends(organiser_guard(token))], tags=["commands"])

    @router.post("/editions", status_code=201)
    async def plan_edition(
        body: PlanEditionBody, commands: Commands, caller: CallerOf
    ) -> CommandAccepted:
        return await run(commands, PlanEdition(**body.model_dump()), caller)

    @router.patch("/editions/{edition_id}")
    async def change_edition(
        edition_id: str, body: ChangeEditionBody, commands: Commands, caller: CallerOf
    ) -> CommandAccepted:
        return await run(
            commands, ChangeEditionDetails(edition_id=edition_id, **body.model_dump()), caller
        )

    @router.post(
        "/editions/import",
        status_code=201,
        openapi_extra={
            "requestBody": {"content": {"application/toml": {"schema": {"type": "string"}}}}
        },
    )
    async def import_edition(
        request: Request,
        commands: Commands,
        caller: CallerOf,
        bundled: Annotated[
            str | None, Query(description="Import a programme shipped with the service")
        ] = None,
        cancel_missing: Annotated[
            bool,
            Query(description="Cancel the edition's sessions the programme no longer lists"),
        ] = False,
    ) -> ImportAccepted:
        """Import a programme file (TOML body), or a bundled one with ``?bundled=unpsf-2025``.
        Importing the same programme again changes nothing. Sessions of the edition that the
        programme no longer lists are answered as ``missing`` and left scheduled, unless
        ``?cancel_missing=true`` cancels them."""
        if bundled is not None:
            files = bundled_editions()
            if bundled not in files:
                raise ProgrammeError(
                    f"no bundled programme '{bundled}'; there are {', '.join(files)}"
                )
            command = load_edition(files[bundled], cancel_missing=cancel_missing)
        else:
            raw = await request.body()
            if len(raw) > MAX_PROGRAMME_BYTES:
                raise HTTPException(
                    413, f"a programme file holds at most {MAX_PROGRAMME_BYTES} bytes"
                )
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ProgrammeError("the programme must be UTF-8 text") from None
            command = parse_edition(text, source="request body", cancel_missing=cancel_missing)
        return await run_import(commands, command, caller)

    @router.post("/editions/{edition_id}/rooms", status_code=201)
    async def add_room(
        edition_id: str, body: AddRoomBody, commands: Commands, caller: CallerOf
    ) -> CommandAccepted:
        return await run(commands, AddRoom(edition_id=edition_id, **body.model_dump()), caller)

    @router.put("/rooms/{room_id}/capacity")
    async def change_capacity(
        room_id: str, body: CapacityBody, commands: Commands, caller: CallerOf
    ) -> CommandAccepted:
        return await run(
            commands, ChangeRoomCapacity(room_id, body.capacity, body.capacity_estimated), caller
        )

    @router.put("/rooms/{room_id}/name")
    async def rename_room(
        room_id: str, body: RoomNameBody, commands: Commands, caller: CallerOf
    ) -> CommandAccepted:
        return await run(commands, RenameRoom(room_id, body.name), caller)

    @router.post("/editions/{edition_id}/sessions", status_code=201)
    async def schedule(
        edition_id: str, body: ScheduleBody, commands: Commands, caller: CallerOf
    ) -> CommandAccepted:
        command = ScheduleSession(
            session_id=body.session_id,
            edition_id=edition_id,
            kind=body.kind,
            title=body.title,
            room_id=body.room_id,
            starts_at=body.starts_at,
            ends_at=body.ends_at,
            workshop=body.workshop.ref() if body.workshop else None,
            capacity=body.capacity,
            people=tuple(p.person() for p in body.people),
        )
        return await run(commands, command, caller)

    @router.post("/sessions/{session_id}/move")
    async def move(
        session_id: str, body: MoveBody, commands: Commands, caller: CallerOf
    ) -> CommandAccepted:
        return await run(
            commands, MoveSession(session_id, body.starts_at, body.ends_at, body.room_id), caller
        )

    @router.patch("/sessions/{session_id}")
    async def change_details(
        session_id: str, body: DetailsBody, commands: Commands, caller: CallerOf
    ) -> CommandAccepted:
        command = ChangeSessionDetails(
            session_id=session_id,
            title=body.title,
            kind=body.kind,
            workshop=body.workshop.ref() if body.workshop else None,
            clear_workshop=body.clear_workshop,
            capacity=body.capacity,
            clear_capacity=body.clear_capacity,
        )
        return await run(commands, command, caller)

    @router.put("/sessions/{session_id}/people/{person_id}")
    async def assign(
        session_id: str,
        person_id: Annotated[str, ID],
        body: AssignBody,
        commands: Commands,
        caller: CallerOf,
    ) -> CommandAccepted:
        person = Person(person_id, body.name, body.role, body.title)
        return await run(commands, AssignPerson(session_id, person), caller)

    @router.delete("/sessions/{session_id}/people/{person_id}")
    async def remove(
        session_id: str, person_id: str, commands: Commands, caller: CallerOf
    ) -> CommandAccepted:
        return await run(commands, RemovePerson(session_id, person_id), caller)

    @router.post("/sessions/{session_id}/cancel")
    async def cancel(
        session_id: str, body: CancelBody, commands: Commands, caller: CallerOf
    ) -> CommandAccepted:
        return await run(commands, CancelSession(session_id, body.reason), caller)

    @router.post("/editions/{edition_id}/versions", status_code=201)
    async def publish(
        edition_id: str, body: PublishBody, commands: Commands, caller: CallerOf
    ) -> CommandAccepted:
        outcome = await commands.publish(edition_id, body.label, caller.acting_as(ORGANISER))
        return accepted(outcome)

    return router


def only_parameters(*names: str) -> Callable[[Request], None]:
    """A dependency refusing (422) a query parameter the route does not know, so a typo such
    as ``?verison=1`` is not silently ignored. ``after`` (read-your-writes) is always known."""
    known = {"after", *names}

    def refuse_unknown(request: Request) -> None:
        unknown = sorted(set(request.query_params) - known)
        if unknown:
            raise HTTPException(
                422,
                f"unknown query parameter {', '.join(map(repr, unknown))}; "
                f"this route takes {', '.join(sorted(known))}",
            )

    return refuse_unknown


VersionParam = Annotated[
    int | None,
    Query(ge=1, le=1_000_000, description="A published version; the latest when absent"),
]
DraftParam = Annotated[
    bool,
    Query(description="The organisers' working draft, unpublished changes included (token)"),
]
PROGRAMME_PARAMETERS = ("day", "room", "workshop", "person", "include_cancelled")


def reads(token: Callable[[], str]) -> APIRouter:
    router = APIRouter(tags=["queries"])
    organiser = organiser_guard(token)

    async def source(
        request: Request, db: AsyncSession, edition_id: str, version: int | None, draft: bool
    ) -> queries.Source:
        """The public see a published version; the draft needs the organiser token."""
        if draft:
            if version is not None:
                raise HTTPException(422, "ask for a published version or the draft, not both")
            organiser(request.headers.get("authorization"))
            return queries.DRAFT
        return await queries.published(db, edition_id, version)

    @router.get("/editions")
    async def editions(db: Reader) -> list[queries.EditionSummary]:
        return await queries.list_editions(db)

    @router.get("/editions/{edition_id}/recognitions")
    async def edition_recognitions(edition_id: str) -> Recognitions:
        """The countries the edition recognised (2025: for e-government progress), with the
        criteria its report gives."""
        return recognitions(edition_id)

    @router.get(
        "/editions/{edition_id}",
        dependencies=[Depends(only_parameters("version", "draft"))],
    )
    async def edition(
        edition_id: str,
        db: Reader,
        request: Request,
        version: VersionParam = None,
        draft: DraftParam = False,
    ) -> queries.EditionView:
        """The edition, its rooms (with their session counts), days and workshops as
        published (the latest version, or ``?version=N``), or in the draft."""
        found = source(request, db, edition_id, version, draft)
        return await queries.edition(db, edition_id, source=await found)

    @router.get(
        "/editions/{edition_id}/programme",
        dependencies=[Depends(only_parameters(*PROGRAMME_PARAMETERS, "version", "draft"))],
    )
    async def programme(
        edition_id: str,
        db: Reader,
        request: Request,
        day: date | None = None,
        room: Annotated[str | None, Query(description="A room id")] = None,
        workshop: Annotated[int | None, Query(ge=1, le=1000)] = None,
        person: Annotated[str | None, Query(description="A person id")] = None,
        include_cancelled: bool = True,
        version: VersionParam = None,
        draft: DraftParam = False,
    ) -> queries.ProgrammeView:
        """The programme by day, as published (the latest version, or ``?version=N``);
        organisers see the working draft with ``?draft=true``. Narrow it to a day, a room,
        a workshop or a person."""
        return await queries.programme(
            db,
            edition_id,
            day=day,
            room_id=room,
            workshop=workshop,
            person_id=person,
            include_cancelled=include_cancelled,
            source=await source(request, db, edition_id, version, draft),
        )

    @router.get(
        "/editions/{edition_id}/workshops",
        dependencies=[Depends(only_parameters("version", "draft"))],
    )
    async def workshops(
        edition_id: str,
        db: Reader,
        request: Request,
        version: VersionParam = None,
        draft: DraftParam = False,
    ) -> list[queries.WorkshopProgramme]:
        """Every workshop, with its status (scheduled, tentative, or unscheduled: no
        sessions yet) and its sessions as published, or in the draft."""
        found = source(request, db, edition_id, version, draft)
        return await queries.workshops(db, edition_id, source=await found)

    @router.get(
        "/editions/{edition_id}/people",
        dependencies=[Depends(only_parameters("version", "draft"))],
    )
    async def people(
        edition_id: str,
        db: Reader,
        request: Request,
        version: VersionParam = None,
        draft: DraftParam = False,
    ) -> list[queries.PersonProgramme]:
        """Everyone on a panel, with their sessions as published, or in the draft."""
        found = source(request, db, edition_id, version, draft)
        return await queries.people(db, edition_id, source=await found)

    @router.get(
        "/people/{person_id}",
        dependencies=[Depends(only_parameters("edition", "version", "draft"))],
    )
    async def person(
        person_id: str,
        db: Reader,
        request: Request,
        edition: Annotated[str | None, Query(description="An edition id")] = None,
        version: VersionParam = None,
        draft: DraftParam = False,
    ) -> queries.PersonProgramme:
        """One person's sessions as published (the latest version of each edition, or
        ``?edition=…&version=N``), or in the draft."""
        if edition is not None:
            sources = [await source(request, db, edition, version, draft)]
        elif version is not None:
            raise HTTPException(422, "?version=N needs ?edition=: versions are per edition")
        elif draft:
            organiser(request.headers.get("authorization"))
            sources = [queries.DRAFT]
        else:
            sources = await queries.published_everywhere(db)
        return await queries.person(db, person_id, edition, sources)

    @router.get(
        "/sessions/{session_id}",
        dependencies=[Depends(only_parameters("version", "draft"))],
    )
    async def session(
        session_id: str,
        db: Reader,
        request: Request,
        version: VersionParam = None,
        draft: DraftParam = False,
    ) -> queries.SessionDetail:
        """One session as published (latest, or ``?version=N``), or in the draft, with its
        history of changes up to that version and its warnings."""
        edition_id = await queries.session_edition(db, session_id)
        found = source(request, db, edition_id, version, draft)
        return await queries.session(db, session_id, source=await found)

    @router.get("/editions/{edition_id}/data-quality")
    async def data_quality(edition_id: str, db: Reader) -> queries.DataQualityView:
        """Where the edition's sources contradict each other or leave gaps: both facts."""
        return await queries.data_quality(db, edition_id)

    @router.get("/editions/{edition_id}/versions")
    async def versions(edition_id: str, db: Reader) -> list[queries.VersionView]:
        return await queries.list_versions(db, edition_id)

    @router.get("/editions/{edition_id}/versions/{version}")
    async def version(
        edition_id: str, version: Annotated[int, Path(ge=1, le=1_000_000)], db: Reader
    ) -> queries.VersionView:
        return await queries.version(db, edition_id, version)

    @router.get("/editions/{edition_id}/diff")
    async def version_diff(
        edition_id: str,
        db: Reader,
        from_version: Annotated[int, Query(alias="from", ge=0, le=1_000_000)],
        to_version: Annotated[int, Query(alias="to", ge=0, le=1_000_000)],
    ) -> queries.DiffView:
        """What changed between two published versions (``from=0``: the empty programme)."""
        return await queries.version_diff(db, edition_id, from_version, to_version)

    @router.get(
        "/editions/{edition_id}/calendar.ics",
        response_class=Response,
        responses={200: {"content": {"text/calendar": {}}}},
        dependencies=[Depends(only_parameters("version", "draft"))],
    )
    async def edition_calendar(
        edition_id: str,
        db: Reader,
        request: Request,
        version: VersionParam = None,
        draft: DraftParam = False,
    ) -> Response:
        """The published programme (latest, or ``?version=N``) as iCalendar; organisers get
        the draft with ``?draft=true``. Unknown parameters are refused (422)."""
        await source(request, db, edition_id, version, draft)
        edition, found, _source = await queries.calendar_sessions(
            db, edition_id=edition_id, version=version, draft=draft
        )
        body = ical.calendar(edition, found, name=edition.name)
        return _calendar_response(body, f"{edition_id}.ics")

    @router.get(
        "/sessions/{session_id}/calendar.ics",
        response_class=Response,
        responses={200: {"content": {"text/calendar": {}}}},
        dependencies=[Depends(only_parameters("version", "draft"))],
    )
    async def session_calendar(
        session_id: str,
        db: Reader,
        request: Request,
        version: VersionParam = None,
        draft: DraftParam = False,
    ) -> Response:
        """One session as published (or ``?draft=true`` for organisers) as iCalendar."""
        if draft:
            organiser(request.headers.get("authorization"))
        edition, found, _source = await queries.calendar_sessions(
            db, session_id=session_id, version=version, draft=draft
        )
        body = ical.calendar(edition, found, name=found[0].label)
        return _calendar_response(body, f"{session_id}.ics")

    return router


def _calendar_response(body: bytes, filename: str) -> Response:
    return Response(
        content=body,
        media_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": f'inline; filename="{filename}"'},
    )


def routers(settings: AgendaSettings) -> Sequence[APIRouter]:
    token = settings.organiser_token.get_secret_value
    return [writes(token), reads(token)]
