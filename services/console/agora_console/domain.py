"""What the gate answers, decided on what the console knows of a badge's holder. Pure: no
NATS, SQLAlchemy, FastAPI or HTTP client.

The console decides first, from its own read model, so a gate answers "unknown badge" or
"withdrawn" at once and in words the person at the gate can act on; registration decides
again when the console sends it the check-in, and its refusal (a change the console has not
applied yet) is shown as it comes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Direction = Literal["in", "out"]
Reason = Literal[
    "unknown_badge",
    "not_a_badge",
    "not_approved",
    "rejected",
    "withdrawn",
    "already_inside",
    "not_inside",
]
_MISREAD = str.maketrans("OIL", "011")


def normalise_badge(typed: str) -> str:
    """A badge number as typed or scanned, in one form: upper case, no separators, with the
    letters people mistake for digits (O, I, L) read as the digits (as registration does)."""
    kept = "".join(c for c in typed.upper() if c.isalnum())
    return kept.translate(_MISREAD)


def looks_like_a_badge(typed: str) -> bool:
    return len(normalise_badge(typed)) == 9


@dataclass(frozen=True, slots=True)
class Holder:
    """A badge's holder as the console's read model has them."""

    participant_id: str
    name: str
    status: str
    inside_since: datetime | None


@dataclass(frozen=True, slots=True)
class Refused:
    reason: Reason


@dataclass(frozen=True, slots=True)
class Admitted:
    holder: Holder


def verdict(typed: str, holder: Holder | None, direction: Direction) -> Admitted | Refused:
    """Whether the holder of the badge typed may pass the gate in ``direction``."""
    if not looks_like_a_badge(typed):
        return Refused("not_a_badge")
    if holder is None:
        return Refused("unknown_badge")
    if direction == "out":
        return Admitted(holder) if holder.inside_since is not None else Refused("not_inside")
    match holder.status:
        case "withdrawn":
            return Refused("withdrawn")
        case "rejected":
            return Refused("rejected")
        case "approved":
            pass
        case _:
            return Refused("not_approved")
    if holder.inside_since is not None:
        return Refused("already_inside")
    return Admitted(holder)
