"""One event union per aggregate, and how each event changes its state."""

from __future__ import annotations

from dataclasses import replace
from typing import assert_never

from agora_events.contracts.declarations import (
    DeclarationDrafted,
    DeclarationOpenedForSignature,
    DeclarationRedrafted,
    DeclarationSigned,
    DeclarationTextSet,
    FullPowersRecorded,
    FullPowersRevoked,
    ParticipantStandingRecorded,
    SignatureWindowExtended,
    SignatureWithdrawn,
)

from .state import Declaration, Signatory, Signature, StateRecord, Window

DeclarationEvent = (
    DeclarationDrafted
    | DeclarationRedrafted
    | DeclarationTextSet
    | DeclarationOpenedForSignature
    | SignatureWindowExtended
)
StateEvent = FullPowersRecorded | FullPowersRevoked | DeclarationSigned | SignatureWithdrawn
ParticipantEvent = ParticipantStandingRecorded


def evolve_declaration(state: Declaration, event: DeclarationEvent) -> Declaration:
    match event:
        case DeclarationDrafted():
            return Declaration(
                declaration_id=event.declaration_id,
                title=event.title,
                edition_id=event.edition_id,
                launched_by=event.launched_by,
                launched_on=event.launched_on,
                priorities=event.priorities,
            )
        case DeclarationRedrafted():
            return replace(
                state,
                title=state.title if event.title is None else event.title,
                priorities=state.priorities if event.priorities is None else event.priorities,
            )
        case DeclarationTextSet():
            return replace(state, texts={**state.texts, event.language: event.sha256})
        case DeclarationOpenedForSignature():
            return replace(
                state,
                texts={text.language: text.sha256 for text in event.texts},
                window=Window(event.opens_at, event.closes_at),
                open_to=event.open_to,
            )
        case SignatureWindowExtended():
            assert state.window is not None, "a window is extended only once open"
            return replace(state, window=replace(state.window, closes_at=event.closes_at))
        case _:
            assert_never(event)


def evolve_state(state: StateRecord, event: StateEvent) -> StateRecord:
    match event:
        case FullPowersRecorded():
            key = (event.declaration_id, event.participant_id)
            return replace(state, full_powers={**state.full_powers, key: event.instrument})
        case FullPowersRevoked():
            key = (event.declaration_id, event.participant_id)
            kept = {k: v for k, v in state.full_powers.items() if k != key}
            return replace(state, full_powers=kept)
        case DeclarationSigned():
            signature = Signature(
                event.declaration_id,
                event.participant_id,
                event.signatory_name,
                event.capacity,
                event.signed_at,
            )
            return replace(state, signatures=(*state.signatures, signature))
        case SignatureWithdrawn():
            signatures = tuple(
                replace(s, withdrawn_at=event.withdrawn_at)
                if s.declaration_id == event.declaration_id and s.standing
                else s
                for s in state.signatures
            )
            return replace(state, signatures=signatures)
        case _:
            assert_never(event)


def evolve_participant(state: Signatory, event: ParticipantEvent) -> Signatory:
    match event:
        case ParticipantStandingRecorded():
            return Signatory(
                participant_id=event.participant_id,
                name=event.name,
                title=event.title,
                category=event.category,
                delegation=event.delegation,
                status=event.status,
                registration_sequence=event.registration_sequence,
            )
        case _:
            assert_never(event)
