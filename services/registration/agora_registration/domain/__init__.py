"""Registration's rules, pure: commands, state, ``decide`` and ``evolve``. No I/O here.

Two consistency scopes:

* a **participant** (``registration.participant.<id>.*``): accreditation, badge, presence at
  the venue, and the *claims*: the session times the participant holds a place in. The rule
  "no two places in sessions that overlap" lives here, so concurrent enrolments of one person
  are serialised by this scope's optimistic concurrency;
* a **session enrolment** (``registration.enrolment.<session_id>.*``): the terms learnt from
  the agenda (time, capacity), the roster and the ordered waitlist. Capacity and promotion
  live here.

An enrolment claims on the participant first, then takes a place on the session; leaving
gives up the place first, then the claim. So a roster entry always has a claim behind it,
and the overlap rule on claims covers every roster and waitlist. Each claim has a number
(a fencing token) that roster entries carry: a late release for an old claim can never
remove a newer enrolment of the same person.

Modules: ``participant`` and ``enrolment`` (one decider each), ``ids`` (participant ids and
badge numbers), ``agenda_terms`` (what registration makes of the agenda's sessions and
rooms), ``window`` (the span of time both scopes reason about). Import from here.
"""

from .agenda_terms import (
    AgendaSession,
    agenda_sessions,
    room_capacities,
    sessions_in_room,
    sync_command,
)
from .enrolment import (
    WORKSHOP,
    Enrol,
    EnrolmentCommand,
    EnrolmentEvent,
    Place,
    SessionEnrolment,
    SessionTerms,
    SyncSession,
    Unenrol,
    decide_enrolment,
    enrolment_decider,
    enrolment_scope,
    ensure_open,
    evolve_enrolment,
)
from .ids import (
    ALPHABET,
    ID_LENGTH,
    badge_number,
    check_participant_id,
    participant_id_from_badge,
    participant_id_from_bits,
)
from .participant import (
    KEEP,
    REPRESENTING_A_STATE,
    Amend,
    Approve,
    CheckIn,
    CheckOut,
    Claim,
    ClaimPlace,
    Participant,
    ParticipantCommand,
    ParticipantEvent,
    Presence,
    Register,
    Reject,
    ReleasePlace,
    RescheduleClaim,
    Status,
    Withdraw,
    decide_participant,
    evolve_participant,
    held_claim,
    participant_decider,
    participant_scope,
)
from .window import Window

__all__ = [
    "ALPHABET",
    "ID_LENGTH",
    "KEEP",
    "REPRESENTING_A_STATE",
    "WORKSHOP",
    "AgendaSession",
    "Amend",
    "Approve",
    "CheckIn",
    "CheckOut",
    "Claim",
    "ClaimPlace",
    "Enrol",
    "EnrolmentCommand",
    "EnrolmentEvent",
    "Participant",
    "ParticipantCommand",
    "ParticipantEvent",
    "Place",
    "Presence",
    "Register",
    "Reject",
    "ReleasePlace",
    "RescheduleClaim",
    "SessionEnrolment",
    "SessionTerms",
    "Status",
    "SyncSession",
    "Unenrol",
    "Window",
    "Withdraw",
    "agenda_sessions",
    "badge_number",
    "check_participant_id",
    "decide_enrolment",
    "decide_participant",
    "enrolment_decider",
    "enrolment_scope",
    "ensure_open",
    "evolve_enrolment",
    "evolve_participant",
    "held_claim",
    "participant_decider",
    "participant_id_from_badge",
    "participant_id_from_bits",
    "participant_scope",
    "room_capacities",
    "sessions_in_room",
    "sync_command",
]
