"""The agenda's rules, pure: commands, state, ``decide`` and ``evolve``. No I/O here.

One consistency scope holds the whole agenda (every edition, room and session), because the
rules span sessions: a room holds one session at a time and a person is in one session at a
time. ``decide`` works out the events of a command, folds them into a tentative state and
checks every rule the command could break on that state; the first breach refuses the command.

- ``commands``: what can be asked, the ``Command`` union;
- ``state``: what the agenda knows (``Agenda`` and its parts);
- ``evolve``: the ``AgendaEvent`` union, ``evolve`` and ``fold``;
- ``validation``: checks of a command's own values;
- ``rules``: the rules that span sessions, on the tentative state;
- ``schedule_diff``: what changed between two published versions;
- ``decisions``: ``decide`` and a function per command, the import included.
"""

from __future__ import annotations

from agora_events.catalogue import DomainEvent
from agora_events.decider import Decider, members

from .commands import (
    AddRoom,
    AssignPerson,
    CancelSession,
    ChangeEditionDetails,
    ChangeRoomCapacity,
    ChangeSessionDetails,
    Command,
    ImportEdition,
    MoveSession,
    Person,
    PlanEdition,
    PublishSchedule,
    RemovePerson,
    RenameRoom,
    ScheduleSession,
    Warning,
)
from .decisions import MAX_EVENTS_PER_COMMAND, MISSING_REASON, decide, missing_sessions
from .evolve import AgendaEvent, evolve, evolve_any, fold
from .schedule_diff import ScheduleDiff, diff
from .state import (
    Agenda,
    Assignment,
    Edition,
    Release,
    Room,
    Session,
    SessionSnapshot,
    people_key,
)
from .validation import PERSON_ROLES, SESSION_KINDS

agenda_decider: Decider[Agenda, Command, DomainEvent] = Decider(
    Agenda, decide, evolve_any, events=members(AgendaEvent)
)

__all__ = [
    "MAX_EVENTS_PER_COMMAND",
    "MISSING_REASON",
    "PERSON_ROLES",
    "SESSION_KINDS",
    "AddRoom",
    "Agenda",
    "AgendaEvent",
    "AssignPerson",
    "Assignment",
    "CancelSession",
    "ChangeEditionDetails",
    "ChangeRoomCapacity",
    "ChangeSessionDetails",
    "Command",
    "Edition",
    "ImportEdition",
    "MoveSession",
    "Person",
    "PlanEdition",
    "PublishSchedule",
    "Release",
    "RemovePerson",
    "RenameRoom",
    "Room",
    "ScheduleDiff",
    "ScheduleSession",
    "Session",
    "SessionSnapshot",
    "Warning",
    "agenda_decider",
    "decide",
    "diff",
    "evolve",
    "fold",
    "missing_sessions",
    "people_key",
]
