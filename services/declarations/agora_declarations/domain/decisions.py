"""``decide`` for each scope: a command and the current state in, events out, or a refusal."""

from __future__ import annotations

from collections.abc import Sequence
from typing import assert_never

from agora_events.contracts.declarations import (
    DeclarationDrafted,
    DeclarationOpenedForSignature,
    DeclarationRedrafted,
    DeclarationSigned,
    DeclarationTextSet,
    FixedText,
    FullPowersRecorded,
    FullPowersRevoked,
    ParticipantStandingRecorded,
    Priority,
    SignatureWindowExtended,
    SignatureWithdrawn,
)
from agora_events.decider import InvalidCommand, InvariantViolated, NotFound

from . import rules
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
from .evolve import DeclarationEvent, ParticipantEvent, StateEvent
from .state import Declaration, Signatory, StateRecord, when
from .text import check_language, check_text, text_hash

# -- a declaration ---------------------------------------------------------------------------


def decide_declaration(
    state: Declaration, command: DeclarationCommand
) -> Sequence[DeclarationEvent]:
    match command:
        case Draft():
            return _draft(state, command)
        case Redraft():
            _still_a_draft(state, command.declaration_id)
            if command.title is not None:
                _title(command.title)
            changed_title = command.title if command.title != state.title else None
            changed = command.priorities if command.priorities != state.priorities else None
            if changed is not None:
                _priorities(changed)
            if changed_title is None and changed is None:
                return []
            return [
                DeclarationRedrafted(
                    declaration_id=command.declaration_id, title=changed_title, priorities=changed
                )
            ]
        case SetText():
            _still_a_draft(state, command.declaration_id)
            check_language(command.language)
            check_text(command.text)
            digest = text_hash(command.text)
            if state.texts.get(command.language) == digest:
                return []
            return [
                DeclarationTextSet(
                    declaration_id=command.declaration_id,
                    language=command.language,
                    text=command.text,
                    sha256=digest,
                )
            ]
        case OpenForSignature():
            return _open(state, command)
        case ExtendWindow():
            return _extend(state, command)
        case _:
            assert_never(command)


def _draft(state: Declaration, command: Draft) -> list[DeclarationEvent]:
    if state.drafted:
        if (state.title, state.edition_id) == (command.title, command.edition_id):
            return []
        raise InvariantViolated(
            f"declaration {command.declaration_id!r} is already drafted, as {state.title!r}; "
            "change its draft instead of drafting it again"
        )
    _title(command.title)
    rules.known_state(command.launched_by)
    _priorities(command.priorities)
    return [
        DeclarationDrafted(
            declaration_id=command.declaration_id,
            title=command.title,
            edition_id=command.edition_id,
            launched_by=command.launched_by,
            launched_on=command.launched_on,
            priorities=command.priorities,
            source=command.source,
        )
    ]


def _said(value: str, what: str) -> None:
    if not value.strip():
        raise InvalidCommand(f"the {what} is empty; say it in words")


def _title(title: str) -> None:
    _said(title, "title")


def _priorities(priorities: Sequence[Priority]) -> None:
    numbers = [p.number for p in priorities]
    if numbers != list(range(1, len(numbers) + 1)):
        raise InvalidCommand(f"priorities are numbered 1, 2, 3… in order; got {numbers}")
    for priority in priorities:
        _said(priority.title, f"title of priority {priority.number}")


def _still_a_draft(state: Declaration, declaration_id: str) -> None:
    if not state.drafted:
        raise NotFound(f"there is no declaration {declaration_id!r}")
    if state.window is not None:
        raise InvariantViolated(
            f"declaration {declaration_id!r} is open for signature: its texts were fixed by "
            "their hashes when it opened, and its draft can no longer change"
        )


def _open(state: Declaration, command: OpenForSignature) -> list[DeclarationEvent]:
    _still_a_draft(state, command.declaration_id)
    if not state.texts:
        raise InvariantViolated(
            f"declaration {command.declaration_id!r} has no text yet; set its text in at "
            "least one language before opening it for signature"
        )
    if command.closes_at is not None:
        if command.closes_at <= command.opens_at:
            raise InvalidCommand(
                f"the window would close ({when(command.closes_at)}) before it opens "
                f"({when(command.opens_at)})"
            )
        if command.closes_at <= command.at:
            raise InvalidCommand(
                f"the window would already be closed: it closes at {when(command.closes_at)}"
            )
    texts = tuple(FixedText(language=lang, sha256=h) for lang, h in sorted(state.texts.items()))
    return [
        DeclarationOpenedForSignature(
            declaration_id=command.declaration_id,
            texts=texts,
            opens_at=command.opens_at,
            closes_at=command.closes_at,
            open_to=command.open_to,
        )
    ]


def _extend(state: Declaration, command: ExtendWindow) -> list[DeclarationEvent]:
    window = rules.open_declaration(state, command.declaration_id)
    current = window.closes_at
    if current is None:
        if command.closes_at is None:
            return []
        raise InvariantViolated(
            "the window has no closing date, so it cannot be extended, and it is never shortened"
        )
    if command.at >= current:
        raise InvariantViolated(
            f"the window closed at {when(current)}; a closed window is not reopened"
        )
    if command.closes_at == current:
        return []
    if command.closes_at is not None and command.closes_at < current:
        raise InvariantViolated(
            f"the window closes at {when(current)}; it may be extended, never shortened "
            f"(asked: {when(command.closes_at)})"
        )
    return [
        SignatureWindowExtended(
            declaration_id=command.declaration_id,
            closes_at=command.closes_at,
            previous_closes_at=current,
        )
    ]


# -- a State as a signatory ------------------------------------------------------------------


def decide_state(record: StateRecord, command: StateCommand) -> Sequence[StateEvent]:
    match command:
        case Sign():
            return _sign(record, command)
        case WithdrawSignature():
            return _withdraw(record, command)
        case RecordFullPowers():
            return _record_full_powers(record, command)
        case RevokeFullPowers():
            rules.known_state(command.state)
            if not record.has_full_powers(command.declaration_id, command.participant_id):
                return []
            _said(command.reason, "reason")
            return [
                FullPowersRevoked(
                    state=command.state,
                    declaration_id=command.declaration_id,
                    participant_id=command.participant_id,
                    reason=command.reason,
                )
            ]
        case _:
            assert_never(command)


def _sign(record: StateRecord, command: Sign) -> list[StateEvent]:
    state = rules.known_state(command.state)
    declaration_id = command.declaration_id
    window = rules.open_declaration(command.declaration, declaration_id)
    rules.may_be_signed_for(command.declaration, state)
    rules.within_window(window, command.at)
    rules.not_signed_yet(record, declaration_id, state)
    rules.the_text_shown(command.declaration, command.language, command.text_sha256)
    signatory, capacity = rules.capacity_to_sign(
        command.signatory, command.participant_id, state, record, declaration_id
    )
    return [
        DeclarationSigned(
            state=state,
            declaration_id=declaration_id,
            participant_id=command.participant_id,
            signatory_name=signatory.name,
            signatory_title=signatory.title,
            capacity=capacity,
            language=command.language,
            text_sha256=command.text_sha256,
            signed_at=command.at,
            demo=command.demo,
        )
    ]


def _withdraw(record: StateRecord, command: WithdrawSignature) -> list[StateEvent]:
    state = rules.known_state(command.state)
    _said(command.reason, "reason")
    current = record.current(command.declaration_id)
    if current is None:
        raise InvariantViolated(
            f"{state} has no standing signature of declaration {command.declaration_id!r} "
            "to withdraw"
        )
    return [
        SignatureWithdrawn(
            state=state,
            declaration_id=command.declaration_id,
            signed_at=current.signed_at,
            withdrawn_at=command.at,
            reason=command.reason,
        )
    ]


def _record_full_powers(record: StateRecord, command: RecordFullPowers) -> list[StateEvent]:
    state = rules.known_state(command.state)
    declaration_id = command.declaration_id
    if not command.declaration.drafted:
        raise NotFound(f"there is no declaration {declaration_id!r}")
    signatory = command.signatory
    participant_id = signatory.participant_id
    if participant_id is None:
        raise InvariantViolated(
            "declarations knows no such participant: registration's record of them has not "
            "reached it; if they registered a moment ago, try again shortly"
        )
    if signatory.delegation != state:
        delegation = signatory.delegation or "no State"
        raise InvariantViolated(
            f"{signatory.name} represents {delegation}; full powers to sign for {state} are "
            "recorded for a member of its own delegation"
        )
    _said(command.instrument, "description of the instrument")
    if record.full_powers.get((declaration_id, participant_id)) == command.instrument:
        return []
    return [
        FullPowersRecorded(
            state=state,
            declaration_id=declaration_id,
            participant_id=participant_id,
            instrument=command.instrument,
        )
    ]


# -- a participant ---------------------------------------------------------------------------


def decide_participant(state: Signatory, command: RecordStanding) -> Sequence[ParticipantEvent]:
    """Record what registration says of a participant, once per change, in the order
    registration recorded it: a standing from an older REGISTRATION sequence than the one
    recorded (a redelivery) changes nothing."""
    if command.registration_sequence <= state.registration_sequence:
        return []
    same = state.participant_id is not None and (
        state.name,
        state.title,
        state.category,
        state.delegation,
        state.status,
    ) == (command.name, command.title, command.category, command.delegation, command.status)
    if same:
        return []
    return [
        ParticipantStandingRecorded(
            participant_id=command.participant_id,
            name=command.name,
            title=command.title,
            category=command.category,
            delegation=command.delegation,
            status=command.status,
            registration_sequence=command.registration_sequence,
        )
    ]
