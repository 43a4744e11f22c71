"""The four context streams and their idempotent, drift-reporting creation.

Each stream republishes what it stored: the server sends every stored message again on
``feed.<context>.<rest of subject>`` with ``Nats-Stream``, ``Nats-Subject``,
``Nats-Sequence`` and ``Nats-Last-Sequence`` added. Live subscribers follow that feed, which
carries only stored events; the context subjects themselves also carry every refused
publish attempt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from nats.aio.client import Client as NATS
from nats.js.api import DiscardPolicy, RePublish, RetentionPolicy, StorageType, StreamConfig
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

CONTEXTS = ("registration", "agenda", "declarations", "notifications")
DUPLICATE_WINDOW_SECONDS = 24 * 3600.0
FEED = "feed"
STREAM_NOT_FOUND = 10059  # JetStream's err_code for "stream not found"


@dataclass(frozen=True, slots=True)
class StreamSpec:
    context: str

    @property
    def name(self) -> str:
        return self.context.upper()

    @property
    def subjects(self) -> list[str]:
        return [f"{self.context}.>"]

    @property
    def feed(self) -> str:
        """Where the server republishes each stored message (``feed.<context>.>``)."""
        return f"{FEED}.{self.context}.>"

    @property
    def republish(self) -> RePublish:
        return RePublish(src=f"{self.context}.>", dest=self.feed)

    def config(self, replicas: int = 1) -> StreamConfig:
        return StreamConfig(
            name=self.name,
            description=f"Agora {self.context} events (source of truth)",
            subjects=self.subjects,
            retention=RetentionPolicy.LIMITS,
            discard=DiscardPolicy.NEW,
            storage=StorageType.FILE,
            num_replicas=replicas,
            duplicate_window=DUPLICATE_WINDOW_SECONDS,
            deny_delete=True,
            deny_purge=True,
            allow_direct=True,
            allow_atomic=True,
            republish=self.republish,
        )


STREAMS = {context: StreamSpec(context) for context in CONTEXTS}

# The settings we own; anything else on the server's side (limits left at defaults, etc.)
# is not drift.
_COMPARED = (
    "subjects",
    "retention",
    "discard",
    "storage",
    "num_replicas",
    "duplicate_window",
    "deny_delete",
    "deny_purge",
    "allow_direct",
    "allow_atomic",
    "republish",
)


class StreamAdminError(RuntimeError):
    """The server refused to show or change a stream's configuration."""


@dataclass(frozen=True, slots=True)
class Drift:
    setting: str
    expected: Any
    actual: Any

    def __str__(self) -> str:
        return f"{self.setting}: expected {self.expected!r}, found {self.actual!r}"


@dataclass(frozen=True, slots=True)
class StreamReport:
    name: str
    status: Literal["created", "unchanged", "drifted", "updated", "missing"]
    drift: list[Drift] = field(default_factory=list)


def _normalise(value: Any) -> Any:
    if isinstance(value, RePublish):
        return f"{value.src} -> {value.dest}" + (" (headers only)" if value.headers_only else "")
    if hasattr(value, "value"):
        return value.value
    if isinstance(value, list):
        return sorted(value)
    if isinstance(value, float):
        return round(value, 3)
    return value


def compare(expected: StreamConfig, actual: StreamConfig) -> list[Drift]:
    drift = []
    for setting in _COMPARED:
        want = _normalise(getattr(expected, setting))
        have = _normalise(getattr(actual, setting))
        if want != have and not (want in (False, None) and have in (False, None)):
            drift.append(Drift(setting, want, have))
    return drift


async def ensure_streams(
    js: JetStreamContext, *, replicas: int = 1, contexts: tuple[str, ...] = CONTEXTS
) -> list[StreamReport]:
    """Create missing streams; never overwrite an existing one, only report its drift."""
    reports = []
    for context in contexts:
        spec = STREAMS[context]
        wanted = spec.config(replicas)
        try:
            info = await js.stream_info(spec.name)
        except NotFoundError:
            await js.add_stream(wanted)
            reports.append(StreamReport(spec.name, "created"))
            continue
        drift = compare(wanted, info.config)
        reports.append(StreamReport(spec.name, "drifted" if drift else "unchanged", drift))
    return reports


async def add_republish(nc: NATS, contexts: tuple[str, ...] = CONTEXTS) -> list[StreamReport]:
    """Add the feed's republish to existing streams that have none; change nothing else.

    The stream's configuration is read and written back as the server's JSON, so settings
    this client library does not model survive the update. A stream that republishes
    elsewhere is left as found and reported as drifted; a missing stream is not created
    (``ensure_streams`` does that) but reported missing."""
    reports = []
    for context in contexts:
        spec = STREAMS[context]
        try:
            config = (await _api(nc, f"STREAM.INFO.{spec.name}", b""))["config"]
        except NotFoundError:
            reports.append(StreamReport(spec.name, "missing"))
            continue
        current = config.get("republish")
        if current is None:
            config["republish"] = spec.republish.as_dict()
            await _api(nc, f"STREAM.UPDATE.{spec.name}", json.dumps(config).encode())
            reports.append(StreamReport(spec.name, "updated"))
            continue
        found, want = _normalise(RePublish.from_response(current)), _normalise(spec.republish)
        if found == want:
            reports.append(StreamReport(spec.name, "unchanged"))
        else:
            reports.append(StreamReport(spec.name, "drifted", [Drift("republish", want, found)]))
    return reports


async def _api(nc: NATS, request: str, payload: bytes) -> dict[str, Any]:
    reply = await nc.request(f"$JS.API.{request}", payload, timeout=5.0)
    answer: dict[str, Any] = json.loads(reply.data)
    error = answer.get("error")
    if error:
        if error.get("err_code") == STREAM_NOT_FOUND:
            raise NotFoundError(description=error.get("description"))
        raise StreamAdminError(f"{request} refused: {error.get('description', error)}")
    return answer


@dataclass(frozen=True, slots=True)
class StreamSummary:
    name: str
    subjects: list[str]
    messages: int
    bytes: int
    first_sequence: int
    last_sequence: int
    consumers: int


async def describe_streams(
    js: JetStreamContext, contexts: tuple[str, ...] = CONTEXTS
) -> list[StreamSummary | str]:
    """A summary per stream, or the name of a stream that does not exist yet."""
    summaries: list[StreamSummary | str] = []
    for context in contexts:
        spec = STREAMS[context]
        try:
            info = await js.stream_info(spec.name)
        except NotFoundError:
            summaries.append(spec.name)
            continue
        state = info.state
        summaries.append(
            StreamSummary(
                name=spec.name,
                subjects=list(info.config.subjects or []),
                messages=state.messages,
                bytes=state.bytes,
                first_sequence=state.first_seq,
                last_sequence=state.last_seq,
                consumers=state.consumer_count,
            )
        )
    return summaries


def stream_for_subject(subject: str) -> str:
    context = subject.split(".", 1)[0]
    if context not in STREAMS:
        raise ValueError(f"subject {subject!r} belongs to no Agora stream")
    return STREAMS[context].name
