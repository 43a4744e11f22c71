"""The four context streams and their idempotent, drift-reporting creation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

CONTEXTS = ("registration", "agenda", "declarations", "notifications")
DUPLICATE_WINDOW_SECONDS = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class StreamSpec:
    context: str

    @property
    def name(self) -> str:
        return self.context.upper()

    @property
    def subjects(self) -> list[str]:
        return [f"{self.context}.>"]

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
)


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
    status: Literal["created", "unchanged", "drifted"]
    drift: list[Drift] = field(default_factory=list)


def _normalise(value: Any) -> Any:
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
