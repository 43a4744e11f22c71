"""Use cases: load → decide → append → answer, one consistency scope at a time.

Within this process, commands on one scope queue behind a lock, so a crowd enrolling in one
workshop costs one append each instead of a storm of optimistic retries; across processes
the store's expected-sequence guard still decides who wins. At most ``IN_FLIGHT`` commands
append at once: the server holds at most 50 atomic batches in flight per stream by default,
and refuses the next one.

Enrolment spans two scopes. It claims the session's time on the participant first (the
overlap rule), then takes a place on the session (capacity, waitlist). A refusal at the
second step gives the claim back. Leaving runs the other way round: the place first, then
the claim. Withdrawal and rejection record the claims given up in their own event; the places
are released here at once, and again by the reactor from the event, so a crash between the two
steps loses nothing (both use the same idempotency key per claim).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from agora_events.catalogue import validate_aggregate_id
from agora_events.commands import CommandHandler, CommandResult
from agora_events.contracts.registration import (
    AccreditationRejected,
    ClaimRef,
    ParticipantWithdrew,
    ReleaseReason,
    Unenrolled,
    Waitlisted,
)
from agora_events.decider import InvariantViolated, Rejected
from agora_events.store import EventStore
from agora_events.usecases import SYSTEM, Caller, Outcome, UseCases, outcome_of

from .domain import (
    Amend,
    Approve,
    CheckIn,
    CheckOut,
    ClaimPlace,
    Enrol,
    EnrolmentCommand,
    Participant,
    ParticipantCommand,
    Register,
    Reject,
    ReleasePlace,
    RescheduleClaim,
    SessionEnrolment,
    SyncSession,
    Unenrol,
    Withdraw,
    check_participant_id,
    enrolment_decider,
    enrolment_scope,
    ensure_open,
    held_claim,
    participant_decider,
    participant_id_from_bits,
    participant_scope,
)

log = logging.getLogger("agora.registration")
IN_FLIGHT = 32


@dataclass(frozen=True, slots=True)
class EnrolmentOutcome(Outcome):
    status: Literal["enrolled", "waitlisted"] = "enrolled"
    position: int | None = None


def release_key(participant_id: str, claim: int) -> str:
    return f"release:{participant_id}:{claim}"


class Registration(UseCases):
    def __init__(self, store: EventStore, *, max_attempts: int = 8) -> None:
        super().__init__(in_flight=IN_FLIGHT)
        self.participants: CommandHandler[Participant, ParticipantCommand] = CommandHandler(
            store, participant_decider, participant_scope, max_attempts=max_attempts
        )
        self.sessions: CommandHandler[SessionEnrolment, EnrolmentCommand] = CommandHandler(
            store, enrolment_decider, enrolment_scope, max_attempts=max_attempts
        )

    async def _participant(
        self, command: ParticipantCommand, caller: Caller
    ) -> CommandResult[Participant]:
        return await self.run(self.participants, participant_scope(command), command, caller)

    async def _session(
        self, command: EnrolmentCommand, caller: Caller
    ) -> CommandResult[SessionEnrolment]:
        validate_aggregate_id(command.session_id)
        return await self.run(self.sessions, enrolment_scope(command), command, caller)

    async def participant(self, participant_id: str) -> Participant:
        check_participant_id(participant_id)
        scope = f"registration.participant.{participant_id}.*"
        return (await self.participants.load(scope)).state

    async def session(self, session_id: str) -> SessionEnrolment:
        validate_aggregate_id(session_id)
        return (await self.sessions.load(f"registration.enrolment.{session_id}.*")).state

    # -- participants ----------------------------------------------------------------------

    async def register(
        self,
        *,
        name: str,
        email: str,
        category: str,
        delegation: str | None,
        organisation: str = "",
        title: str | None = None,
        language: str | None = None,
        caller: Caller = SYSTEM,
    ) -> Outcome:
        """A new participant. With a key, the id is derived from it, so a retry finds the
        participant it created; without one, a random id (retried on the rare collision)."""
        self.accept(caller)
        for attempt in range(3):
            seed = f"register:{caller.key}" if caller.key is not None else None
            participant_id = _new_participant_id(seed, attempt)
            command = Register(
                participant_id, name, email, category, delegation, organisation, title, language
            )
            try:
                result = await self._participant(command, caller)
            except InvariantViolated:
                if attempt == 2:
                    raise
                log.info("participant id taken; drawing another", extra={"attempt": attempt})
                continue
            return outcome_of({"participant_id": participant_id}, [result])
        raise AssertionError("unreachable")

    async def amend(self, command: Amend, caller: Caller = SYSTEM) -> Outcome:
        self.accept(caller)
        result = await self._participant(command, caller)
        return outcome_of({"participant_id": command.participant_id}, [result])

    async def approve(self, participant_id: str, caller: Caller = SYSTEM) -> Outcome:
        self.accept(caller)
        result = await self._participant(Approve(participant_id), caller)
        return outcome_of({"participant_id": participant_id}, [result])

    async def reject(self, participant_id: str, reason: str, caller: Caller = SYSTEM) -> Outcome:
        self.accept(caller)
        result = await self._participant(Reject(participant_id, reason), caller)
        released = [e.released for e in result.events if isinstance(e, AccreditationRejected)]
        follow_up = await self.release_places(
            participant_id, released[0] if released else (), "rejected", caller
        )
        return outcome_of({"participant_id": participant_id}, [result, *follow_up])

    async def withdraw(
        self, participant_id: str, reason: str | None = None, caller: Caller = SYSTEM
    ) -> Outcome:
        self.accept(caller)
        result = await self._participant(Withdraw(participant_id, reason), caller)
        released = [e.released for e in result.events if isinstance(e, ParticipantWithdrew)]
        follow_up = await self.release_places(
            participant_id, released[0] if released else (), "withdrew", caller
        )
        return outcome_of({"participant_id": participant_id}, [result, *follow_up])

    async def release_places(
        self,
        participant_id: str,
        released: Sequence[ClaimRef],
        reason: ReleaseReason,
        caller: Caller = SYSTEM,
    ) -> list[CommandResult[SessionEnrolment]]:
        """Take a participant who gave up their claims off those sessions' lists."""
        results = []
        for ref in released:
            command = Unenrol(ref.session_id, participant_id, ref.claim, reason)
            step = caller.with_key(release_key(participant_id, ref.claim))
            results.append(await self._session(command, step))
        return results

    async def check_in(
        self, participant_id: str, gate: str, at: datetime, caller: Caller = SYSTEM
    ) -> Outcome:
        self.accept(caller)
        result = await self._participant(CheckIn(participant_id, gate, at), caller)
        return outcome_of({"participant_id": participant_id}, [result])

    async def check_out(
        self, participant_id: str, gate: str, at: datetime, caller: Caller = SYSTEM
    ) -> Outcome:
        self.accept(caller)
        result = await self._participant(CheckOut(participant_id, gate, at), caller)
        return outcome_of({"participant_id": participant_id}, [result])

    # -- workshops -------------------------------------------------------------------------

    async def enrol(
        self, participant_id: str, session_id: str, caller: Caller = SYSTEM
    ) -> EnrolmentOutcome:
        check_participant_id(participant_id)
        self.accept(caller)
        scope = f"registration.enrolment.{validate_aggregate_id(session_id)}.*"
        replayed = await self.sessions.recorded(scope, caller.key, caller.digest)
        session = await self.session(session_id)
        # Only a new enrolment needs the session open; a retry answers what it did.
        terms = session.terms
        if replayed is None or terms is None:
            terms = ensure_open(session, session_id)
        claimed = await self._participant(
            ClaimPlace(participant_id, session_id, terms.window), caller
        )
        claim = claimed.state.claim_for(session_id)
        if claim is None:
            raise InvariantViolated(
                "this Idempotency-Key enrolled the participant in a place that was given up "
                "since; send a new key to enrol again"
            )
        try:
            placed = await self._session(Enrol(session_id, participant_id, claim.number), caller)
        except Rejected:
            listed = (await self.session(session_id)).place_of(participant_id)
            if listed is None or listed[0].claim != claim.number:
                await self._participant(
                    ReleasePlace(participant_id, session_id, claim.number),
                    caller.with_key(release_key(participant_id, claim.number)),
                )
            raise
        outcome = outcome_of(
            {"participant_id": participant_id, "session_id": session_id}, [claimed, placed]
        )
        # The answer comes from what the enrolment recorded, so a retry answers the same
        # even after the waitlist has moved on.
        # even after the waitlist has moved on; an enrolment that changed nothing (already
        # on a list) answers where the participant is now.
        waitlisted = [e for e in placed.events if isinstance(e, Waitlisted)]
        position = waitlisted[0].position if waitlisted else None
        if not placed.events:
            held = placed.state.place_of(participant_id)
            if held is not None and held[1]:
                position = placed.state.waitlist.index(held[0]) + 1
        return EnrolmentOutcome(
            ids=outcome.ids,
            sequence=outcome.sequence,
            events=outcome.events,
            duplicate=outcome.duplicate,
            status="waitlisted" if position is not None else "enrolled",
            position=position,
        )

    async def leave(self, participant_id: str, session_id: str, caller: Caller = SYSTEM) -> Outcome:
        check_participant_id(participant_id)
        self.accept(caller)
        scope = f"registration.enrolment.{validate_aggregate_id(session_id)}.*"
        replayed = await self.sessions.recorded(scope, caller.key, caller.digest)
        if replayed is not None:
            # A retry: the claim it gave up is named in what it recorded.
            claim = next(e.claim for e in replayed.events if isinstance(e, Unenrolled))
        else:
            claim = held_claim(
                await self.participant(participant_id), participant_id, session_id
            ).number
        left = await self._session(Unenrol(session_id, participant_id, claim), caller)
        released = await self._participant(
            ReleasePlace(participant_id, session_id, claim),
            caller.with_key(release_key(participant_id, claim)),
        )
        ids = {"participant_id": participant_id, "session_id": session_id}
        return outcome_of(ids, [left, released])

    async def sync_session(self, command: SyncSession, caller: Caller) -> Outcome:
        """Record what the agenda says of a session, then bring the claims of the people on
        its lists in line: moved with the session, or given up when it is cancelled.

        Safe to repeat: the session records only changes, and the follow-ups are decided on
        the state, so a redelivered agenda event changes nothing twice."""
        result = await self._session(command, caller)
        session = result.state
        follow_up: list[CommandResult[Participant]] = []
        sid = command.session_id
        if session.cancelled is not None:
            for place in session.released:
                release = ReleasePlace(place.participant_id, sid, place.claim, "session_cancelled")
                step = caller.with_key(release_key(place.participant_id, place.claim))
                follow_up.append(await self._participant(release, step))
        elif session.terms is not None:
            for place in (*session.roster, *session.waitlist):
                move = RescheduleClaim(place.participant_id, sid, place.claim, session.terms.window)
                follow_up.append(await self._participant(move, caller.with_key(None)))
        return outcome_of({"session_id": sid}, [result, *follow_up])


def _new_participant_id(seed: str | None, attempt: int) -> str:
    if seed is None:
        return participant_id_from_bits(secrets.randbits(40))
    digest = hashlib.sha256(f"{seed}\n{attempt}".encode()).digest()
    return participant_id_from_bits(int.from_bytes(digest[:5], "big"))
