"""The demo declaration: the Samarkand Ministerial Declaration, drafted from the 2025 report
and opened for signature with a placeholder text that says it is one (the seeds hold no
text, and no signatures: the demo records none)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from importlib import resources
from typing import Any

from agora_events.contracts.declarations import OpenTo, Priority
from agora_events.usecases import Caller

from .application import Declarations

DEMO = Caller(actor="demo")


@dataclass(frozen=True, slots=True)
class DemoDeclaration:
    declaration_id: str
    title: str
    edition_id: str
    launched_by: str
    launched_on: date
    open_to: OpenTo
    opens_at: datetime
    source: str
    priorities: tuple[Priority, ...]
    language: str
    text: str


@cache
def samarkand() -> DemoDeclaration:
    data = resources.files("agora_declarations").joinpath("data/samarkand-2025.toml")
    facts: dict[str, Any] = tomllib.loads(data.read_text("utf-8"))
    declaration, text = facts["declaration"], facts["demo_text"]
    return DemoDeclaration(
        declaration_id=declaration["declaration_id"],
        title=declaration["title"],
        edition_id=declaration["edition_id"],
        launched_by=declaration["launched_by"],
        launched_on=declaration["launched_on"],
        open_to=declaration["open_to"],
        opens_at=declaration["opens_at"],
        source=declaration["source"],
        priorities=tuple(
            Priority(number=number, title=title)
            for number, title in enumerate(declaration["priorities"], start=1)
        ),
        language=text["language"],
        text=text["text"].lstrip("\n"),
    )


async def load_demo(declarations: Declarations) -> bool:
    """Draft and open the Samarkand declaration unless the log already holds it; True when
    this call did it. Each step is keyed, so an interrupted run completes on the next."""
    facts = samarkand()
    if (await declarations.declaration(facts.declaration_id)).drafted:
        return False
    key = f"demo:{facts.declaration_id}"
    await declarations.draft(
        facts.declaration_id,
        title=facts.title,
        edition_id=facts.edition_id,
        launched_by=facts.launched_by,
        launched_on=facts.launched_on,
        priorities=facts.priorities,
        source=facts.source,
        caller=DEMO.with_key(f"{key}:draft"),
    )
    await declarations.set_text(
        facts.declaration_id, facts.language, facts.text, caller=DEMO.with_key(f"{key}:text")
    )
    await declarations.open_for_signature(
        facts.declaration_id,
        opens_at=facts.opens_at,
        open_to=facts.open_to,
        caller=DEMO.with_key(f"{key}:open"),
    )
    return True
