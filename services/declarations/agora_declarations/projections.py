"""Declarations' read models: tables, and the handlers that keep them in step with the log.

``declarations`` holds each declaration, its texts and the full powers recorded for it;
``signatures`` every signature ever made, withdrawn ones included (the depositary's record,
from which the status as of any instant is answered); ``signatories`` the participants as
registration's events described them. Handlers change rows and nothing else. Times are the
events' own (when a signature was made or withdrawn), so a rebuild yields the same rows.
"""

from __future__ import annotations

import json

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Index,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from agora_events.contracts.declarations import (
    DeclarationDrafted,
    DeclarationOpenedForSignature,
    DeclarationRedrafted,
    DeclarationSigned,
    DeclarationTextSet,
    FullPowersRecorded,
    FullPowersRevoked,
    ParticipantStandingRecorded,
    Priority,
    SignatureWindowExtended,
    SignatureWithdrawn,
)
from agora_events.projections import EventContext, Projection
from agora_events.projections.columns import UtcDateTime

# -- declarations -----------------------------------------------------------------------------

declaration_tables = MetaData()

declarations = Table(
    "declarations_declarations",
    declaration_tables,
    Column("declaration_id", String(128), primary_key=True),
    Column("title", Text, nullable=False),
    Column("edition_id", String(128), nullable=False),
    Column("launched_by", String(3), nullable=False),
    Column("launched_on", Date),
    Column("priorities", Text, nullable=False),
    Column("source", Text),
    Column("status", String(8), nullable=False),
    Column("opens_at", UtcDateTime),
    Column("closes_at", UtcDateTime),
    Column("open_to", String(32), nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("sequence", BigInteger, nullable=False),
)

texts = Table(
    "declarations_texts",
    declaration_tables,
    Column("declaration_id", String(128), primary_key=True),
    Column("language", String(35), primary_key=True),
    Column("text", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
)

full_powers = Table(
    "declarations_full_powers",
    declaration_tables,
    Column("declaration_id", String(128), primary_key=True),
    Column("state", String(3), primary_key=True),
    Column("participant_id", String(128), primary_key=True),
    Column("instrument", Text, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
)

declaration_view = Projection(
    "declarations",
    subjects=[
        "declarations.declaration.>",
        "declarations.state.*.full_powers_recorded",
        "declarations.state.*.full_powers_revoked",
    ],
    metadata=declaration_tables,
)


def _priorities(priorities: tuple[Priority, ...]) -> str:
    return json.dumps([p.model_dump() for p in priorities], ensure_ascii=False)


@declaration_view.on(DeclarationDrafted)
async def drafted(db: AsyncSession, event: DeclarationDrafted, ctx: EventContext) -> None:
    await db.execute(
        insert(declarations).values(
            declaration_id=event.declaration_id,
            title=event.title,
            edition_id=event.edition_id,
            launched_by=event.launched_by,
            launched_on=event.launched_on,
            priorities=_priorities(event.priorities),
            source=event.source,
            status="draft",
            open_to="member_states",
            updated_at=ctx.time,
            sequence=ctx.sequence,
        )
    )


async def _touch(
    db: AsyncSession, declaration_id: str, ctx: EventContext, **values: object
) -> None:
    await db.execute(
        update(declarations)
        .where(declarations.c.declaration_id == declaration_id)
        .values(updated_at=ctx.time, sequence=ctx.sequence, **values)
    )


@declaration_view.on(DeclarationRedrafted)
async def redrafted(db: AsyncSession, event: DeclarationRedrafted, ctx: EventContext) -> None:
    changed: dict[str, object] = {}
    if event.title is not None:
        changed["title"] = event.title
    if event.priorities is not None:
        changed["priorities"] = _priorities(event.priorities)
    await _touch(db, event.declaration_id, ctx, **changed)


@declaration_view.on(DeclarationTextSet)
async def text_set(db: AsyncSession, event: DeclarationTextSet, ctx: EventContext) -> None:
    await db.execute(
        delete(texts).where(
            texts.c.declaration_id == event.declaration_id, texts.c.language == event.language
        )
    )
    await db.execute(
        insert(texts).values(
            declaration_id=event.declaration_id,
            language=event.language,
            text=event.text,
            sha256=event.sha256,
        )
    )
    await _touch(db, event.declaration_id, ctx)


@declaration_view.on(DeclarationOpenedForSignature)
async def opened(db: AsyncSession, event: DeclarationOpenedForSignature, ctx: EventContext) -> None:
    await _touch(
        db,
        event.declaration_id,
        ctx,
        status="open",
        opens_at=event.opens_at,
        closes_at=event.closes_at,
        open_to=event.open_to,
    )


@declaration_view.on(SignatureWindowExtended)
async def extended(db: AsyncSession, event: SignatureWindowExtended, ctx: EventContext) -> None:
    await _touch(db, event.declaration_id, ctx, closes_at=event.closes_at)


@declaration_view.on(FullPowersRecorded)
async def powers_recorded(db: AsyncSession, event: FullPowersRecorded, ctx: EventContext) -> None:
    await _powers_revoked(db, event.declaration_id, event.state, event.participant_id)
    await db.execute(
        insert(full_powers).values(
            declaration_id=event.declaration_id,
            state=event.state,
            participant_id=event.participant_id,
            instrument=event.instrument,
            recorded_at=ctx.time,
        )
    )


@declaration_view.on(FullPowersRevoked)
async def powers_revoked(db: AsyncSession, event: FullPowersRevoked, ctx: EventContext) -> None:
    await _powers_revoked(db, event.declaration_id, event.state, event.participant_id)


async def _powers_revoked(
    db: AsyncSession, declaration_id: str, state: str, participant_id: str
) -> None:
    await db.execute(
        delete(full_powers).where(
            full_powers.c.declaration_id == declaration_id,
            full_powers.c.state == state,
            full_powers.c.participant_id == participant_id,
        )
    )


# -- signatures ---------------------------------------------------------------------------------

signature_tables = MetaData()

signatures = Table(
    "declarations_signatures",
    signature_tables,
    Column("declaration_id", String(128), primary_key=True),
    Column("state", String(3), primary_key=True),
    Column("signed_at", UtcDateTime, primary_key=True),
    Column("participant_id", String(128), nullable=False),
    Column("signatory_name", Text, nullable=False),
    Column("signatory_title", Text),
    Column("capacity", String(32), nullable=False),
    Column("language", String(35), nullable=False),
    Column("text_sha256", String(64), nullable=False),
    Column("demo", Boolean, nullable=False),
    Column("withdrawn_at", UtcDateTime),
    Column("withdrawal_reason", Text),
    Column("sequence", BigInteger, nullable=False),
    Index("ix_declarations_signatures_declaration_signed", "declaration_id", "signed_at"),
)

signature_view = Projection(
    "signatures",
    subjects=["declarations.state.*.signed", "declarations.state.*.signature_withdrawn"],
    metadata=signature_tables,
)


@signature_view.on(DeclarationSigned)
async def signed(db: AsyncSession, event: DeclarationSigned, ctx: EventContext) -> None:
    await db.execute(
        insert(signatures).values(
            declaration_id=event.declaration_id,
            state=event.state,
            signed_at=event.signed_at,
            participant_id=event.participant_id,
            signatory_name=event.signatory_name,
            signatory_title=event.signatory_title,
            capacity=event.capacity,
            language=event.language,
            text_sha256=event.text_sha256,
            demo=event.demo,
            sequence=ctx.sequence,
        )
    )


@signature_view.on(SignatureWithdrawn)
async def withdrawn(db: AsyncSession, event: SignatureWithdrawn, ctx: EventContext) -> None:
    await db.execute(
        update(signatures)
        .where(
            signatures.c.declaration_id == event.declaration_id,
            signatures.c.state == event.state,
            signatures.c.signed_at == event.signed_at,
        )
        .values(
            withdrawn_at=event.withdrawn_at,
            withdrawal_reason=event.reason,
            sequence=ctx.sequence,
        )
    )


# -- signatories ----------------------------------------------------------------------------------

signatory_tables = MetaData()

signatories = Table(
    "declarations_signatories",
    signatory_tables,
    Column("participant_id", String(128), primary_key=True),
    Column("name", Text, nullable=False),
    Column("title", Text),
    Column("category", String(32), nullable=False),
    Column("delegation", String(3)),
    Column("status", String(16), nullable=False),
    Column("sequence", BigInteger, nullable=False),
    Index("ix_declarations_signatories_delegation", "delegation"),
)

signatory_view = Projection(
    "signatories", subjects=["declarations.participant.>"], metadata=signatory_tables
)


@signatory_view.on(ParticipantStandingRecorded)
async def standing(db: AsyncSession, event: ParticipantStandingRecorded, ctx: EventContext) -> None:
    await db.execute(
        delete(signatories).where(signatories.c.participant_id == event.participant_id)
    )
    await db.execute(
        insert(signatories).values(
            participant_id=event.participant_id,
            name=event.name,
            title=event.title,
            category=event.category,
            delegation=event.delegation,
            status=event.status,
            sequence=ctx.sequence,
        )
    )


def all_projections() -> list[Projection]:
    return [declaration_view, signature_view, signatory_view]
