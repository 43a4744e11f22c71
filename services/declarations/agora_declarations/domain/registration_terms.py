"""What declarations makes of registration's events: a participant's standing (name, title,
category, delegation, accreditation status), folded from their REGISTRATION history."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from agora_events.catalogue import DomainEvent
from agora_events.contracts.registration import (
    AccreditationApproved,
    AccreditationRejected,
    ContactDetailsAmended,
    ParticipantReclassified,
    ParticipantRegistered,
    ParticipantWithdrew,
)

from .commands import RecordStanding

FOLLOWED = (
    ParticipantRegistered,
    ContactDetailsAmended,
    ParticipantReclassified,
    AccreditationApproved,
    AccreditationRejected,
    ParticipantWithdrew,
)
"""The participant events that change what declarations knows of them."""


def standing_from(events: Iterable[DomainEvent], sequence: int) -> RecordStanding | None:
    """The standing after ``events`` (one participant's, in stream order) as of REGISTRATION
    sequence ``sequence``; None when they hold no registration."""
    standing: RecordStanding | None = None
    for event in events:
        match event:
            case ParticipantRegistered():
                standing = RecordStanding(
                    participant_id=event.participant_id,
                    name=event.name,
                    title=event.title,
                    category=event.category,
                    delegation=event.delegation,
                    status="submitted",
                    registration_sequence=sequence,
                )
            case _ if standing is None:
                continue
            case ContactDetailsAmended():
                title = standing.title if event.title is None else (event.title or None)
                standing = replace(standing, name=event.name or standing.name, title=title)
            case ParticipantReclassified():
                standing = replace(
                    standing,
                    category=event.category,
                    delegation=event.delegation,
                    status="submitted",
                )
            case AccreditationApproved():
                standing = replace(standing, status="approved")
            case AccreditationRejected():
                standing = replace(standing, status="rejected")
            case ParticipantWithdrew():
                standing = replace(standing, status="withdrawn")
    if standing is None:
        return None
    return replace(standing, registration_sequence=sequence)
