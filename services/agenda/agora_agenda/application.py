"""Command handling for the agenda: load → decide → append → answer.

Every agenda command shares one consistency scope, ``agenda.>``, because its rules span
sessions. The handler caches the decided state and reads only the events it missed; the
store guards the whole stream with ``Nats-Expected-Last-Subject-Sequence-Subject``. Within
one process, commands queue for that scope (``UseCases``) instead of racing each other into
optimistic retries; across processes the store's guard decides.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime

from agora_events.commands import CommandHandler
from agora_events.contracts.agenda import SessionCancelled
from agora_events.store import EventStore
from agora_events.usecases import SYSTEM, Caller, UseCases, outcome_of
from agora_events.usecases import Outcome as CommandOutcome

from .domain import (
    Agenda,
    AssignPerson,
    Command,
    ImportEdition,
    PublishSchedule,
    agenda_decider,
    missing_sessions,
)

SCOPE = "agenda.>"
log = logging.getLogger("agora.agenda")


@dataclass(frozen=True, slots=True)
class SessionRef:
    session_id: str
    title: str


@dataclass(frozen=True, slots=True)
class Outcome(CommandOutcome):
    """What a command did. For an import, ``missing`` lists the edition's sessions that are
    still scheduled although the file does not list them, and ``cancelled`` those the import
    cancelled for that reason (``cancel_missing``)."""

    missing: tuple[SessionRef, ...] = ()
    cancelled: tuple[SessionRef, ...] = ()


def ids_of(command: Command) -> dict[str, str]:
    """The ids a command names, for the answer (never names of people)."""
    if isinstance(command, ImportEdition):
        return {"edition_id": command.edition.edition_id}
    ids = {
        f.name: str(getattr(command, f.name))
        for f in fields(command)
        if f.name.endswith("_id") and getattr(command, f.name) is not None
    }
    if isinstance(command, AssignPerson):
        ids["person_id"] = command.person.person_id
    return ids


class AgendaCommands(UseCases):
    def __init__(self, store: EventStore, *, clock: Callable[[], datetime] | None = None) -> None:
        super().__init__()
        self._handler: CommandHandler[Agenda, Command] = CommandHandler(
            store, agenda_decider, scope_of=lambda _: SCOPE
        )
        self._clock = clock or (lambda: datetime.now(UTC))

    def now(self) -> datetime:
        return self._clock()

    async def execute(self, command: Command, caller: Caller = SYSTEM) -> Outcome:
        self.accept(caller)
        result = await self.run(self._handler, SCOPE, command, caller)
        missing: tuple[SessionRef, ...] = ()
        cancelled: tuple[SessionRef, ...] = ()
        if isinstance(command, ImportEdition):
            missing = tuple(
                SessionRef(s.session_id, s.title) for s in missing_sessions(result.state, command)
            )
            cancelled = tuple(
                SessionRef(e.session_id, result.state.sessions[e.session_id].title)
                for e in result.events
                if isinstance(e, SessionCancelled)
            )
        answer = outcome_of(ids_of(command), [result])
        outcome = Outcome(
            ids=answer.ids,
            sequence=answer.sequence,
            events=answer.events,
            duplicate=answer.duplicate,
            missing=missing,
            cancelled=cancelled,
        )
        log.info(
            "command handled",
            extra={
                "command": type(command).__name__,
                "command_id": caller.command_id,
                "ids": outcome.ids,
                "events": len(outcome.events),
                "sequence": outcome.sequence,
                "duplicate": outcome.duplicate,
                "missing": [ref.session_id for ref in outcome.missing],
                "cancelled": [ref.session_id for ref in outcome.cancelled],
            },
        )
        return outcome

    async def publish(self, edition_id: str, label: str, caller: Caller = SYSTEM) -> Outcome:
        command = PublishSchedule(edition_id=edition_id, label=label, published_at=self.now())
        return await self.execute(command, caller)

    async def state(self) -> Agenda:
        """The agenda as the log holds it now."""
        return (await self._handler.load(SCOPE)).state
