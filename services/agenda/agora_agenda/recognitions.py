"""The recognitions an edition's sources record (the 2025 forum's e-government recognitions),
read from the packaged ``data/recognitions/<edition_id>.toml``. Facts of the programme that
are not sessions: no command changes them, so they are data, not events."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources

from pydantic import BaseModel, Field

from agora_events.catalogue import validate_aggregate_id
from agora_events.decider import NotFound


class RecognisedCountry(BaseModel):
    alpha3: str = Field(description="ISO 3166-1 alpha-3")
    name: str


class Recognitions(BaseModel):
    edition_id: str
    title: str
    purpose: str
    criteria: list[str] = Field(description="Each country met one or more of these")
    all_met: list[str] = Field(description="What every recognised country met besides")
    countries: list[RecognisedCountry] = Field(description="In the source's order")
    source: str


@cache
def recognitions(edition_id: str) -> Recognitions:
    validate_aggregate_id(edition_id)
    data = resources.files("agora_agenda").joinpath(f"data/recognitions/{edition_id}.toml")
    if not data.is_file():
        raise NotFound(f"the sources of edition {edition_id!r} record no recognitions")
    facts = tomllib.loads(data.read_text("utf-8"))
    return Recognitions(
        edition_id=edition_id,
        countries=[RecognisedCountry(**c) for c in facts["egov_recognised"]],
        **facts["recognition"],
    )
