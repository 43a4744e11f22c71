"""Events of the registration context (stream REGISTRATION).

Two aggregates write here:

* ``registration.participant.<participant_id>.<event>``: a person's registration,
  accreditation, badge, presence at the venue and the places they claim in workshop sessions;
* ``registration.enrolment.<session_id>.<event>``: one workshop session's roster, its ordered
  waitlist and the terms (time, capacity) registration last learnt from the agenda.

Subjects carry ids only; names and contact details travel in event bodies and nowhere else.
Published contract: fields may be added (optional, with defaults) within a major version;
anything else is a new version with an upcaster.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from ..catalogue import DomainEvent, catalogue
from .agenda import SessionKind

Category = Literal[
    "head_of_state_or_government",
    "minister",
    "head_of_delegation",
    "delegate",
    "speaker",
    "un_staff",
    "press",
    "civil_society_or_observer",
    "organiser",
]
CATEGORIES: tuple[Category, ...] = (
    "head_of_state_or_government",
    "minister",
    "head_of_delegation",
    "delegate",
    "speaker",
    "un_staff",
    "press",
    "civil_society_or_observer",
    "organiser",
)
ReleaseReason = Literal["left", "withdrew", "rejected", "session_cancelled"]

_DELEGATION = (
    "ISO 3166-1 alpha-3 code of the UN Member State or observer State the participant "
    "represents; absent for international organisations"
)
_CLAIM = (
    "the participant's claim number for this place: a fencing token, unique per participant, "
    "that ties roster entries to the claim recorded on the participant"
)


class ClaimRef(BaseModel):
    """A place a participant held in a session, named by the claim that holds it."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    session_id: str
    claim: int = Field(ge=1, description=_CLAIM)


class PlaceRef(BaseModel):
    """Someone's place on a session's roster or waitlist."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    participant_id: str
    claim: int = Field(ge=1, description=_CLAIM)


# -- participant ---------------------------------------------------------------------------


@catalogue.event("registration", "participant", "registered", id_field="participant_id")
class ParticipantRegistered(DomainEvent):
    """A person registered; their accreditation awaits an organiser's review."""

    participant_id: str
    name: str
    email: str
    organisation: str = ""
    title: str | None = None
    category: Category
    delegation: str | None = Field(default=None, description=_DELEGATION)
    language: str | None = Field(
        default=None,
        description="BCP 47 tag of the language the participant is written to in, e.g. en, "
        "fr; absent when they did not say",
    )


@catalogue.event("registration", "participant", "contact_amended", id_field="participant_id")
class ContactDetailsAmended(DomainEvent):
    """Only the fields that changed are set (``title=""`` clears the title). The
    accreditation status is unchanged."""

    participant_id: str
    name: str | None = None
    email: str | None = None
    organisation: str | None = None
    title: str | None = None


@catalogue.event("registration", "participant", "reclassified", id_field="participant_id")
class ParticipantReclassified(DomainEvent):
    """Category or delegation changed: the accreditation goes back to review."""

    participant_id: str
    category: Category
    delegation: str | None = Field(default=None, description=_DELEGATION)
    previous_status: Literal["submitted", "approved", "rejected"]


class Badge(BaseModel):
    """The badge an approval issues. The number never changes for a participant; a
    re-approval after a change of category or delegation issues it again with ``issue`` + 1."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    badge_number: str
    issue: int = Field(ge=1)
    category: Category
    delegation: str | None = Field(default=None, description=_DELEGATION)


@catalogue.event("registration", "participant", "approved", id_field="participant_id")
class AccreditationApproved(DomainEvent):
    """The accreditation was approved, and with it the badge issued: one fact, one event."""

    participant_id: str
    badge: Badge | None = Field(
        default=None,
        description="the badge issued with this approval; absent only on approvals recorded "
        "before it was carried here, each of which a `badge_issued` event follows",
    )


@catalogue.event("registration", "participant", "badge_issued", id_field="participant_id")
class BadgeIssued(DomainEvent):
    """No longer recorded: an approval carries its badge (``AccreditationApproved.badge``).
    Kept so that the approvals recorded before, each followed by one of these, still read.
    Its fields are those of ``Badge``."""

    participant_id: str
    badge_number: str
    issue: int = Field(ge=1)
    category: Category
    delegation: str | None = Field(default=None, description=_DELEGATION)


@catalogue.event("registration", "participant", "rejected", id_field="participant_id")
class AccreditationRejected(DomainEvent):
    """Refused on review, or revoked after approval; the places held are given up."""

    participant_id: str
    reason: str
    released: tuple[ClaimRef, ...] = ()


@catalogue.event("registration", "participant", "withdrawn", id_field="participant_id")
class ParticipantWithdrew(DomainEvent):
    """Final: a withdrawn participant cannot check in or enrol; the places held are given up."""

    participant_id: str
    reason: str | None = None
    released: tuple[ClaimRef, ...] = ()


@catalogue.event("registration", "participant", "checked_in", id_field="participant_id")
class CheckedIn(DomainEvent):
    participant_id: str
    gate: str
    at: AwareDatetime


@catalogue.event("registration", "participant", "checked_out", id_field="participant_id")
class CheckedOut(DomainEvent):
    participant_id: str
    gate: str
    at: AwareDatetime


@catalogue.event("registration", "participant", "place_claimed", id_field="participant_id")
class PlaceClaimed(DomainEvent):
    """First step of an enrolment: the participant reserves the time of a session, which no
    other place they hold may overlap. The session's roster or waitlist follows."""

    participant_id: str
    session_id: str
    claim: int = Field(ge=1, description=_CLAIM)
    starts_at: AwareDatetime
    ends_at: AwareDatetime


@catalogue.event("registration", "participant", "claim_rescheduled", id_field="participant_id")
class ClaimRescheduled(DomainEvent):
    """The agenda moved a session the participant holds a place in."""

    participant_id: str
    session_id: str
    claim: int = Field(ge=1)
    starts_at: AwareDatetime
    ends_at: AwareDatetime


@catalogue.event("registration", "participant", "place_released", id_field="participant_id")
class PlaceReleased(DomainEvent):
    participant_id: str
    session_id: str
    claim: int = Field(ge=1)
    reason: ReleaseReason = "left"


# -- enrolment (one per workshop session) --------------------------------------------------


@catalogue.event("registration", "enrolment", "terms_recorded", id_field="session_id")
class SessionTermsRecorded(DomainEvent):
    """What registration knows of a session from the agenda: the full terms, each time any
    of them changes. ``capacity`` is the session's own, or else its room's."""

    session_id: str
    edition_id: str
    kind: SessionKind
    title: str
    room_id: str
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    capacity: int = Field(ge=1)


@catalogue.event("registration", "enrolment", "enrolled", id_field="session_id")
class Enrolled(DomainEvent):
    session_id: str
    participant_id: str
    claim: int = Field(ge=1, description=_CLAIM)


@catalogue.event("registration", "enrolment", "waitlisted", id_field="session_id")
class Waitlisted(DomainEvent):
    """The session was full; ``position`` counts from 1 at the time of joining."""

    session_id: str
    participant_id: str
    claim: int = Field(ge=1, description=_CLAIM)
    position: int = Field(ge=1)


@catalogue.event("registration", "enrolment", "promoted", id_field="session_id")
class PromotedFromWaitlist(DomainEvent):
    """A place freed up and went to the first on the waitlist, without asking them again."""

    session_id: str
    participant_id: str
    claim: int = Field(ge=1)


@catalogue.event("registration", "enrolment", "unenrolled", id_field="session_id")
class Unenrolled(DomainEvent):
    session_id: str
    participant_id: str
    claim: int = Field(ge=1)
    from_waitlist: bool = False
    reason: ReleaseReason = "left"


@catalogue.event("registration", "enrolment", "closed", id_field="session_id")
class EnrolmentClosed(DomainEvent):
    """The session was cancelled; every place on its roster and waitlist is released."""

    session_id: str
    reason: str
    released: tuple[PlaceRef, ...] = Field(
        default=(), description="everyone who was enrolled or waitlisted, roster first"
    )
