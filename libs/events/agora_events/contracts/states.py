"""The States a delegation may represent and a declaration may be signed for: the 193 UN
Member States and the 2 observer States, by ISO 3166-1 alpha-3 code, read once from the
packaged ``contracts/data/un_states.csv``. Part of the contract: every ``delegation`` and
``state`` field names one of them."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

StateStatus = Literal["member", "observer"]


@dataclass(frozen=True, slots=True)
class State:
    alpha3: str
    name: str
    status: StateStatus


@cache
def all_states() -> dict[str, State]:
    data = resources.files("agora_events.contracts").joinpath("data/un_states.csv")
    states: dict[str, State] = {}
    for row in csv.DictReader(io.StringIO(data.read_text("utf-8"))):
        status: StateStatus
        match row["status"]:
            case "member" | "observer" as known:
                status = known
            case other:
                raise ValueError(f"un_states.csv: unknown status {other!r} for {row['alpha3']}")
        states[row["alpha3"]] = State(row["alpha3"], row["name"], status)
    return states


def member_states() -> list[State]:
    return [state for state in all_states().values() if state.status == "member"]
