"""Demo data: the ministerial roundtable of the 2025 forum (Samarkand), registered and approved.

Idempotent: each person's idempotency key is derived from the data file and their name, so
the participant id is too; loading twice registers nobody twice. ``agora up`` seeds only a log
that holds none of them (``held_demo_participants``), so a restart never touches what
organisers did with them since.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from dataclasses import dataclass
from importlib import resources
from typing import Any

from agora_events.usecases import Caller

from .application import Registration, _new_participant_id

DEMO_FILE = "data/demo/unpsf-2025-roundtable.toml"
ACTOR = "demo-loader"


@dataclass(frozen=True, slots=True)
class DemoReport:
    participants: int
    registered: int
    approved: int


def demo_participants() -> list[dict[str, Any]]:
    text = resources.files("agora_registration").joinpath(DEMO_FILE).read_text("utf-8")
    people: list[dict[str, Any]] = tomllib.loads(text)["participants"]
    return people


def email_for(name: str) -> str:
    """A made-up address at example.org (reserved for examples), from the person's name."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    local = re.sub(r"[^a-z0-9]+", ".", ascii_name.lower()).strip(".")
    return f"{local or 'participant'}@example.org"


def demo_key(person: dict[str, Any]) -> str:
    return f"demo:unpsf-2025-roundtable:{email_for(person['name'])}"


async def held_demo_participants(registration: Registration) -> int:
    """How many of the demo's participants the log already holds (under the id their key
    gives them, as ``Registration.register`` derives it)."""
    held = 0
    for person in demo_participants():
        participant_id = _new_participant_id(f"register:{demo_key(person)}", 0)
        held += (await registration.participant(participant_id)).status != "unregistered"
    return held


async def load_demo(registration: Registration) -> DemoReport:
    registered = approved = 0
    people = demo_participants()
    for person in people:
        key = demo_key(person)
        outcome = await registration.register(
            name=person["name"],
            email=email_for(person["name"]),
            category=person["category"],
            delegation=person.get("delegation") or None,
            organisation=person.get("organisation", ""),
            title=person.get("title") or None,
            caller=Caller(actor=ACTOR, key=key),
        )
        registered += not outcome.duplicate
        participant_id = outcome.ids["participant_id"]
        if (await registration.participant(participant_id)).status == "submitted":
            await registration.approve(participant_id, Caller(actor=ACTOR, key=f"{key}:approve"))
            approved += 1
    return DemoReport(participants=len(people), registered=registered, approved=approved)
