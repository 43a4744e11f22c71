"""Export a stream's log for an audit, and verify an export later.

An export is a JSON Lines file: a header line, then every message of the stream in sequence
order (subject, the server's storage time, headers, body), then a trailer. Each message line
also carries a SHA-256 chain value: the hash of the previous value and the message, starting
from a value derived from the stream's name. The trailer holds the last value, the *head*.

What that proves:

* Within a file, any edited, removed, inserted or reordered message breaks the chain from
  that line on, and a cut-off file has no trailer.
* Someone who rewrites a file *and* recomputes its chain produces a different head: keep the
  head the export printed (in the audit report, say) and give it to ``verify``.
* Against the live stream, ``verify`` reads the same sequences again and names the first one
  that differs, which shows a changed stream as well as a changed file.

Messages a stream no longer holds (it denies deletes, so this takes an operator changing its
configuration) show as gaps in the sequences; the export lists them.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncGenerator, Iterable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from nats.aio.client import Client as NATS

from .direct_get import LogUnreadable, StoredMessage, stored_messages

FORMAT = "agora-log-export/1"


class AuditError(Exception):
    """The stream could not be read, or a file is not an Agora log export."""


# One message of the log, as the export holds it.
LogMessage = StoredMessage


def genesis(stream: str) -> bytes:
    return hashlib.sha256(f"{FORMAT}\n{stream}".encode()).digest()


def link(previous: bytes, message: LogMessage) -> bytes:
    """The chain value after ``message``. The metadata is one JSON line (it never holds a raw
    newline), so the bytes after it can only be the body."""
    metadata = json.dumps(
        [message.sequence, message.subject, message.time, sorted(message.headers.items())],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    digest = hashlib.sha256(previous)
    digest.update(metadata.encode())
    digest.update(b"\n")
    digest.update(message.data)
    return digest.digest()


# -- reading the stream ----------------------------------------------------------------------


async def read_log(
    nc: NATS, stream: str, *, first: int = 1, up_to: int | None = None
) -> AsyncGenerator[LogMessage, None]:
    """Every message of ``stream`` from sequence ``first`` (through ``up_to``), in order,
    with its stored headers."""
    try:
        async with aclosing(stored_messages(nc, stream, first=first, up_to=up_to)) as messages:
            async for message in messages:
                yield message
    except LogUnreadable as exc:
        raise AuditError(str(exc)) from exc


# -- export ----------------------------------------------------------------------------------


@dataclass(slots=True)
class ExportSummary:
    stream: str
    messages: int = 0
    first_sequence: int | None = None
    last_sequence: int | None = None
    head: str = ""
    gaps: list[tuple[int, int]] = field(default_factory=list)  # (first, last) missing


async def export_log(
    nc: NATS,
    stream: str,
    out: TextIO,
    *,
    up_to: int | None = None,
    until: datetime | None = None,
) -> ExportSummary:
    """Write ``stream``'s messages (through sequence ``up_to`` or stored at or before
    ``until``) to ``out`` as an export, and say what it holds."""
    summary = ExportSummary(stream)
    chain = genesis(stream)
    exported_at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    out.write(_line({"format": FORMAT, "stream": stream, "exported_at": exported_at}))
    async with aclosing(read_log(nc, stream, up_to=up_to)) as messages:
        async for message in messages:
            if until is not None and message.moment > until:
                break  # storage times grow along the sequence
            expected = (summary.last_sequence or 0) + 1
            if message.sequence != expected:
                summary.gaps.append((expected, message.sequence - 1))
            chain = link(chain, message)
            out.write(_line(_message_record(message, chain)))
            summary.messages += 1
            summary.first_sequence = summary.first_sequence or message.sequence
            summary.last_sequence = message.sequence
    summary.head = chain.hex()
    trailer = {
        "head": summary.head,
        "messages": summary.messages,
        "last_sequence": summary.last_sequence,
        "gaps": [list(gap) for gap in summary.gaps],
    }
    out.write(_line(trailer))
    return summary


def _line(record: Mapping[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


def _message_record(message: LogMessage, chain: bytes) -> dict[str, Any]:
    record: dict[str, Any] = {
        "seq": message.sequence,
        "subject": message.subject,
        "time": message.time,
        "headers": dict(message.headers),
    }
    try:
        record["data"] = message.data.decode("utf-8")  # readable, and exactly reversible
    except UnicodeDecodeError:
        record["data_base64"] = base64.b64encode(message.data).decode()
    record["chain"] = chain.hex()
    return record


# -- verification ----------------------------------------------------------------------------


@dataclass(slots=True)
class Verification:
    stream: str = ""
    messages: list[LogMessage] = field(default_factory=list)
    head: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems


def verify_export(lines: Iterable[str], *, head: str | None = None) -> Verification:
    """Check an export's own chain, its trailer, and (when given) the head kept from the day
    it was made. Problems are described, never raised; a file that is not an export at all
    raises ``AuditError``."""
    result = Verification()
    records = iter(enumerate(lines, start=1))
    try:
        number, first_line = next(records)
    except StopIteration:
        raise AuditError("the file is empty; it is not an Agora log export") from None
    header = _json(first_line, number)
    if header.get("format") != FORMAT or not isinstance(header.get("stream"), str):
        raise AuditError(f"line 1 does not start an Agora log export ({FORMAT})")
    result.stream = header["stream"]
    chain = genesis(result.stream)
    broken = False
    trailer: dict[str, Any] | None = None
    for number, text in records:
        record = _json(text, number)
        if "head" in record:
            trailer = record
            break
        message = _read_message(record, number)
        chain = link(chain, message)
        if not broken and chain.hex() != record.get("chain"):
            broken = True
            result.problems.append(
                f"line {number} (sequence {message.sequence}): the message or its chain value "
                "was changed, or a message before it was removed, added or moved"
            )
        if result.messages and message.sequence <= result.messages[-1].sequence:
            result.problems.append(f"line {number}: sequence {message.sequence} is out of order")
        result.messages.append(message)
    result.head = chain.hex()
    _check_trailer(result, trailer, head)
    return result


def _check_trailer(result: Verification, trailer: dict[str, Any] | None, head: str | None) -> None:
    if trailer is None:
        result.problems.append("the export has no trailer: it was cut short")
    else:
        if trailer.get("messages") != len(result.messages):
            result.problems.append(
                f"the trailer counts {trailer.get('messages')} messages; "
                f"the file holds {len(result.messages)}"
            )
        if trailer.get("head") != result.head:
            result.problems.append("the trailer's head does not match the messages' chain")
    if head is not None and head.strip().lower() != result.head:
        result.problems.append(
            f"the chain's head is {result.head}, not the {head.strip()} kept from the export: "
            "the file was rewritten"
        )


def _json(text: str, number: int) -> dict[str, Any]:
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AuditError(f"line {number} is not JSON: {exc.msg}") from None
    if not isinstance(record, dict):
        raise AuditError(f"line {number} is not a JSON object")
    return record


def _read_message(record: dict[str, Any], number: int) -> LogMessage:
    try:
        if "data_base64" in record:
            data = base64.b64decode(record["data_base64"], validate=True)
        else:
            data = str(record["data"]).encode("utf-8")
        headers = record["headers"]
        if not isinstance(headers, dict):
            raise TypeError("headers is not an object")
        return LogMessage(
            sequence=int(record["seq"]),
            subject=str(record["subject"]),
            time=str(record["time"]),
            headers={str(k): str(v) for k, v in headers.items()},
            data=data,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise AuditError(f"line {number} is not an exported message: {exc}") from None


async def compare_with_stream(nc: NATS, exported: Verification) -> list[str]:
    """Read the exported sequences from the live stream again; describe every difference."""
    if not exported.messages:
        return []
    wanted = {message.sequence: message for message in exported.messages}
    first, last = exported.messages[0].sequence, exported.messages[-1].sequence
    differences = []
    seen: set[int] = set()
    async for live in read_log(nc, exported.stream, first=first, up_to=last):
        seen.add(live.sequence)
        kept = wanted.get(live.sequence)
        if kept is None:
            differences.append(f"sequence {live.sequence} is in the stream but not in the export")
        elif link(b"", kept) != link(b"", live):
            differences.append(
                f"sequence {live.sequence} ({live.subject}) differs between the stream and "
                "the export"
            )
    for sequence in sorted(set(wanted) - seen):
        differences.append(f"sequence {sequence} is in the export but no longer in the stream")
    return differences
