"""Checks of a command's own values, whatever the state: ids, names, kinds, zones, times.

Each refuses with ``InvalidCommand`` and a reason a person can act on.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agora_events.catalogue import ID_TOKEN
from agora_events.contracts.agenda import PersonRole, SessionKind
from agora_events.decider import InvalidCommand

from .commands import Person

SESSION_KINDS: frozenset[str] = frozenset(get_args(SessionKind))
PERSON_ROLES: frozenset[str] = frozenset(get_args(PersonRole))


def distinct_people(people: Sequence[Person]) -> Sequence[Person]:
    seen: set[str] = set()
    for person in people:
        check_id("person id", person.person_id)
        check_text("person's name", person.name)
        if person.role not in PERSON_ROLES:
            raise InvalidCommand(
                f"role '{person.role}' is not one of {', '.join(sorted(PERSON_ROLES))}"
            )
        if person.person_id in seen:
            raise InvalidCommand(f"'{person.person_id}' is listed twice on one panel")
        seen.add(person.person_id)
    return people


def check_unique(what: str, ids: Sequence[str]) -> None:
    seen: set[str] = set()
    for identifier in ids:
        if identifier in seen:
            raise InvalidCommand(f"{what} id '{identifier}' appears twice")
        seen.add(identifier)


def check_id(what: str, value: str) -> None:
    if not ID_TOKEN.match(value):
        raise InvalidCommand(
            f"{what} {value!r} is not usable: use 1-128 letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )


def check_text(what: str, value: str) -> None:
    if not value.strip():
        raise InvalidCommand(f"the {what} must not be blank")


def check_kind(kind: str) -> None:
    if kind not in SESSION_KINDS:
        raise InvalidCommand(f"kind '{kind}' is not one of {', '.join(sorted(SESSION_KINDS))}")


def check_capacity(capacity: int) -> None:
    if capacity < 1:
        raise InvalidCommand(f"a capacity must be at least 1, not {capacity}")


def check_country(code: str) -> None:
    if len(code) != 3 or not code.isalpha() or not code.isupper():
        raise InvalidCommand(f"host country {code!r} is not an ISO 3166-1 alpha-3 code")


def check_zone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidCommand(f"{name!r} is not an IANA time zone") from None


def check_dates(start: date, end: date) -> None:
    if end < start:
        raise InvalidCommand(f"the edition would end on {end}, before it starts on {start}")


def check_aware(moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidCommand(f"{moment.isoformat()} has no UTC offset")


def check_times(starts_at: datetime, ends_at: datetime) -> None:
    check_aware(starts_at)
    check_aware(ends_at)
    if ends_at <= starts_at:
        raise InvalidCommand(
            f"a session must end after it starts: {starts_at.isoformat()} to {ends_at.isoformat()}"
        )
