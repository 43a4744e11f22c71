"""The HTTP edge: requests in, use cases and queries out. Nothing here decides anything.

Who may do what:

* anyone may register, and gets back a participant token for their own record;
* a participant acts on their own record only (amend, withdraw, enrol, leave, read), with
  ``Authorization: Bearer <participant token>``; another participant's token gets 403;
* organisers (the organiser token) may do all of that for anyone, and alone approve, reject,
  check people in and out, read lists, delegations, rosters and counts.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Protocol

from fastapi import Body, Depends, FastAPI, Header, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from agora_events.catalogue import validate_aggregate_id
from agora_events.contracts.registration import Category
from agora_events.http import (
    CommandAccepted,
    IdempotencyKey,
    Problem,
    install_edges,
    organiser_guard,
)

from . import queries, states
from .application import EnrolmentOutcome, Outcome, Registration
from .domain import KEEP, Amend, check_participant_id, participant_id_from_badge
from .settings import RegistrationSettings

log = logging.getLogger("agora.registration.http")
ORGANISER = "organiser"


class ReadModel(Protocol):
    """The read side as the API needs it: sessions for queries, and a bounded wait until
    the projections have applied a given REGISTRATION stream sequence."""

    def session(self) -> AsyncSession: ...

    async def wait_for(self, sequence: int) -> None: ...


Readiness = Callable[[], Awaitable[dict[str, Any]]]


def acting_for(
    request: Request, participant_id: str, authorization: Annotated[str | None, Header()] = None
) -> str:
    """Who acts on a participant's record: the organiser, or that participant."""
    settings: RegistrationSettings = request.app.state.settings
    if authorization is None or not authorization.startswith("Bearer "):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "send 'Authorization: Bearer <token>' with the participant token you got on "
            "registration, or an organiser token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    token = authorization.removeprefix("Bearer ").encode()
    if hmac.compare_digest(token, settings.organiser_token.get_secret_value().encode()):
        return ORGANISER
    own = participant_token(settings.participant_token_secret.get_secret_value(), participant_id)
    if hmac.compare_digest(token, own.encode()):
        return f"participant:{participant_id}"
    raise HTTPException(
        status.HTTP_403_FORBIDDEN, f"this token does not act for participant {participant_id}"
    )


Actor = Annotated[str, Depends(acting_for)]


def participant_token(secret: str, participant_id: str) -> str:
    """The bearer token a participant acts with: an HMAC of their id. Nothing is stored."""
    message = f"agora-participant:{participant_id}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


# -- requests and answers ------------------------------------------------------------------


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


_DELEGATION = (
    "ISO 3166-1 alpha-3 code of the UN Member State or observer State represented "
    "(GET /states); leave out for an international organisation"
)


class RegisterRequest(_Request):
    name: str = Field(min_length=1, max_length=200)
    email: str = Field(min_length=3, max_length=320)
    category: Category
    delegation: str | None = Field(default=None, max_length=100, description=_DELEGATION)
    organisation: str = Field(default="", max_length=300)
    title: str | None = Field(default=None, max_length=300)


class AmendRequest(_Request):
    """Only the fields sent change. Contact details keep the approval; a new category or
    delegation sends the accreditation back to review. ``null`` clears title or delegation."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    email: str | None = Field(default=None, min_length=3, max_length=320)
    organisation: str | None = Field(default=None, max_length=300)
    title: str | None = Field(default=None, max_length=300)
    category: Category | None = None
    delegation: str | None = Field(default=None, max_length=100, description=_DELEGATION)


class RejectRequest(_Request):
    reason: str = Field(min_length=1, max_length=1000)


class WithdrawRequest(_Request):
    reason: str | None = Field(default=None, max_length=1000)


class PassageRequest(_Request):
    gate: str = Field(min_length=1, max_length=100)
    at: AwareDatetime | None = Field(default=None, description="When; now if left out")


class BadgePassageRequest(PassageRequest):
    badge: str = Field(min_length=1, max_length=32, description="e.g. 7K2M-9QXD-C")


class EnrolRequest(_Request):
    session_id: str = Field(min_length=1, max_length=128)


class RegistrationAccepted(CommandAccepted):
    participant_token: str = Field(
        description="Keep it: send it as 'Authorization: Bearer <token>' to act on your record"
    )


class EnrolmentAccepted(CommandAccepted):
    status: Literal["enrolled", "waitlisted"]
    position: int | None = Field(default=None, description="Place on the waitlist, from 1")


class TokenView(BaseModel):
    participant_id: str
    participant_token: str


class StateView(BaseModel):
    alpha3: str
    name: str
    status: Literal["member", "observer"]


def _accepted(outcome: Outcome) -> CommandAccepted:
    return CommandAccepted(
        ids=outcome.ids,
        sequence=outcome.sequence,
        events=outcome.events,
        duplicate=outcome.duplicate,
    )


def _enrolment(outcome: EnrolmentOutcome) -> EnrolmentAccepted:
    return EnrolmentAccepted(
        **_accepted(outcome).model_dump(), status=outcome.status, position=outcome.position
    )


# -- the application -----------------------------------------------------------------------

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem} for code in (401, 403, 404, 409, 422, 503)
}
After = Annotated[
    int | None,
    Query(
        ge=0,
        le=2**63 - 1,  # what an SQL BIGINT holds; larger is no sequence anyway
        description="A sequence a command answered: wait (bounded) until the read model has it",
    ),
]


def create_app(
    registration: Registration,
    read_model: ReadModel,
    settings: RegistrationSettings,
) -> FastAPI:
    """The API; set ``app.state.readiness`` to a coroutine function reporting readiness."""
    app = FastAPI(
        title="Agora registration",
        version="1.0.0",
        description=__doc__,
        responses=_ERRORS,
    )
    app.state.settings = settings
    install_edges(app)

    organiser = Depends(organiser_guard(lambda: settings.organiser_token.get_secret_value()))

    async def read(after: int | None) -> AsyncSession:
        if after is not None:
            await read_model.wait_for(after)
        return read_model.session()

    # -- health ----------------------------------------------------------------------------

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz(request: Request) -> JSONResponse:
        readiness: Readiness | None = getattr(request.app.state, "readiness", None)
        report = await readiness() if readiness is not None else {"ready": True}
        return JSONResponse(status_code=200 if report.get("ready") else 503, content=report)

    # -- participants ----------------------------------------------------------------------

    @app.post("/participants", status_code=201, tags=["participants"])
    async def register(body: RegisterRequest, key: IdempotencyKey = None) -> RegistrationAccepted:
        outcome = await registration.register(
            name=body.name,
            email=body.email,
            category=body.category,
            delegation=body.delegation,
            organisation=body.organisation,
            title=body.title,
            key=key,
            actor="registrant",
        )
        pid = outcome.ids["participant_id"]
        token = participant_token(settings.participant_token_secret.get_secret_value(), pid)
        return RegistrationAccepted(**_accepted(outcome).model_dump(), participant_token=token)

    @app.patch("/participants/{participant_id}", tags=["participants"])
    async def amend(
        participant_id: str, body: AmendRequest, actor: Actor, key: IdempotencyKey = None
    ) -> CommandAccepted:
        check_participant_id(participant_id)
        given = body.model_fields_set
        command = Amend(
            participant_id,
            name=body.name if body.name is not None else KEEP,
            email=body.email if body.email is not None else KEEP,
            organisation=body.organisation if body.organisation is not None else KEEP,
            title=body.title if "title" in given else KEEP,
            category=body.category if body.category is not None else KEEP,
            delegation=body.delegation if "delegation" in given else KEEP,
        )
        return _accepted(await registration.amend(command, key=key, actor=actor))

    @app.post(
        "/participants/{participant_id}/approve", tags=["accreditation"], dependencies=[organiser]
    )
    async def approve(participant_id: str, key: IdempotencyKey = None) -> CommandAccepted:
        check_participant_id(participant_id)
        return _accepted(await registration.approve(participant_id, key=key, actor=ORGANISER))

    @app.post(
        "/participants/{participant_id}/reject", tags=["accreditation"], dependencies=[organiser]
    )
    async def reject(
        participant_id: str, body: RejectRequest, key: IdempotencyKey = None
    ) -> CommandAccepted:
        check_participant_id(participant_id)
        outcome = await registration.reject(participant_id, body.reason, key=key, actor=ORGANISER)
        return _accepted(outcome)

    @app.post("/participants/{participant_id}/withdraw", tags=["accreditation"])
    async def withdraw(
        participant_id: str,
        actor: Actor,
        body: Annotated[WithdrawRequest | None, Body()] = None,
        key: IdempotencyKey = None,
    ) -> CommandAccepted:
        check_participant_id(participant_id)
        reason = body.reason if body is not None else None
        return _accepted(await registration.withdraw(participant_id, reason, key=key, actor=actor))

    @app.get(
        "/participants/{participant_id}/token", tags=["accreditation"], dependencies=[organiser]
    )
    async def token(participant_id: str) -> TokenView:
        """Give a participant their token again (it is derived, never stored)."""
        check_participant_id(participant_id)
        secret = settings.participant_token_secret.get_secret_value()
        return TokenView(
            participant_id=participant_id,
            participant_token=participant_token(secret, participant_id),
        )

    # Declared before /participants/{participant_id}, which would otherwise take the path.
    @app.get("/participants/duplicates", tags=["participants"], dependencies=[organiser])
    async def duplicates(after: After = None) -> list[queries.DuplicateGroup]:
        """Possible double registrations (same name and email, under review or approved),
        oldest first in each group, for an organiser to reject the extra ones."""
        async with await read(after) as db:
            return await queries.possible_duplicates(db)

    @app.get("/participants/{participant_id}", tags=["participants"])
    async def participant(
        participant_id: str, _: Actor, after: After = None
    ) -> queries.ParticipantDetail:
        check_participant_id(participant_id)
        async with await read(after) as db:
            return await queries.participant(db, participant_id)

    @app.get("/participants", tags=["participants"], dependencies=[organiser])
    async def participants(
        country: Annotated[str | None, Query(description="alpha-3 code")] = None,
        category: Category | None = None,
        status: Literal["submitted", "approved", "rejected", "withdrawn"] | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
        after: After = None,
    ) -> queries.ParticipantPage:
        async with await read(after) as db:
            return await queries.list_participants(
                db, country=country, category=category, status=status, limit=limit, offset=offset
            )

    @app.get("/delegations/{country}", tags=["participants"], dependencies=[organiser])
    async def delegation(country: str, after: After = None) -> queries.DelegationView:
        async with await read(after) as db:
            return await queries.delegation(db, country)

    @app.get("/counts", tags=["participants"], dependencies=[organiser])
    async def counts(after: After = None) -> queries.Counts:
        async with await read(after) as db:
            return await queries.counts(db)

    @app.get("/states", tags=["participants"])
    async def list_states() -> list[StateView]:
        return [
            StateView(alpha3=s.alpha3, name=s.name, status=s.status)
            for s in states.all_states().values()
        ]

    # -- the venue -------------------------------------------------------------------------

    def _when(at: datetime | None) -> datetime:
        return at if at is not None else datetime.now(UTC)

    @app.post("/participants/{participant_id}/check-in", tags=["venue"], dependencies=[organiser])
    async def check_in(
        participant_id: str, body: PassageRequest, key: IdempotencyKey = None
    ) -> CommandAccepted:
        check_participant_id(participant_id)
        outcome = await registration.check_in(
            participant_id, body.gate, _when(body.at), key=key, actor=ORGANISER
        )
        return _accepted(outcome)

    @app.post("/participants/{participant_id}/check-out", tags=["venue"], dependencies=[organiser])
    async def check_out(
        participant_id: str, body: PassageRequest, key: IdempotencyKey = None
    ) -> CommandAccepted:
        check_participant_id(participant_id)
        outcome = await registration.check_out(
            participant_id, body.gate, _when(body.at), key=key, actor=ORGANISER
        )
        return _accepted(outcome)

    @app.post("/check-ins", tags=["venue"], dependencies=[organiser])
    async def check_in_by_badge(
        body: BadgePassageRequest, key: IdempotencyKey = None
    ) -> CommandAccepted:
        """Check in whoever holds a badge, as a gate scanner does."""
        participant_id = participant_id_from_badge(body.badge)
        outcome = await registration.check_in(
            participant_id, body.gate, _when(body.at), key=key, actor=ORGANISER
        )
        return _accepted(outcome)

    # -- workshops -------------------------------------------------------------------------

    @app.post("/participants/{participant_id}/enrolments", tags=["workshops"])
    async def enrol(
        participant_id: str, body: EnrolRequest, actor: Actor, key: IdempotencyKey = None
    ) -> EnrolmentAccepted:
        check_participant_id(participant_id)
        validate_aggregate_id(body.session_id)
        outcome = await registration.enrol(participant_id, body.session_id, key=key, actor=actor)
        return _enrolment(outcome)

    @app.delete("/participants/{participant_id}/enrolments/{session_id}", tags=["workshops"])
    async def leave(
        participant_id: str, session_id: str, actor: Actor, key: IdempotencyKey = None
    ) -> CommandAccepted:
        check_participant_id(participant_id)
        validate_aggregate_id(session_id)
        return _accepted(await registration.leave(participant_id, session_id, key=key, actor=actor))

    @app.get("/sessions", tags=["workshops"])
    async def sessions(after: After = None) -> list[queries.SessionSummary]:
        """Workshop sessions with their capacity and how full they are (no names)."""
        async with await read(after) as db:
            return await queries.list_sessions(db)

    @app.get("/sessions/{session_id}", tags=["workshops"], dependencies=[organiser])
    async def session(session_id: str, after: After = None) -> queries.SessionLists:
        async with await read(after) as db:
            return await queries.session_lists(db, session_id)

    return app
