"""Declarations' rules, decided without I/O: given events, when a command, then events or a
refusal a person can act on."""

from __future__ import annotations

import unicodedata
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from agora_declarations.domain import (
    Declaration,
    Draft,
    ExtendWindow,
    OpenForSignature,
    RecordFullPowers,
    RecordStanding,
    RevokeFullPowers,
    SetText,
    Sign,
    Signatory,
    WithdrawSignature,
    declaration_decider,
    participant_decider,
    state_decider,
    text_hash,
)
from agora_declarations.domain.registration_terms import standing_from
from agora_events.contracts.declarations import (
    DeclarationOpenedForSignature,
    DeclarationSigned,
    FixedText,
    FullPowersRecorded,
    FullPowersRevoked,
    ParticipantStandingRecorded,
    SignatureWindowExtended,
    SignatureWithdrawn,
)
from agora_events.contracts.registration import (
    AccreditationApproved,
    ContactDetailsAmended,
    ParticipantReclassified,
    ParticipantRegistered,
    ParticipantWithdrew,
)
from agora_events.decider import InvalidCommand, InvariantViolated, NotFound
from agora_events.testing import given, given_commands, history_of

SAMARKAND = timezone(timedelta(hours=5))
OPENS = datetime(2025, 6, 23, 9, 0, tzinfo=SAMARKAND)
CLOSES = datetime(2025, 12, 31, 18, 0, tzinfo=SAMARKAND)
TEXT = "We, the Ministers,\nresolve to advance digital transformation.\n"
HASH = text_hash(TEXT)
ID = "samarkand-2025"


def drafted() -> list[Draft | SetText]:
    return [
        Draft(ID, "Samarkand Ministerial Declaration", "unpsf-2025", "UZB"),
        SetText(ID, "en", TEXT),
    ]


def open_declaration(
    closes_at: datetime | None = CLOSES, open_to: str = "member_states"
) -> Declaration:
    commands = [*drafted(), OpenForSignature(ID, OPENS, closes_at, open_to, OPENS)]  # type: ignore[arg-type]
    return declaration_decider.fold(history_of(declaration_decider, *commands))


def signatory(
    participant_id: str = "minister1",
    *,
    category: str = "minister",
    delegation: str | None = "FRA",
    status: str = "approved",
    name: str = "Jeanne Ministre",
) -> Signatory:
    return Signatory(participant_id, name, None, category, delegation, status, 7)  # type: ignore[arg-type]


def sign(
    state: str = "FRA",
    who: Signatory | None = None,
    *,
    at: datetime = OPENS + timedelta(hours=1),
    sha256: str = HASH,
    declaration: Declaration | None = None,
    language: str = "en",
) -> Sign:
    who = who if who is not None else signatory(delegation=state)
    return Sign(
        state=state,
        declaration_id=ID,
        declaration=declaration if declaration is not None else open_declaration(),
        signatory=who,
        participant_id=who.participant_id or "nobody",
        language=language,
        text_sha256=sha256,
        at=at,
    )


def signed_by(state: str, who: Signatory, at: datetime) -> DeclarationSigned:
    return DeclarationSigned(
        state=state,
        declaration_id=ID,
        participant_id=who.participant_id or "",
        signatory_name=who.name,
        capacity="minister",
        language="en",
        text_sha256=HASH,
        signed_at=at,
    )


# -- the text, fixed by its hash --------------------------------------------------------------


def test_opening_fixes_each_text_by_the_hash_of_its_canonical_form() -> None:
    given_commands(declaration_decider, *drafted()).when(
        OpenForSignature(ID, OPENS, CLOSES, "member_states", OPENS)
    ).then(
        DeclarationOpenedForSignature(
            declaration_id=ID,
            texts=(FixedText(language="en", sha256=HASH),),
            opens_at=OPENS,
            closes_at=CLOSES,
        )
    )


def test_the_same_words_with_other_line_ends_or_composition_hash_the_same() -> None:
    decomposed = unicodedata.normalize("NFD", "Türkiye signs.\n")
    assert text_hash("Türkiye signs.\r\n") == text_hash(decomposed) == text_hash("Türkiye signs.\r")
    assert text_hash("Türkiye signs.\n") != text_hash("Türkiye signs. \n")


def test_refuses_to_change_a_text_once_the_declaration_is_open() -> None:
    commands = [*drafted(), OpenForSignature(ID, OPENS, None, "member_states", OPENS)]
    given_commands(declaration_decider, *commands).when(
        SetText(ID, "en", "Another text.")
    ).then_rejects(InvariantViolated, "fixed by their hashes")


def test_refuses_to_open_a_declaration_without_a_text() -> None:
    given_commands(declaration_decider, drafted()[0]).when(
        OpenForSignature(ID, OPENS, None, "member_states", OPENS)
    ).then_rejects(InvariantViolated, "no text yet")


def test_refuses_to_open_a_window_that_closes_before_it_opens() -> None:
    given_commands(declaration_decider, *drafted()).when(
        OpenForSignature(ID, OPENS, OPENS - timedelta(days=1), "member_states", OPENS)
    ).then_rejects(InvalidCommand, "before it opens")


def test_refuses_a_signature_naming_a_stale_text_hash_and_names_the_current_one() -> None:
    refusal = given(state_decider).when(sign(sha256="0" * 64)).then_rejects(InvariantViolated)
    assert HASH in refusal.reason
    assert "show the signatory that text" in refusal.reason


def test_refuses_a_language_the_declaration_has_no_text_in() -> None:
    given(state_decider).when(sign(language="fr")).then_rejects(
        InvalidCommand, "can be signed in en"
    )


# -- the window ---------------------------------------------------------------------------------


def test_refuses_signing_before_the_window_opens_naming_its_dates() -> None:
    refusal = (
        given(state_decider)
        .when(sign(at=OPENS - timedelta(minutes=1)))
        .then_rejects(InvariantViolated, "cannot be signed yet")
    )
    assert "2025-06-23T09:00+05:00" in refusal.reason
    assert "2025-12-31T18:00+05:00" in refusal.reason


def test_refuses_signing_once_the_window_has_closed() -> None:
    given(state_decider).when(sign(at=CLOSES)).then_rejects(
        InvariantViolated, "no longer be signed"
    )


def test_extends_the_window_before_it_closes() -> None:
    later = CLOSES + timedelta(days=30)
    commands = [*drafted(), OpenForSignature(ID, OPENS, CLOSES, "member_states", OPENS)]
    given_commands(declaration_decider, *commands).when(
        ExtendWindow(ID, later, CLOSES - timedelta(days=1))
    ).then(SignatureWindowExtended(declaration_id=ID, closes_at=later, previous_closes_at=CLOSES))


def test_never_shortens_the_window() -> None:
    commands = [*drafted(), OpenForSignature(ID, OPENS, CLOSES, "member_states", OPENS)]
    given_commands(declaration_decider, *commands).when(
        ExtendWindow(ID, CLOSES - timedelta(days=1), OPENS)
    ).then_rejects(InvariantViolated, "never shortened")


def test_does_not_reopen_a_closed_window() -> None:
    commands = [*drafted(), OpenForSignature(ID, OPENS, CLOSES, "member_states", OPENS)]
    given_commands(declaration_decider, *commands).when(
        ExtendWindow(ID, CLOSES + timedelta(days=1), CLOSES + timedelta(minutes=1))
    ).then_rejects(InvariantViolated, "not reopened")


# -- the State -----------------------------------------------------------------------------------


def test_refuses_an_observer_state_when_only_member_states_may_sign() -> None:
    observer = signatory(delegation="VAT")
    given(state_decider).when(sign("VAT", observer)).then_rejects(
        InvariantViolated, "observer State"
    )


def test_an_observer_state_signs_a_declaration_opened_to_observers_too() -> None:
    wider = open_declaration(open_to="member_and_observer_states")
    events = (
        given(state_decider)
        .when(sign("VAT", signatory(delegation="VAT"), declaration=wider))
        .then_yields()
    )
    assert [type(e) for e in events] == [DeclarationSigned]


def test_refuses_a_code_that_names_no_state() -> None:
    given(state_decider).when(sign("XXX", signatory(delegation="XXX"))).then_rejects(
        InvalidCommand, "alpha-3"
    )


def test_refuses_second_signature_by_the_same_state_naming_who_signed_and_when() -> None:
    first = signatory("minister1", name="Jeanne Ministre")
    refusal = (
        given(state_decider, signed_by("FRA", first, OPENS))
        .when(sign("FRA", signatory("minister2", name="Paul Ministre")))
        .then_rejects(InvariantViolated, "already signed")
    )
    assert "Jeanne Ministre" in refusal.reason
    assert "2025-06-23T09:00+05:00" in refusal.reason


def test_a_state_that_withdrew_its_signature_may_sign_again() -> None:
    first = signatory("minister1")
    withdrawn = SignatureWithdrawn(
        state="FRA",
        declaration_id=ID,
        signed_at=OPENS,
        withdrawn_at=OPENS + timedelta(hours=1),
        reason="signed in error",
    )
    events = (
        given(state_decider, signed_by("FRA", first, OPENS), withdrawn)
        .when(sign("FRA", first, at=OPENS + timedelta(hours=2)))
        .then_yields()
    )
    assert [type(e) for e in events] == [DeclarationSigned]


def test_withdraws_the_signature_that_stands_naming_when_it_was_made() -> None:
    at = OPENS + timedelta(days=3)
    given(state_decider, signed_by("FRA", signatory(), OPENS)).when(
        WithdrawSignature("FRA", ID, "the government withdrew it", at)
    ).then(
        SignatureWithdrawn(
            state="FRA",
            declaration_id=ID,
            signed_at=OPENS,
            withdrawn_at=at,
            reason="the government withdrew it",
        )
    )


def test_refuses_to_withdraw_a_signature_that_does_not_stand() -> None:
    given(state_decider).when(WithdrawSignature("FRA", ID, "no reason", OPENS)).then_rejects(
        InvariantViolated, "no standing signature"
    )


# -- the signatory -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "category", ["head_of_state_or_government", "minister", "head_of_delegation"]
)
def test_heads_of_state_ministers_and_heads_of_delegation_sign_without_full_powers(
    category: str,
) -> None:
    [event] = given(state_decider).when(sign("FRA", signatory(category=category))).then_yields()
    assert isinstance(event, DeclarationSigned)
    assert event.capacity == category


@pytest.mark.parametrize(
    ("status", "said"),
    [("rejected", "is rejected"), ("withdrawn", "is withdrawn"), ("submitted", "is submitted")],
)
def test_refuses_a_participant_whose_accreditation_is_not_approved(status: str, said: str) -> None:
    given(state_decider).when(sign("FRA", signatory(status=status))).then_rejects(
        InvariantViolated, said
    )


def test_refuses_a_participant_of_another_delegation() -> None:
    given(state_decider).when(sign("FRA", signatory(delegation="DEU"))).then_rejects(
        InvariantViolated, "represents DEU"
    )


def test_refuses_a_participant_declarations_has_not_learnt_of() -> None:
    command = replace(sign("FRA"), signatory=Signatory(), participant_id="unknown1")
    given(state_decider).when(command).then_rejects(InvariantViolated, "try again shortly")


def test_refuses_a_delegate_without_recorded_full_powers_saying_how_to_record_them() -> None:
    delegate = signatory("delegate1", category="delegate")
    given(state_decider).when(sign("FRA", delegate)).then_rejects(InvariantViolated, "/full-powers")


def test_a_delegate_with_recorded_full_powers_signs_in_that_capacity() -> None:
    delegate = signatory("delegate1", category="delegate")
    powers = FullPowersRecorded(
        state="FRA", declaration_id=ID, participant_id="delegate1", instrument="Letter of 20 June"
    )
    [event] = given(state_decider, powers).when(sign("FRA", delegate)).then_yields()
    assert isinstance(event, DeclarationSigned)
    assert event.capacity == "full_powers"


def test_revoked_full_powers_no_longer_let_a_delegate_sign() -> None:
    delegate = signatory("delegate1", category="delegate")
    powers = FullPowersRecorded(
        state="FRA", declaration_id=ID, participant_id="delegate1", instrument="Letter of 20 June"
    )
    revoked = FullPowersRevoked(
        state="FRA", declaration_id=ID, participant_id="delegate1", reason="recalled"
    )
    given(state_decider, powers, revoked).when(sign("FRA", delegate)).then_rejects(
        InvariantViolated, "no full powers recorded"
    )


def test_refuses_full_powers_for_a_member_of_another_delegation() -> None:
    command = RecordFullPowers("FRA", ID, open_declaration(), signatory(delegation="DEU"), "Letter")
    given(state_decider).when(command).then_rejects(InvariantViolated, "its own delegation")


def test_revoking_full_powers_never_recorded_changes_nothing() -> None:
    assert (
        given(state_decider).when(RevokeFullPowers("FRA", ID, "delegate1", "why")).then_yields()
        == []
    )


def test_refuses_to_sign_a_declaration_that_was_never_drafted() -> None:
    given(state_decider).when(sign(declaration=Declaration())).then_rejects(NotFound)


# -- what registration says of a participant -----------------------------------------------------


def _standing(sequence: int, status: str = "approved") -> RecordStanding:
    return RecordStanding("p1", "A. Minister", None, "minister", "FRA", status, sequence)  # type: ignore[arg-type]


def test_records_a_standing_once_per_change() -> None:
    recorded = ParticipantStandingRecorded(
        participant_id="p1",
        name="A. Minister",
        category="minister",
        delegation="FRA",
        status="approved",
        registration_sequence=5,
    )
    assert given(participant_decider, recorded).when(_standing(9)).then_yields() == []
    [event] = given(participant_decider, recorded).when(_standing(9, "withdrawn")).then_yields()
    assert isinstance(event, ParticipantStandingRecorded)
    assert event.status == "withdrawn"


def test_a_standing_older_than_the_one_recorded_changes_nothing() -> None:
    recorded = ParticipantStandingRecorded(
        participant_id="p1",
        name="A. Minister",
        category="minister",
        delegation="FRA",
        status="withdrawn",
        registration_sequence=9,
    )
    assert given(participant_decider, recorded).when(_standing(5, "approved")).then_yields() == []


def test_a_participants_standing_folds_from_their_registration_history() -> None:
    history = [
        ParticipantRegistered(
            participant_id="p1",
            name="A. Delegate",
            email="a@example.org",
            category="delegate",
            delegation="DEU",
        ),
        AccreditationApproved(participant_id="p1"),
        ParticipantReclassified(
            participant_id="p1", category="minister", delegation="FRA", previous_status="approved"
        ),
        ContactDetailsAmended(participant_id="p1", name="A. Ministre", title="Minister"),
        AccreditationApproved(participant_id="p1"),
    ]
    standing = standing_from(history, 42)
    assert standing == RecordStanding(
        "p1", "A. Ministre", "Minister", "minister", "FRA", "approved", 42
    )
    after = standing_from([*history, ParticipantWithdrew(participant_id="p1")], 43)
    assert after is not None and after.status == "withdrawn"
    assert standing_from([AccreditationApproved(participant_id="p1")], 3) is None


def test_refuses_a_language_tag_longer_than_the_read_model_keeps() -> None:
    tag = "en" + "-abcdefgh" * 5  # well formed, 47 characters
    given_commands(declaration_decider, drafted()[0]).when(SetText(ID, tag, TEXT)).then_rejects(
        InvalidCommand, "language tag"
    )
