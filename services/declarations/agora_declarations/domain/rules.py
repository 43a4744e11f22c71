"""Who may sign a declaration for a State, and when: the rules a depositary applies.

* **The State.** A UN Member State, or an observer State when the declaration is opened to
  them too; one standing signature per State and declaration.
* **The window.** From its opening time, until its closing time when it has one.
* **The text.** The signatory names the hash of the text they were shown; only the text
  fixed at opening can be signed.
* **The signatory.** An approved participant of the State's own delegation who may act for
  it without producing full powers: a head of State or Government or a minister (the rule
  of the Vienna Convention on the Law of Treaties, art. 7(2)(a), applied by analogy), or the
  head of the delegation; any other delegate only once the organiser recorded their full
  powers for this declaration.

Each check raises the refusal a person can act on, naming what they would have to change.
"""

from __future__ import annotations

from datetime import datetime

from agora_events.contracts.declarations import Capacity
from agora_events.contracts.states import all_states
from agora_events.decider import InvalidCommand, InvariantViolated, NotFound

from .state import Declaration, Signatory, Signature, StateRecord, Window, when

EX_OFFICIO: dict[str, Capacity] = {
    "head_of_state_or_government": "head_of_state_or_government",
    "minister": "minister",
    "head_of_delegation": "head_of_delegation",
}


def known_state(code: str) -> str:
    if code not in all_states():
        raise InvalidCommand(
            f"{code!r} is not the ISO 3166-1 alpha-3 code of a UN Member State or observer "
            "State; use three capital letters such as UZB for Uzbekistan"
        )
    return code


def open_declaration(declaration: Declaration, declaration_id: str) -> Window:
    if not declaration.drafted:
        raise NotFound(f"there is no declaration {declaration_id!r}")
    if declaration.window is None:
        raise InvariantViolated(
            f"declaration {declaration_id!r} is still a draft: an organiser opens it for "
            "signature first"
        )
    return declaration.window


def within_window(window: Window, at: datetime) -> None:
    if not window.has_opened(at):
        raise InvariantViolated(f"the declaration cannot be signed yet: it is {window.describe()}")
    if window.has_closed(at):
        raise InvariantViolated(
            f"the declaration can no longer be signed: it was {window.describe()}"
        )


def may_be_signed_for(declaration: Declaration, state: str) -> None:
    found = all_states()[state]
    if found.status == "observer" and declaration.open_to == "member_states":
        raise InvariantViolated(
            f"{found.name} ({state}) is an observer State, and this declaration is open to "
            "UN Member States only"
        )


def not_signed_yet(record: StateRecord, declaration_id: str, state: str) -> None:
    current = record.current(declaration_id)
    if current is not None:
        raise InvariantViolated(already_signed(current, state))


def already_signed(signature: Signature, state: str) -> str:
    capacity = signature.capacity.replace("_", " ")
    return (
        f"{all_states()[state].name} ({state}) already signed on {when(signature.signed_at)}, "
        f"by {signature.signatory_name} ({capacity}); that signature must be withdrawn "
        "before the State can sign again"
    )


def the_text_shown(declaration: Declaration, language: str, text_sha256: str) -> None:
    current = declaration.texts.get(language)
    if current is None:
        languages = ", ".join(sorted(declaration.texts))
        raise InvalidCommand(
            f"the declaration has no text in {language!r}; it can be signed in {languages}"
        )
    if text_sha256 != current:
        raise InvariantViolated(
            f"the text hash {text_sha256!r} is not the declaration's text in {language}, "
            f"fixed as {current}; show the signatory that text and sign with its hash"
        )


def capacity_to_sign(
    signatory: Signatory | None,
    participant_id: str,
    state: str,
    record: StateRecord,
    declaration_id: str,
) -> tuple[Signatory, Capacity]:
    """The signatory, and the capacity in which they may sign for ``state``."""
    if signatory is None or signatory.participant_id is None:
        raise InvariantViolated(
            f"declarations knows no participant {participant_id!r}: registration's record of "
            "them has not reached it; if they registered a moment ago, try again shortly"
        )
    if signatory.status != "approved":
        raise InvariantViolated(
            f"{signatory.name} cannot sign: their accreditation is {signatory.status}, and "
            "only an approved participant may sign"
        )
    if signatory.delegation != state:
        delegation = signatory.delegation or "no State (an international organisation)"
        raise InvariantViolated(
            f"{signatory.name} represents {delegation}, so cannot sign for {state}"
        )
    capacity = EX_OFFICIO.get(signatory.category)
    if capacity is not None:
        return signatory, capacity
    if record.has_full_powers(declaration_id, participant_id):
        return signatory, "full_powers"
    category = signatory.category.replace("_", " ")
    raise InvariantViolated(
        f"{signatory.name} is a {category} of {state} with no full powers recorded for "
        "this declaration; an organiser who has seen their full powers records them "
        f"(POST /declarations/{declaration_id}/states/{state}/full-powers)"
    )
