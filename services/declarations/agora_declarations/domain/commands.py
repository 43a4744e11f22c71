"""What can be asked of declarations: frozen commands with imperative names, one union per
consistency scope."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from agora_events.contracts.declarations import OpenTo, Priority, Standing
from agora_events.contracts.registration import Category

from .state import Declaration, Signatory

# -- a declaration ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Draft:
    declaration_id: str
    title: str
    edition_id: str
    launched_by: str
    launched_on: date | None = None
    priorities: tuple[Priority, ...] = ()
    source: str | None = None


@dataclass(frozen=True, slots=True)
class Redraft:
    declaration_id: str
    title: str | None = None
    priorities: tuple[Priority, ...] | None = None


@dataclass(frozen=True, slots=True)
class SetText:
    declaration_id: str
    language: str
    text: str


@dataclass(frozen=True, slots=True)
class OpenForSignature:
    declaration_id: str
    opens_at: datetime
    closes_at: datetime | None
    open_to: OpenTo
    at: datetime
    """When the organiser asks: a window that would already be over is refused."""


@dataclass(frozen=True, slots=True)
class ExtendWindow:
    declaration_id: str
    closes_at: datetime | None
    """The new closing time; None keeps the window open without end."""
    at: datetime


DeclarationCommand = Draft | Redraft | SetText | OpenForSignature | ExtendWindow

# -- a State as a signatory ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordFullPowers:
    state: str
    declaration_id: str
    declaration: Declaration
    signatory: Signatory
    instrument: str


@dataclass(frozen=True, slots=True)
class RevokeFullPowers:
    state: str
    declaration_id: str
    participant_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Sign:
    """Sign ``declaration`` for ``state``. The declaration and the signatory are what this
    service knows of them when the command is decided: a declaration's terms only ever widen
    once it is open (texts fixed, window only extended), so deciding on them outside the
    State's scope cannot let through a signature the current terms would refuse."""

    state: str
    declaration_id: str
    declaration: Declaration
    signatory: Signatory | None
    participant_id: str
    language: str
    text_sha256: str
    at: datetime
    demo: bool = False


@dataclass(frozen=True, slots=True)
class WithdrawSignature:
    state: str
    declaration_id: str
    reason: str
    at: datetime


StateCommand = RecordFullPowers | RevokeFullPowers | Sign | WithdrawSignature

# -- a participant, as registration's events describe them ------------------------------------


@dataclass(frozen=True, slots=True)
class RecordStanding:
    participant_id: str
    name: str
    title: str | None
    category: Category
    delegation: str | None
    status: Standing
    registration_sequence: int
