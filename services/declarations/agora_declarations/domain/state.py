"""What declarations knows, per consistency scope: a declaration, a State's acts as a
signatory, and a participant as registration described them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from agora_events.contracts.declarations import Capacity, OpenTo, Priority, Standing
from agora_events.contracts.registration import Category


def when(moment: datetime) -> str:
    """A time as a person reads it in a refusal: ISO 8601 to the minute, with its offset."""
    return moment.isoformat(timespec="minutes")


@dataclass(frozen=True, slots=True)
class Window:
    opens_at: datetime
    closes_at: datetime | None = None

    def has_opened(self, at: datetime) -> bool:
        return at >= self.opens_at

    def has_closed(self, at: datetime) -> bool:
        return self.closes_at is not None and at >= self.closes_at

    def describe(self) -> str:
        if self.closes_at is None:
            return f"open for signature from {when(self.opens_at)}, with no closing date"
        return f"open for signature from {when(self.opens_at)} until {when(self.closes_at)}"


@dataclass(frozen=True, slots=True)
class Declaration:
    declaration_id: str | None = None
    """None until drafted."""
    title: str = ""
    edition_id: str = ""
    launched_by: str = ""
    launched_on: date | None = None
    priorities: tuple[Priority, ...] = ()
    texts: Mapping[str, str] = field(default_factory=dict)
    """Language → SHA-256 of the text: the draft's while drafting, fixed once open."""
    window: Window | None = None
    """None until opened for signature."""
    open_to: OpenTo = "member_states"

    @property
    def drafted(self) -> bool:
        return self.declaration_id is not None

    @property
    def is_open(self) -> bool:
        return self.window is not None


@dataclass(frozen=True, slots=True)
class Signature:
    declaration_id: str
    participant_id: str
    signatory_name: str
    capacity: Capacity
    signed_at: datetime
    withdrawn_at: datetime | None = None

    @property
    def standing(self) -> bool:
        return self.withdrawn_at is None


@dataclass(frozen=True, slots=True)
class StateRecord:
    """One State's acts as a signatory, for every declaration."""

    full_powers: Mapping[tuple[str, str], str] = field(default_factory=dict)
    """(declaration id, participant id) → the instrument seen."""
    signatures: tuple[Signature, ...] = ()
    """Every signature ever made, withdrawn ones included, oldest first."""

    def current(self, declaration_id: str) -> Signature | None:
        """The State's signature of the declaration that stands, if any."""
        for signature in reversed(self.signatures):
            if signature.declaration_id == declaration_id:
                return signature if signature.standing else None
        return None

    def has_full_powers(self, declaration_id: str, participant_id: str) -> bool:
        return (declaration_id, participant_id) in self.full_powers


@dataclass(frozen=True, slots=True)
class Signatory:
    """A participant as registration's events describe them."""

    participant_id: str | None = None
    """None while declarations has learnt nothing of them."""
    name: str = ""
    title: str | None = None
    category: Category = "delegate"
    delegation: str | None = None
    status: Standing = "submitted"
    registration_sequence: int = 0
