"""Events of the agenda context (stream AGENDA, subjects ``agenda.<aggregate>.<id>.<event>``).

Published contract: fields may be added (optional, with defaults) within a major version;
anything else is a new version with an upcaster.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from ..catalogue import DomainEvent, catalogue

SessionKind = Literal[
    "opening_ceremony",
    "keynote",
    "plenary",
    "ministerial_roundtable",
    "workshop_session",
    "break",
    "lunch",
    "study_tour",
    "dinner",
    "awards_ceremony",
    "reporting_back",
    "closing",
]
PersonRole = Literal[
    "speaker",
    "keynote_speaker",
    "moderator",
    "rapporteur",
    "chair",
    "presenter",
    "discussant",
    "host",
]


class WorkshopRef(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    number: int = Field(ge=1)
    title: str
    organisers: tuple[str, ...] = ()
    partners: tuple[str, ...] = Field(
        default=(), description="Named as partners ('in partnership with'), not as organisers"
    )


class EditionWorkshop(WorkshopRef):
    """A workshop of an edition, listed whether or not it has sessions yet."""

    source: str | None = Field(
        default=None, description="Where the workshop's facts come from, and what they leave out"
    )


@catalogue.event("agenda", "edition", "planned", id_field="edition_id")
class EditionPlanned(DomainEvent):
    edition_id: str
    name: str
    theme: str | None = None
    host_city: str
    host_country: str = Field(description="ISO 3166-1 alpha-3")
    start_date: date
    end_date: date
    time_zone: str = Field(description="IANA time zone, e.g. Asia/Samarkand")
    workshops: tuple[EditionWorkshop, ...] = Field(
        default=(),
        description="The edition's workshops as its sources list them, sessions or not",
    )


@catalogue.event("agenda", "edition", "details_changed", id_field="edition_id")
class EditionDetailsChanged(DomainEvent):
    """Only the fields that changed are set."""

    edition_id: str
    name: str | None = None
    theme: str | None = None
    host_city: str | None = None
    host_country: str | None = None
    start_date: date | None = None
    end_date: date | None = None
    time_zone: str | None = None
    workshops: tuple[EditionWorkshop, ...] | None = Field(
        default=None, description="The whole new list of the edition's workshops"
    )


@catalogue.event("agenda", "room", "added", id_field="room_id")
class RoomAdded(DomainEvent):
    room_id: str
    edition_id: str
    name: str
    capacity: int = Field(ge=1)
    capacity_estimated: bool = Field(
        default=False, description="True when no source states the capacity"
    )


@catalogue.event("agenda", "room", "renamed", id_field="room_id")
class RoomRenamed(DomainEvent):
    room_id: str
    edition_id: str
    old_name: str
    new_name: str


@catalogue.event("agenda", "room", "capacity_changed", id_field="room_id")
class RoomCapacityChanged(DomainEvent):
    room_id: str
    edition_id: str
    old_capacity: int
    new_capacity: int = Field(ge=1)
    capacity_estimated: bool = False


@catalogue.event("agenda", "session", "scheduled", id_field="session_id")
class SessionScheduled(DomainEvent):
    session_id: str
    edition_id: str
    kind: SessionKind
    title: str
    workshop: WorkshopRef | None = None
    room_id: str
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    capacity: int | None = Field(
        default=None, ge=1, description="The session's own capacity; the room's when absent"
    )
    tentative: bool = Field(
        default=False,
        description="True when no source states the time: it is a placeholder, not a fact",
    )
    time_source: str | None = Field(
        default=None, description="Where the time comes from, when tentative"
    )


@catalogue.event("agenda", "session", "moved", id_field="session_id")
class SessionMoved(DomainEvent):
    """Carries the old and the new time and room, so a subscriber needs no lookup."""

    session_id: str
    edition_id: str
    old_room_id: str
    new_room_id: str
    old_starts_at: AwareDatetime
    old_ends_at: AwareDatetime
    new_starts_at: AwareDatetime
    new_ends_at: AwareDatetime
    tentative: bool = Field(
        default=False, description="True when the new time is still a placeholder"
    )


@catalogue.event("agenda", "session", "details_changed", id_field="session_id")
class SessionDetailsChanged(DomainEvent):
    """Only the fields that changed are set; ``capacity_cleared`` falls back to the room's,
    ``workshop_cleared`` detaches the session from its workshop."""

    session_id: str
    edition_id: str
    title: str | None = None
    kind: SessionKind | None = None
    workshop: WorkshopRef | None = None
    workshop_cleared: bool = False
    capacity: int | None = Field(default=None, ge=1)
    capacity_cleared: bool = False


@catalogue.event("agenda", "session", "cancelled", id_field="session_id")
class SessionCancelled(DomainEvent):
    session_id: str
    edition_id: str
    reason: str


@catalogue.event("agenda", "session", "person_assigned", id_field="session_id")
class PersonAssigned(DomainEvent):
    session_id: str
    edition_id: str
    person_id: str
    name: str
    title: str | None = None
    role: PersonRole


@catalogue.event("agenda", "session", "person_removed", id_field="session_id")
class PersonRemoved(DomainEvent):
    session_id: str
    edition_id: str
    person_id: str


@catalogue.event("agenda", "edition", "schedule_published", id_field="edition_id")
class SchedulePublished(DomainEvent):
    edition_id: str
    version: int = Field(ge=1)
    label: str
    published_at: datetime
    new: tuple[str, ...] = ()
    moved: tuple[str, ...] = ()
    cancelled: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()


@catalogue.event("agenda", "edition", "data_quality_warning_recorded", id_field="edition_id")
class DataQualityWarningRecorded(DomainEvent):
    """The sources of an edition's programme contradict each other or leave a gap.

    Both facts stay visible: ``values`` holds what each source says, ``message`` which one the
    programme uses and why. ``session_id`` is absent when the warning covers the edition."""

    edition_id: str
    warning_id: str
    session_id: str | None = None
    field: str = Field(description="The programme field concerned, e.g. 'start' or 'people.title'")
    message: str
    values: tuple[str, ...] = ()


@catalogue.event("agenda", "edition", "data_quality_warning_withdrawn", id_field="edition_id")
class DataQualityWarningWithdrawn(DomainEvent):
    """A programme imported later no longer carries the warning."""

    edition_id: str
    warning_id: str
