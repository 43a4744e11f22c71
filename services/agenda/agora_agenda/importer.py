"""Programme files (TOML, see ``data/editions/README.md``) turned into an ImportEdition command.

Room keys in a file are local to the edition ("plenary-hall"); room ids in the agenda are
global subject tokens, so a room's id is the edition id and the key joined by a hyphen
("unpsf-2025-plenary-hall"). Clock times are local to the edition's time zone.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import date, datetime, time
from importlib import resources
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agora_events.contracts.agenda import EditionWorkshop, PersonRole, SessionKind, WorkshopRef
from agora_events.decider import InvalidCommand

from .domain import (
    PERSON_ROLES,
    SESSION_KINDS,
    AddRoom,
    ImportEdition,
    Person,
    PlanEdition,
    ScheduleSession,
    Warning,
)

DATA = "agora_agenda.data"


class ProgrammeError(InvalidCommand):
    """A programme file that cannot be imported; the reason says where and why."""


def _listing(values: Iterable[str]) -> str:
    return ", ".join(sorted(values))


def room_id(edition_id: str, key: str) -> str:
    return f"{edition_id}-{key}"


def bundled_editions() -> dict[str, Path]:
    """Edition id → the programme file shipped with the service."""
    directory = resources.files(DATA) / "editions"
    found = {}
    for entry in directory.iterdir():
        if entry.name.endswith(".toml"):
            found[entry.name.removesuffix(".toml")] = Path(str(entry))
    return dict(sorted(found.items()))


def load_edition(path: Path, *, cancel_missing: bool = False) -> ImportEdition:
    """The import of the file at ``path``; with ``cancel_missing`` it also cancels the
    edition's scheduled sessions the file does not list."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProgrammeError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return parse_edition(text, source=path.name, cancel_missing=cancel_missing)


def parse_edition(
    text: str, *, source: str = "programme", cancel_missing: bool = False
) -> ImportEdition:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProgrammeError(f"{source} is not valid TOML: {exc}") from exc
    return replace(_Reader(source).edition(document), cancel_missing=cancel_missing)


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source
        self.time_source: str | None = None

    def fail(self, where: str, reason: str) -> ProgrammeError:
        return ProgrammeError(f"{self.source}, {where}: {reason}")

    def edition(self, document: Mapping[str, Any]) -> ImportEdition:
        header = self.table(document, "edition", "the file")
        edition_id = self.text(header, "id", "[edition]")
        zone_name = self.text(header, "time_zone", "[edition]")
        try:
            zone = ZoneInfo(zone_name)
        except (ZoneInfoNotFoundError, ValueError):
            raise self.fail("[edition]", f"{zone_name!r} is not an IANA time zone") from None
        plan = PlanEdition(
            edition_id=edition_id,
            name=self.text(header, "name", "[edition]"),
            theme=self.text(header, "theme", "[edition]", required=False),
            host_city=self.text(header, "host_city", "[edition]"),
            host_country=self.text(header, "host_country", "[edition]"),
            start_date=self.day(header, "start_date", "[edition]"),
            end_date=self.day(header, "end_date", "[edition]"),
            time_zone=zone_name,
        )
        rooms = {}
        for index, entry in enumerate(self.tables(document, "rooms"), 1):
            where = f"room {index}"
            key = self.text(entry, "id", where)
            if key in rooms:
                raise self.fail(where, f"room '{key}' is listed twice")
            capacity = entry.get("capacity")
            if not isinstance(capacity, int) or isinstance(capacity, bool):
                raise self.fail(f"room '{key}'", "capacity must be a whole number")
            rooms[key] = AddRoom(
                room_id=room_id(edition_id, key),
                edition_id=edition_id,
                name=self.text(entry, "name", f"room '{key}'"),
                capacity=capacity,
                capacity_estimated=bool(entry.get("capacity_estimated", False)),
            )
        workshops = {}
        for index, entry in enumerate(self.tables(document, "workshops"), 1):
            number = entry.get("number")
            if not isinstance(number, int) or isinstance(number, bool) or number < 1:
                raise self.fail(f"workshop {index}", "number must be a whole number from 1")
            if number in workshops:
                raise self.fail(f"workshop {number}", "listed twice")
            workshops[number] = EditionWorkshop(
                number=number,
                title=self.text(entry, "title", f"workshop {number}"),
                organisers=self.names(entry, "organisers", f"workshop {number}"),
                partners=self.names(entry, "partners", f"workshop {number}"),
                source=self.text(entry, "source", f"workshop {number}", required=False),
            )
        plan = replace(plan, workshops=tuple(workshops.values()))
        self.time_source = self.text(header, "time_source", "[edition]", required=False)
        sessions = [
            self.session(entry, index, plan, zone, rooms, workshops)
            for index, entry in enumerate(self.tables(document, "sessions"), 1)
        ]
        warnings = [
            self.warning(entry, index)
            for index, entry in enumerate(self.tables(document, "warnings"), 1)
        ]
        return ImportEdition(
            edition=plan,
            rooms=tuple(rooms.values()),
            sessions=tuple(sessions),
            warnings=tuple(warnings),
        )

    def session(
        self,
        entry: Mapping[str, Any],
        index: int,
        plan: PlanEdition,
        zone: ZoneInfo,
        rooms: Mapping[str, AddRoom],
        workshops: Mapping[int, EditionWorkshop],
    ) -> ScheduleSession:
        session_id = self.text(entry, "id", f"session {index}")
        where = f"session '{session_id}'"
        kind = self.text(entry, "kind", where)
        if kind not in SESSION_KINDS:
            raise self.fail(
                where, f"kind '{kind}' is not one of {', '.join(sorted(SESSION_KINDS))}"
            )
        room_key = self.text(entry, "room", where)
        if room_key not in rooms:
            raise self.fail(where, f"room '{room_key}' is not among the edition's [[rooms]]")
        workshop = None
        if "workshop" in entry:
            number = entry["workshop"]
            if number not in workshops:
                raise self.fail(where, f"workshop {number!r} is not among the [[workshops]]")
            known = workshops[number]
            workshop = WorkshopRef(
                number=known.number,
                title=known.title,
                organisers=known.organisers,
                partners=known.partners,
            )
        day = self.day(entry, "date", where)
        starts_at = datetime.combine(day, self.clock(entry, "start", where), zone)
        ends_at = datetime.combine(day, self.clock(entry, "end", where), zone)
        people = []
        for number, person in enumerate(self.tables(entry, "people"), 1):
            who = f"{where}, person {number}"
            role = self.text(person, "role", who)
            if role not in PERSON_ROLES:
                raise self.fail(
                    who, f"role '{role}' is not one of {', '.join(sorted(PERSON_ROLES))}"
                )
            people.append(
                Person(
                    person_id=self.text(person, "person", who),
                    name=self.text(person, "name", who),
                    title=self.text(person, "title", who, required=False),
                    role=cast(PersonRole, role),
                )
            )
        capacity = entry.get("capacity")
        if capacity is not None and (not isinstance(capacity, int) or isinstance(capacity, bool)):
            raise self.fail(where, "capacity must be a whole number")
        tentative = entry.get("tentative", False)
        if not isinstance(tentative, bool):
            raise self.fail(where, "tentative must be true or false")
        time_source = self.text(entry, "time_source", where, required=False)
        if tentative and time_source is None:
            time_source = self.time_source
        if tentative and time_source is None:
            raise self.fail(
                where, "a tentative time needs a 'time_source' saying where it comes from"
            )
        return ScheduleSession(
            session_id=session_id,
            edition_id=plan.edition_id,
            kind=cast(SessionKind, kind),
            title=self.text(entry, "title", where),
            room_id=rooms[room_key].room_id,
            starts_at=starts_at,
            ends_at=ends_at,
            workshop=workshop,
            capacity=capacity,
            people=tuple(people),
            tentative=tentative,
            time_source=time_source if tentative else None,
        )

    def warning(self, entry: Mapping[str, Any], index: int) -> Warning:
        where = f"warning {index}"
        values = entry.get("values", [])
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise self.fail(where, "values must be a list of strings")
        return Warning(
            session_id=self.text(entry, "session", where, required=False),
            field=self.text(entry, "field", where),
            message=self.text(entry, "message", where),
            values=tuple(values),
        )

    # -- typed access --------------------------------------------------------------------

    def names(self, parent: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
        value = parent.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(where, f"{key} must be a list of names")
        return tuple(value)

    def table(self, parent: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
        value = parent.get(key)
        if not isinstance(value, dict):
            raise self.fail(where, f"[{key}] table is missing")
        return value

    def tables(self, parent: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
        value = parent.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.fail(key, f"expected [[{key}]] entries")
        return value

    def text(
        self, parent: Mapping[str, Any], key: str, where: str, *, required: bool = True
    ) -> Any:
        value = parent.get(key)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(where, f"'{key}' must be a non-empty string")
        return value

    def day(self, parent: Mapping[str, Any], key: str, where: str) -> date:
        value = parent.get(key)
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        if isinstance(value, str):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        raise self.fail(where, f"'{key}' must be a date like 2025-06-23, not {value!r}")

    def clock(self, parent: Mapping[str, Any], key: str, where: str) -> time:
        value = parent.get(key)
        if isinstance(value, time):
            return value
        if isinstance(value, str):
            try:
                return time.fromisoformat(value)
            except ValueError:
                pass
        raise self.fail(where, f"'{key}' must be a 24-hour time like 14:30, not {value!r}")
