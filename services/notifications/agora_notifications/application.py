"""Use cases: notices decided, their delivery recorded, dead letters dealt with, webhook
endpoints managed. Each is load → decide → append on one notice or endpoint.

A notice's scope is its own subject (``notifications.notice.<id>.*``), and the first event in
it must find the scope empty: two deciders of one notice (a redelivery, a restart, a second
replica) append one ``decided`` between them, and the loser decides nothing.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from agora_events.commands import CommandHandler, CommandResult
from agora_events.contracts.notifications import NoticeDecided
from agora_events.decider import NotFound
from agora_events.envelope import Envelope
from agora_events.store import EventStore
from agora_events.usecases import SYSTEM, Caller, Outcome, UseCases, outcome_of

from .domain import (
    DeadLetter,
    Decide,
    Disable,
    Discard,
    Draft,
    Enable,
    Endpoint,
    EndpointCommand,
    Notice,
    NoticeCommand,
    RecordDelivery,
    RecordFailure,
    Register,
    Remove,
    Requeue,
    RotateSecret,
    Trigger,
    endpoint_decider,
    endpoint_scope,
    notice_decider,
    notice_id,
    notice_scope,
    subscribes,
)
from .settings import NotificationsSettings
from .webhooks import check_target, endpoint_secret

REPLAYABLE = ("registration", "agenda", "declarations")


@dataclass(frozen=True, slots=True)
class EndpointOutcome(Outcome):
    secret: str = ""
    """The signing secret, in this answer only."""


def structured(envelope: Envelope, sequence: int | None = None) -> dict[str, Any]:
    """A stored event as a structured-mode CloudEvent (the JSON a webhook posts)."""
    body: dict[str, Any] = {
        "specversion": "1.0",
        "id": envelope.id,
        "source": envelope.source,
        "type": envelope.type,
        "time": envelope.time.isoformat(),
        "datacontenttype": envelope.datacontenttype,
        "data": json.loads(envelope.data),
    }
    optional = {
        "subject": envelope.subject,
        "dataschema": envelope.dataschema,
        "correlationid": envelope.correlationid,
        "causationid": envelope.causationid,
        "aggregateversion": envelope.aggregateversion,
        "sequence": sequence,
    }
    return body | {name: value for name, value in optional.items() if value is not None}


class Notifications(UseCases):
    def __init__(self, store: EventStore, settings: NotificationsSettings) -> None:
        super().__init__()
        self.settings = settings
        self._store = store
        self.notices: CommandHandler[Notice, NoticeCommand] = CommandHandler(
            store, notice_decider, notice_scope
        )
        self.endpoints: CommandHandler[Endpoint, EndpointCommand] = CommandHandler(
            store, endpoint_decider, endpoint_scope
        )

    async def _notice(self, command: NoticeCommand, caller: Caller) -> CommandResult[Notice]:
        return await self.run(self.notices, notice_scope(command), command, caller)

    async def _endpoint(self, command: EndpointCommand, caller: Caller) -> CommandResult[Endpoint]:
        return await self.run(self.endpoints, endpoint_scope(command), command, caller)

    # -- notices ---------------------------------------------------------------------------------

    async def decide(self, trigger: Trigger, drafts: Sequence[Draft], caller: Caller) -> int:
        """Record the notices a triggering event causes; how many were new."""
        new = 0
        for draft in drafts:
            decision = NoticeDecided(
                notice_id=notice_id(draft.rule, trigger.event_id, draft.recipient),
                rule=draft.rule,
                trigger_event_id=trigger.event_id,
                trigger_type=trigger.event_type,
                recipient=draft.recipient,
                channel=draft.channel,
                address=draft.address,
                language=draft.language,
                facts=draft.facts,
                not_before=draft.not_before or trigger.time,
                digest_key=draft.digest_key,
            )
            result = await self._notice(Decide(decision), caller)
            new += bool(result.events)
        return new

    async def notice(self, notice: str) -> tuple[Notice, int]:
        """The notice as the log has it (never a read model's word), and the stream
        sequence of its last event."""
        loaded = await self.notices.load(f"notifications.notice.{notice}.*")
        return loaded.state, loaded.last_sequence

    async def record_delivery(self, command: RecordDelivery) -> CommandResult[Notice]:
        return await self._notice(command, SYSTEM)

    async def record_failure(self, command: RecordFailure) -> CommandResult[Notice]:
        return await self._notice(command, SYSTEM)

    async def dead_letter(self, notice: str, reason: str) -> CommandResult[Notice]:
        return await self._notice(DeadLetter(notice, reason), SYSTEM)

    async def requeue(self, notice: str, caller: Caller = SYSTEM) -> Outcome:
        self.accept(caller)
        result = await self._notice(Requeue(notice), caller)
        return outcome_of({"notice_id": notice}, [result])

    async def discard(
        self, notice: str, reason: str | None = None, caller: Caller = SYSTEM
    ) -> Outcome:
        self.accept(caller)
        result = await self._notice(Discard(notice, reason), caller)
        return outcome_of({"notice_id": notice}, [result])

    # -- endpoints -------------------------------------------------------------------------------

    def secret_of(self, endpoint_id: str, generation: int) -> str:
        key = self.settings.signing_secret.get_secret_value()
        return endpoint_secret(key, endpoint_id, generation)

    async def register_endpoint(
        self,
        url: str,
        event_types: Sequence[str],
        description: str | None = None,
        caller: Caller = SYSTEM,
    ) -> EndpointOutcome:
        self.accept(caller)
        await check_target(url, production=self.settings.env != "local")
        # With a key, a retry names the endpoint it created.
        seed = caller.key or secrets.token_hex(16)
        endpoint_id = "ep" + hashlib.sha256(seed.encode()).hexdigest()[:14]
        command = Register(endpoint_id, url, tuple(event_types), description)
        result = await self._endpoint(command, caller)
        outcome = outcome_of({"endpoint_id": endpoint_id}, [result])
        return EndpointOutcome(**_fields(outcome), secret=self.secret_of(endpoint_id, 1))

    async def rotate_secret(
        self, endpoint_id: str, now: datetime, caller: Caller = SYSTEM
    ) -> EndpointOutcome:
        self.accept(caller)
        until = now + timedelta(seconds=self.settings.rotation_overlap)
        result = await self._endpoint(RotateSecret(endpoint_id, until), caller)
        outcome = outcome_of({"endpoint_id": endpoint_id}, [result])
        secret = self.secret_of(endpoint_id, result.state.generation)
        return EndpointOutcome(**_fields(outcome), secret=secret)

    async def disable_endpoint(
        self,
        endpoint_id: str,
        reason: str,
        failing_since: datetime | None = None,
        caller: Caller = SYSTEM,
    ) -> Outcome:
        self.accept(caller)
        result = await self._endpoint(Disable(endpoint_id, reason, failing_since), caller)
        return outcome_of({"endpoint_id": endpoint_id}, [result])

    async def remove_endpoint(self, endpoint_id: str, caller: Caller = SYSTEM) -> Outcome:
        """No more notices for it; those pending become dead letters as they come due."""
        self.accept(caller)
        result = await self._endpoint(Remove(endpoint_id), caller)
        return outcome_of({"endpoint_id": endpoint_id}, [result])

    async def enable_endpoint(self, endpoint_id: str, caller: Caller = SYSTEM) -> Outcome:
        self.accept(caller)
        result = await self._endpoint(Enable(endpoint_id), caller)
        return outcome_of({"endpoint_id": endpoint_id}, [result])

    async def replay(
        self,
        endpoint_id: str,
        *,
        stream: str | None,
        after_sequence: int = 0,
        since: datetime | None = None,
        caller: Caller = SYSTEM,
    ) -> tuple[str, int]:
        """New notices to the endpoint for every event it subscribes to past a stream
        position or a time; with a key, a retry names the same replay (and no new notice)."""
        self.accept(caller)
        endpoint = await self.endpoint(endpoint_id)
        if endpoint.status in ("none", "removed"):
            raise NotFound(f"there is no webhook endpoint {endpoint_id}")
        seed = caller.key or secrets.token_hex(16)
        replay_id = "rp" + hashlib.sha256(f"{endpoint_id}:{seed}".encode()).hexdigest()[:14]
        contexts = [stream.lower()] if stream else list(REPLAYABLE)
        count = 0
        for context in contexts:
            history = await self._store.read(f"{context}.>", after=after_sequence if stream else 0)
            for record in history:
                envelope = record.envelope
                if since is not None and envelope.time < since:
                    continue
                if not subscribes(endpoint.event_types, envelope.type):
                    continue
                trigger = Trigger(
                    record.event,
                    envelope.id,
                    envelope.type,
                    envelope.time,
                    structured(envelope, record.sequence),
                )
                draft = Draft(
                    f"replay:{replay_id}",
                    endpoint_id,
                    "webhook",
                    {"cloudevent": trigger.cloudevent},
                    not_before=_now(),
                )
                count += await self.decide(trigger, [draft], caller)
        return replay_id, count

    async def endpoint(self, endpoint_id: str) -> Endpoint:
        return (await self.endpoints.load(f"notifications.endpoint.{endpoint_id}.*")).state


def _now() -> datetime:
    return datetime.now(UTC)


def _fields(outcome: Outcome) -> dict[str, Any]:
    return {
        "ids": outcome.ids,
        "sequence": outcome.sequence,
        "events": outcome.events,
        "duplicate": outcome.duplicate,
    }
