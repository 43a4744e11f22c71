"""Questions the read model answers, as typed views. Reads only; no network calls."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime

from pydantic import BaseModel, Field
from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from agora_events.contracts.declarations import Capacity, OpenTo, Priority, Standing
from agora_events.contracts.states import all_states
from agora_events.decider import NotFound

from .projections import declarations, full_powers, signatories, signatures, texts


class TextView(BaseModel):
    language: str
    sha256: str = Field(description="SHA-256 of the text's canonical form (UTF-8, NFC, LF)")


class WindowView(BaseModel):
    opens_at: datetime
    closes_at: datetime | None = Field(description="None: no closing date")


class DeclarationView(BaseModel):
    declaration_id: str
    title: str
    edition_id: str
    launched_by: str
    launched_by_name: str
    launched_on: date | None
    status: str = Field(description="draft, or open (for signature; see the window)")
    open_to: OpenTo
    window: WindowView | None


class DeclarationDetail(DeclarationView):
    priorities: list[Priority]
    texts: list[TextView] = Field(description="Fixed by their hashes once open")
    source: str | None


class DeclarationText(TextView):
    text: str


class SignatoryRowView(BaseModel):
    state: str
    state_name: str
    signatory_name: str
    signatory_title: str | None
    capacity: Capacity
    signed_at: datetime
    withdrawn_at: datetime | None
    withdrawal_reason: str | None
    demo: bool = Field(description="Made by demo data: no State signed this in fact")


class StatusView(BaseModel):
    declaration_id: str
    as_of: datetime
    signed: int = Field(description="States whose signature stood at that instant")
    withdrawn: int = Field(description="States whose last signature by then was withdrawn")
    rows: list[SignatoryRowView]


class FullPowersView(BaseModel):
    participant_id: str
    instrument: str
    recorded_at: datetime


class SignatoryView(BaseModel):
    participant_id: str
    name: str
    title: str | None
    category: str
    status: Standing


class StateView(BaseModel):
    """One State's delegation as declarations knows it, for one declaration."""

    state: str
    state_name: str
    signature: SignatoryRowView | None = Field(description="The signature that stands, if any")
    full_powers: list[FullPowersView]
    delegation: list[SignatoryView]


def _declaration_view(row: Row[tuple[object, ...]]) -> DeclarationView:
    m = row._mapping
    window = None
    if m["opens_at"] is not None:
        window = WindowView(opens_at=m["opens_at"], closes_at=m["closes_at"])
    launched_by = str(m["launched_by"])
    state = all_states().get(launched_by)
    return DeclarationView(
        declaration_id=m["declaration_id"],
        title=m["title"],
        edition_id=m["edition_id"],
        launched_by=launched_by,
        launched_by_name=state.name if state else launched_by,
        launched_on=m["launched_on"],
        status=m["status"],
        open_to=m["open_to"],
        window=window,
    )


async def list_declarations(db: AsyncSession) -> list[DeclarationView]:
    rows = await db.execute(select(declarations).order_by(declarations.c.declaration_id))
    return [_declaration_view(row) for row in rows]


async def _declaration_row(db: AsyncSession, declaration_id: str) -> Row[tuple[object, ...]]:
    found = await db.execute(
        select(declarations).where(declarations.c.declaration_id == declaration_id)
    )
    row = found.first()
    if row is None:
        raise NotFound(f"there is no declaration {declaration_id!r}")
    return row


async def declaration(db: AsyncSession, declaration_id: str) -> DeclarationDetail:
    row = await _declaration_row(db, declaration_id)
    found = await db.execute(
        select(texts.c.language, texts.c.sha256)
        .where(texts.c.declaration_id == declaration_id)
        .order_by(texts.c.language)
    )
    view = _declaration_view(row)
    return DeclarationDetail(
        **view.model_dump(),
        priorities=[Priority(**p) for p in json.loads(row._mapping["priorities"])],
        texts=[TextView(language=t.language, sha256=t.sha256) for t in found],
        source=row._mapping["source"],
    )


async def text(db: AsyncSession, declaration_id: str, language: str) -> DeclarationText:
    await _declaration_row(db, declaration_id)
    found = await db.execute(
        select(texts).where(texts.c.declaration_id == declaration_id, texts.c.language == language)
    )
    row = found.first()
    if row is None:
        raise NotFound(f"declaration {declaration_id!r} has no text in {language!r}")
    return DeclarationText(language=row.language, sha256=row.sha256, text=row.text)


def _row_view(row: Row[tuple[object, ...]], at: datetime) -> SignatoryRowView:
    m = row._mapping
    withdrawn_at = m["withdrawn_at"]
    withdrawn = withdrawn_at is not None and withdrawn_at <= at
    return SignatoryRowView(
        state=m["state"],
        state_name=all_states()[m["state"]].name,
        signatory_name=m["signatory_name"],
        signatory_title=m["signatory_title"],
        capacity=m["capacity"],
        signed_at=m["signed_at"],
        withdrawn_at=withdrawn_at if withdrawn else None,
        withdrawal_reason=m["withdrawal_reason"] if withdrawn else None,
        demo=m["demo"],
    )


async def status(db: AsyncSession, declaration_id: str, as_of: datetime) -> StatusView:
    """Per State, its latest signature made by ``as_of``, withdrawn or not by then: what a
    replay of the log up to that instant folds to (``domain.status_as_of``)."""
    await _declaration_row(db, declaration_id)
    found = await db.execute(
        select(signatures)
        .where(signatures.c.declaration_id == declaration_id, signatures.c.signed_at <= as_of)
        .order_by(signatures.c.state, signatures.c.signed_at)
    )
    latest: dict[str, Row[tuple[object, ...]]] = {}
    for row in found:
        latest[row.state] = row
    rows = sorted(
        (_row_view(row, as_of) for row in latest.values()),
        key=lambda view: (view.state_name, view.state),
    )
    withdrawn = sum(1 for view in rows if view.withdrawn_at is not None)
    return StatusView(
        declaration_id=declaration_id,
        as_of=as_of,
        signed=len(rows) - withdrawn,
        withdrawn=withdrawn,
        rows=rows,
    )


CSV_COLUMNS = (
    "state",
    "state_name",
    "signed_at",
    "signatory_name",
    "signatory_title",
    "capacity",
    "withdrawn_at",
    "withdrawal_reason",
    "demo",
)


def status_csv(view: StatusView) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in view.rows:
        values = row.model_dump(mode="json")
        writer.writerow(["" if values[c] is None else _cell(values[c]) for c in CSV_COLUMNS])
    return out.getvalue()


def _cell(value: object) -> str:
    text = "true" if value is True else "false" if value is False else str(value)
    # A cell that a spreadsheet would run as a formula is quoted as text.
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


async def state(db: AsyncSession, declaration_id: str, state_code: str, at: datetime) -> StateView:
    await _declaration_row(db, declaration_id)
    current = await status(db, declaration_id, at)
    signature = next(
        (r for r in current.rows if r.state == state_code and r.withdrawn_at is None), None
    )
    powers = await db.execute(
        select(full_powers)
        .where(full_powers.c.declaration_id == declaration_id, full_powers.c.state == state_code)
        .order_by(full_powers.c.recorded_at)
    )
    people = await db.execute(
        select(signatories)
        .where(signatories.c.delegation == state_code)
        .order_by(signatories.c.name, signatories.c.participant_id)
    )
    return StateView(
        state=state_code,
        state_name=all_states()[state_code].name,
        signature=signature,
        full_powers=[
            FullPowersView(
                participant_id=p.participant_id, instrument=p.instrument, recorded_at=p.recorded_at
            )
            for p in powers
        ],
        delegation=[
            SignatoryView(
                participant_id=p.participant_id,
                name=p.name,
                title=p.title,
                category=p.category,
                status=p.status,
            )
            for p in people
        ],
    )
