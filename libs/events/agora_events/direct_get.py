"""Reading stored messages in sequence order by batched direct gets (``allow_direct``).

One request returns up to ``batch`` messages; the reader asks again from the last sequence
it saw until the stream says nothing is pending. The event store reads an aggregate's history
this way, and the audit export the whole log.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from nats.aio.client import Client as NATS
from nats.errors import TimeoutError as NatsTimeoutError

# Headers a direct get adds to the stored message; they describe the reply, not the message.
REPLY_HEADERS = frozenset(
    {
        "Nats-Stream",
        "Nats-Subject",
        "Nats-Sequence",
        "Nats-Time-Stamp",
        "Nats-Num-Pending",
        "Nats-Last-Sequence",
        "Nats-UpTo-Sequence",
    }
)


class LogUnreadable(Exception):
    """The stream did not answer, does not exist, or refused the read."""


@dataclass(frozen=True, slots=True)
class StoredMessage:
    sequence: int
    subject: str
    time: str  # the server's storage time, exactly as it reports it (RFC 3339, nanoseconds)
    headers: Mapping[str, str]  # as published, without the direct get's own
    data: bytes

    @property
    def moment(self) -> datetime:
        return parse_stamp(self.time)

    @classmethod
    def from_reply(cls, headers: Mapping[str, str], data: bytes) -> StoredMessage:
        """The stored message a direct get's reply carries (its ``Nats-*`` headers say where
        and when it was stored; they are not the message's own)."""
        return cls(
            sequence=int(headers["Nats-Sequence"]),
            subject=headers["Nats-Subject"],
            time=headers["Nats-Time-Stamp"],
            headers={k: v for k, v in headers.items() if k not in REPLY_HEADERS},
            data=data,
        )


def parse_stamp(text: str) -> datetime:
    """A server timestamp such as ``2025-06-24T09:30:00.123456789Z`` (Python keeps µs)."""
    head, _, fraction = text.rstrip("Z").partition(".")
    micros = (fraction + "000000")[:6]
    return datetime.fromisoformat(f"{head}.{micros}+00:00").astimezone(UTC)


async def stored_messages(
    nc: NATS,
    stream: str,
    *,
    subject_filter: str | None = None,
    first: int = 1,
    up_to: int | None = None,
    batch: int = 500,
    timeout: float = 5.0,
) -> AsyncGenerator[StoredMessage, None]:
    """Every message of ``stream`` (matching ``subject_filter``) from sequence ``first``
    through ``up_to``, in order."""
    inbox = nc.new_inbox()
    subscription = await nc.subscribe(inbox)
    try:
        start = first
        while up_to is None or start <= up_to:
            request: dict[str, object] = {"seq": start, "batch": batch}
            if subject_filter is not None:
                request["next_by_subj"] = subject_filter
            await nc.publish(f"$JS.API.DIRECT.GET.{stream}", json.dumps(request).encode(), inbox)
            last_seen = None
            while True:
                try:
                    reply = await subscription.next_msg(timeout=timeout)
                except (TimeoutError, NatsTimeoutError) as exc:
                    raise LogUnreadable(f"{stream} did not answer a read in time") from exc
                headers = dict(reply.headers or {})
                status = headers.get("Status")
                if status == "404":
                    return  # nothing at or after ``start``
                if status == "503":
                    raise LogUnreadable(
                        f"no stream {stream} answers (`agora streams info` lists them)"
                    )
                if status == "204":
                    break  # the end of this batch
                if status:
                    description = headers.get("Description", "")
                    raise LogUnreadable(f"reading {stream} failed: {status} {description}")
                last_seen = int(headers["Nats-Sequence"])
                if up_to is None or last_seen <= up_to:
                    yield StoredMessage.from_reply(headers, reply.data)
            if last_seen is None or int(headers.get("Nats-Num-Pending", "0")) == 0:
                return
            start = last_seen + 1
    finally:
        await subscription.unsubscribe()
