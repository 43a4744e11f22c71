"""The iCalendar attachment of a session change: the agenda feed's UID for the session, so
a calendar replaces the event it has; ``METHOD:REQUEST`` with the feed's new SEQUENCE for a
move, ``METHOD:CANCEL`` for a cancellation."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event

PRODUCT = "-//Agora//Notifications//EN"
AGENDA_UID_DOMAIN = "agenda.agora"
"""As the agenda's feed names its sessions (``services/agenda``: ``<session_id>@agenda.agora``)."""


def session_uid(session_id: str) -> str:
    return f"{session_id}@{AGENDA_UID_DOMAIN}"


def invitation(facts: dict[str, Any], *, organiser: str, stamp: datetime) -> bytes:
    """An invitation (or cancellation) for the session the facts describe."""
    cancelled = (facts.get("change") or {}).get("kind") == "cancelled"
    cal = Calendar()
    cal.add("prodid", PRODUCT)
    cal.add("version", "2.0")
    cal.add("method", "CANCEL" if cancelled else "REQUEST")
    zone = ZoneInfo(facts.get("time_zone") or "UTC")
    event = Event()
    event.add("uid", session_uid(facts["session_id"]))
    event.add("sequence", int(facts["sequence"]))
    event.add("dtstamp", stamp)
    event.add("dtstart", datetime.fromisoformat(facts["starts_at"]).astimezone(zone))
    event.add("dtend", datetime.fromisoformat(facts["ends_at"]).astimezone(zone))
    event.add("summary", facts.get("title", ""))
    place = facts.get("place")
    event.add("location", f"{facts.get('room', '')}, {place}" if place else facts.get("room", ""))
    event.add("organizer", f"mailto:{organiser}")
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    cal.add_component(event)
    cal.add_missing_timezones()
    ical: bytes = cal.to_ical()
    return ical
