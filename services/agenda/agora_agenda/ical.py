"""iCalendar (RFC 5545) export of a programme or of one session.

A session's UID never changes, and its SEQUENCE is its revision, which grows with every
command that changes it, so a calendar client replaces the event instead of adding another.
Cancelled sessions stay in the feed with STATUS:CANCELLED, so subscribers drop them; a session
whose time no source states is STATUS:TENTATIVE, never CONFIRMED. Workshops with no sessions
(unscheduled) have nothing to put in a calendar and are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event

from .queries import EditionSummary, SessionView

PRODUCT = "-//Agora//Agenda//EN"
UID_DOMAIN = "agenda.agora"
ROLE_LABELS = {
    "speaker": "Speaker",
    "keynote_speaker": "Keynote speaker",
    "moderator": "Moderator",
    "rapporteur": "Rapporteur",
    "chair": "Chair",
    "presenter": "Presenter",
    "discussant": "Discussant",
    "host": "Host",
}


STATUS = {"scheduled": "CONFIRMED", "tentative": "TENTATIVE", "cancelled": "CANCELLED"}


def uid(session_id: str) -> str:
    return f"{session_id}@{UID_DOMAIN}"


def calendar(edition: EditionSummary, sessions: Sequence[SessionView], *, name: str) -> bytes:
    cal = Calendar()
    cal.add("prodid", PRODUCT)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", name)
    cal.add("x-wr-timezone", edition.time_zone)
    zone = ZoneInfo(edition.time_zone)
    for session in sessions:
        cal.add_component(_event(session, edition, zone))
    cal.add_missing_timezones()
    ical: bytes = cal.to_ical()
    return ical


def _event(session: SessionView, edition: EditionSummary, zone: ZoneInfo) -> Event:
    event = Event()
    event.add("uid", uid(session.session_id))
    event.add("sequence", session.revision)
    event.add("dtstamp", session.updated_at)
    event.add("last-modified", session.updated_at)
    event.add("dtstart", session.starts_at.astimezone(zone))
    event.add("dtend", session.ends_at.astimezone(zone))
    event.add("summary", session.label)
    event.add("location", f"{session.room.name}, {edition.host_city}")
    event.add("categories", [session.kind])
    event.add("status", STATUS[session.status])
    event.add("description", _description(session, edition))
    return event


def _description(session: SessionView, edition: EditionSummary) -> str:
    lines = [edition.name]
    if session.workshop is not None:
        lines.append(f"Workshop {session.workshop.number}: {session.workshop.title}")
        if session.workshop.organisers:
            lines.append("Organised by " + "; ".join(session.workshop.organisers))
        if session.workshop.partners:
            lines.append("In partnership with " + "; ".join(session.workshop.partners))
    if session.status == "tentative":
        lines.append(f"Time tentative ({session.time_source or 'not stated by the sources'})")
    for person in session.people:
        role = ROLE_LABELS.get(person.role, person.role)
        title = f", {person.title}" if person.title else ""
        lines.append(f"{role}: {person.name}{title}")
    if session.status == "cancelled" and session.cancel_reason:
        lines.append(f"Cancelled: {session.cancel_reason}")
    return "\n".join(lines)
