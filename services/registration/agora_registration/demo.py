"""Demo data: the ministerial roundtable of the 2025 forum (Samarkand), registered and approved.

Idempotent: each person's idempotency key is derived from the data file and their name, so
the participant id is too; loading twice registers nobody twice.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from dataclasses import dataclass
from importlib import resources
from typing import Any

from agora_events.usecases import Caller

from .application import Registration

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


async def load_demo(registration: Registration) -> DemoReport:
    registered = approved = 0
    people = demo_participants()
    for person in people:
        key = f"demo:unpsf-2025-roundtable:{email_for(person['name'])}"
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
