"""Declarations' rules, pure: commands, state, ``decide`` and ``evolve``. No I/O here.

Three consistency scopes:

* a **declaration** (``declarations.declaration.<id>.*``): its draft, its texts, their
  opening for signature (which fixes each text by its hash) and the signature window;
* a **State** (``declarations.state.<alpha3>.*``): the full powers recorded for its
  delegates, its signatures and their withdrawals, for every declaration. "One signature per
  State" is this scope's optimistic concurrency: of twenty delegates signing at once, the
  first append wins and every other is decided again on the signed state and refused;
* a **participant** (``declarations.participant.<id>.*``): what registration's events say
  of them, recorded by the reactor.

A signature is decided in the State's scope, on the declaration and the signatory as this
service knows them (see ``Sign``).

- ``commands``: what can be asked; ``state``: what is known; ``evolve``: the event unions;
- ``rules``: who may sign, and when; ``decisions``: ``decide`` per scope;
- ``text``: the canonical form of a text and its hash; ``status``: the depositary's table
  as of any instant, folded from the signatures.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from agora_events.catalogue import DomainEvent
from agora_events.decider import Decider, members

from .commands import (
    DeclarationCommand,
    Draft,
    ExtendWindow,
    OpenForSignature,
    RecordFullPowers,
    RecordStanding,
    Redraft,
    RevokeFullPowers,
    SetText,
    Sign,
    StateCommand,
    WithdrawSignature,
)
from .decisions import decide_declaration, decide_participant, decide_state
from .evolve import (
    DeclarationEvent,
    ParticipantEvent,
    StateEvent,
    evolve_declaration,
    evolve_participant,
    evolve_state,
)
from .rules import EX_OFFICIO, already_signed, known_state
from .state import Declaration, Signatory, Signature, StateRecord, Window, when
from .status import SignatoryRow, Status, status_as_of
from .text import canonical, check_language, text_hash

S = TypeVar("S")


def _stored(evolve: Callable[[S, Any], S], union: Any) -> Callable[[S, DomainEvent], S]:
    """``evolve`` for any stored event: one outside the aggregate's union changes nothing."""
    kinds = members(union)

    def evolve_stored(state: S, event: DomainEvent) -> S:
        return evolve(state, event) if isinstance(event, kinds) else state

    return evolve_stored


declaration_decider: Decider[Declaration, DeclarationCommand, DomainEvent] = Decider(
    Declaration,
    decide_declaration,
    _stored(evolve_declaration, DeclarationEvent),
    events=members(DeclarationEvent),
)
state_decider: Decider[StateRecord, StateCommand, DomainEvent] = Decider(
    StateRecord, decide_state, _stored(evolve_state, StateEvent), events=members(StateEvent)
)
participant_decider: Decider[Signatory, RecordStanding, DomainEvent] = Decider(
    Signatory,
    decide_participant,
    _stored(evolve_participant, ParticipantEvent),
    events=members(ParticipantEvent),
)


def declaration_scope(declaration_id: str) -> str:
    return f"declarations.declaration.{declaration_id}.*"


def state_scope(state: str) -> str:
    return f"declarations.state.{state}.*"


def participant_scope(participant_id: str) -> str:
    return f"declarations.participant.{participant_id}.*"


__all__ = [
    "EX_OFFICIO",
    "Declaration",
    "DeclarationCommand",
    "DeclarationEvent",
    "Draft",
    "ExtendWindow",
    "OpenForSignature",
    "ParticipantEvent",
    "RecordFullPowers",
    "RecordStanding",
    "Redraft",
    "RevokeFullPowers",
    "SetText",
    "Sign",
    "Signatory",
    "SignatoryRow",
    "Signature",
    "StateCommand",
    "StateEvent",
    "StateRecord",
    "Status",
    "Window",
    "WithdrawSignature",
    "already_signed",
    "canonical",
    "check_language",
    "declaration_decider",
    "declaration_scope",
    "known_state",
    "participant_decider",
    "participant_scope",
    "state_decider",
    "state_scope",
    "status_as_of",
    "text_hash",
    "when",
]
