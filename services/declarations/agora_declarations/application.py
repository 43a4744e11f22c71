"""Use cases: load → decide → append → answer, one consistency scope at a time.

A signature is decided in the State's scope. The declaration and the signatory are read from
their own scopes first and handed to the decision (see ``domain.Sign``): the declaration's
terms only widen once it is open, and the signatory's standing is what registration's
events had told this service when the signature was decided. A participant withdrawn in
registration a moment earlier can still sign until the reactor records that withdrawal
here (docs/declarations.md says how long that takes, and what such a signature means).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from agora_events.catalogue import validate_aggregate_id
from agora_events.commands import CommandHandler
from agora_events.contracts.declarations import DeclarationSigned, OpenTo, Priority
from agora_events.decider import InvalidCommand
from agora_events.store import EventStore
from agora_events.usecases import SYSTEM, Caller, Outcome, UseCases, outcome_of

from .domain import (
    Declaration,
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
    Signatory,
    StateCommand,
    StateRecord,
    WithdrawSignature,
    declaration_decider,
    declaration_scope,
    known_state,
    participant_decider,
    participant_scope,
    state_decider,
    state_scope,
)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class SignatureOutcome(Outcome):
    signed_at: datetime | None = None


class Declarations(UseCases):
    def __init__(self, store: EventStore, *, clock: Clock = utc_now, max_attempts: int = 8):
        # Signatures are single-event appends, not atomic batches: no server limit of 50
        # batches in flight per stream to stay under.
        super().__init__(in_flight=64)
        self.clock = clock
        self._open: dict[str, Declaration] = {}
        self.declarations: CommandHandler[Declaration, DeclarationCommand] = CommandHandler(
            store,
            declaration_decider,
            lambda command: declaration_scope(command.declaration_id),
            max_attempts=max_attempts,
        )
        self.states: CommandHandler[StateRecord, StateCommand] = CommandHandler(
            store,
            state_decider,
            lambda command: state_scope(command.state),
            max_attempts=max_attempts,
        )
        self.participants: CommandHandler[Signatory, RecordStanding] = CommandHandler(
            store,
            participant_decider,
            lambda command: participant_scope(command.participant_id),
            max_attempts=max_attempts,
        )

    # -- reads of the log, for decisions -------------------------------------------------------

    async def declaration(self, declaration_id: str) -> Declaration:
        validate_aggregate_id(declaration_id)
        return (await self.declarations.load(declaration_scope(declaration_id))).state

    async def open_declaration(self, declaration_id: str) -> Declaration:
        """The declaration as a signature is decided on: once it was seen open, and its
        window has not closed by now, the copy seen is used without asking the log. An open
        declaration's terms only widen (texts fixed, window only extended), so the copy can
        be stricter than the log, never looser; when it says closed, the log is asked."""
        seen = self._open.get(declaration_id)
        if (
            seen is not None
            and seen.window is not None
            and not seen.window.has_closed(self.clock())
        ):
            return seen
        current = await self.declaration(declaration_id)
        if current.is_open:
            self._open[declaration_id] = current
        return current

    async def state(self, state: str) -> StateRecord:
        return (await self.states.load(state_scope(known_state(state)))).state

    async def signatory(self, participant_id: str) -> Signatory:
        _participant_id(participant_id)
        return (await self.participants.load(participant_scope(participant_id))).state

    # -- the declaration ------------------------------------------------------------------------

    async def _on_declaration(self, command: DeclarationCommand, caller: Caller) -> Outcome:
        self.accept(caller)
        validate_aggregate_id(command.declaration_id)
        scope = declaration_scope(command.declaration_id)
        result = await self.run(self.declarations, scope, command, caller)
        return outcome_of({"declaration_id": command.declaration_id}, [result])

    async def draft(
        self,
        declaration_id: str,
        *,
        title: str,
        edition_id: str,
        launched_by: str,
        launched_on: date | None = None,
        priorities: tuple[Priority, ...] = (),
        source: str | None = None,
        caller: Caller = SYSTEM,
    ) -> Outcome:
        command = Draft(
            declaration_id, title, edition_id, launched_by, launched_on, priorities, source
        )
        return await self._on_declaration(command, caller)

    async def redraft(
        self,
        declaration_id: str,
        *,
        title: str | None = None,
        priorities: tuple[Priority, ...] | None = None,
        caller: Caller = SYSTEM,
    ) -> Outcome:
        return await self._on_declaration(Redraft(declaration_id, title, priorities), caller)

    async def set_text(
        self, declaration_id: str, language: str, text: str, *, caller: Caller = SYSTEM
    ) -> Outcome:
        return await self._on_declaration(SetText(declaration_id, language, text), caller)

    async def open_for_signature(
        self,
        declaration_id: str,
        *,
        opens_at: datetime | None = None,
        closes_at: datetime | None = None,
        open_to: OpenTo = "member_states",
        caller: Caller = SYSTEM,
    ) -> Outcome:
        now = self.clock()
        command = OpenForSignature(declaration_id, opens_at or now, closes_at, open_to, now)
        return await self._on_declaration(command, caller)

    async def extend_window(
        self, declaration_id: str, closes_at: datetime | None, *, caller: Caller = SYSTEM
    ) -> Outcome:
        command = ExtendWindow(declaration_id, closes_at, self.clock())
        return await self._on_declaration(command, caller)

    # -- a State's acts ---------------------------------------------------------------------------

    async def _on_state(
        self, command: StateCommand, ids: dict[str, str], caller: Caller
    ) -> Outcome:
        result = await self.run(self.states, state_scope(command.state), command, caller)
        return outcome_of(ids, [result])

    async def sign(
        self,
        declaration_id: str,
        state: str,
        *,
        participant_id: str,
        language: str,
        text_sha256: str,
        demo: bool = False,
        caller: Caller = SYSTEM,
    ) -> SignatureOutcome:
        self.accept(caller)
        known_state(state)
        declaration = await self.open_declaration(declaration_id)
        signatory = await self.signatory(participant_id)
        command = Sign(
            state=state,
            declaration_id=declaration_id,
            declaration=declaration,
            signatory=signatory,
            participant_id=participant_id,
            language=language,
            text_sha256=text_sha256,
            at=self.clock(),
            demo=demo,
        )
        result = await self.run(self.states, state_scope(state), command, caller)
        outcome = outcome_of({"declaration_id": declaration_id, "state": state}, [result])
        signed = [e.signed_at for e in result.events if isinstance(e, DeclarationSigned)]
        return SignatureOutcome(
            ids=outcome.ids,
            sequence=outcome.sequence,
            events=outcome.events,
            duplicate=outcome.duplicate,
            signed_at=signed[0] if signed else None,
        )

    async def withdraw_signature(
        self, declaration_id: str, state: str, reason: str, *, caller: Caller = SYSTEM
    ) -> Outcome:
        self.accept(caller)
        validate_aggregate_id(declaration_id)
        command = WithdrawSignature(known_state(state), declaration_id, reason, self.clock())
        return await self._on_state(
            command, {"declaration_id": declaration_id, "state": state}, caller
        )

    async def record_full_powers(
        self,
        declaration_id: str,
        state: str,
        participant_id: str,
        instrument: str,
        *,
        caller: Caller = SYSTEM,
    ) -> Outcome:
        self.accept(caller)
        known_state(state)
        declaration = await self.declaration(declaration_id)
        signatory = await self.signatory(participant_id)
        command = RecordFullPowers(state, declaration_id, declaration, signatory, instrument)
        ids = {"declaration_id": declaration_id, "state": state, "participant_id": participant_id}
        return await self._on_state(command, ids, caller)

    async def revoke_full_powers(
        self,
        declaration_id: str,
        state: str,
        participant_id: str,
        reason: str,
        *,
        caller: Caller = SYSTEM,
    ) -> Outcome:
        self.accept(caller)
        validate_aggregate_id(declaration_id)
        _participant_id(participant_id)
        command = RevokeFullPowers(known_state(state), declaration_id, participant_id, reason)
        ids = {"declaration_id": declaration_id, "state": state, "participant_id": participant_id}
        return await self._on_state(command, ids, caller)

    # -- what registration says of a participant ------------------------------------------------

    async def record_standing(self, command: RecordStanding, caller: Caller) -> Outcome:
        self.accept(caller)
        scope = participant_scope(_participant_id(command.participant_id))
        result = await self.run(self.participants, scope, command, caller)
        return outcome_of({"participant_id": command.participant_id}, [result])


def _participant_id(participant_id: str) -> str:
    try:
        return validate_aggregate_id(participant_id)
    except ValueError:
        raise InvalidCommand(f"{participant_id!r} is not a participant id") from None
