"""The HTTP edge: requests in, use cases and queries out. Nothing here decides anything.

Who may do what:

* anyone may register, and gets back a participant token for their own record;
* a participant acts on their own record only (amend, withdraw, enrol, leave, read), with
  ``Authorization: Bearer <participant token>``; another participant's token gets 403;
* organisers (the organiser token) may do all of that for anyone, and alone approve, reject,
  check people in and out, read lists, delegations, rosters and counts.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Header, HTTPException, Query, Request, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from agora_events.catalogue import validate_aggregate_id
from agora_events.contracts.registration import Category
from agora_events.http import (
    After,
    CallerOf,
    CommandAccepted,
    CorrelationId,
    IdempotencyKey,
    accepted,
    caller_of,
    organiser_required,
)
from agora_events.service import Reader, commands_of, reading, use_cases
from agora_events.text import Line, Prose
from agora_events.tokens import participant_token

from . import queries, states
from .application import EnrolmentOutcome, Registration
from .domain import KEEP, Amend, check_participant_id, participant_id_from_badge
from .settings import RegistrationSettings

log = logging.getLogger("agora.registration.http")
ORGANISER = "organiser"
Commands = Annotated[Registration, Depends(commands_of(Registration))]


Authorization = Annotated[str | None, Header()]


async def acting_for(
    request: Request, participant_id: str, authorization: Authorization = None
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


# -- requests and answers ------------------------------------------------------------------


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


_DELEGATION = (
    "ISO 3166-1 alpha-3 code of the UN Member State or observer State represented "
    "(GET /states); leave out for an international organisation"
)


class RegisterRequest(_Request):
    name: Line = Field(min_length=1, max_length=200)
    email: Line = Field(min_length=3, max_length=320)
    category: Category
    delegation: Line | None = Field(default=None, max_length=100, description=_DELEGATION)
    organisation: Line = Field(default="", max_length=300)
    title: Line | None = Field(default=None, max_length=300)
    language: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$",
        max_length=35,
        description="BCP 47 tag of the language to write to the participant in, e.g. fr",
    )


class AmendRequest(_Request):
    """Only the fields sent change. Contact details keep the approval; a new category or
    delegation sends the accreditation back to review. ``null`` clears title or delegation."""

    name: Line | None = Field(default=None, min_length=1, max_length=200)
    email: Line | None = Field(default=None, min_length=3, max_length=320)
    organisation: Line | None = Field(default=None, max_length=300)
    title: Line | None = Field(default=None, max_length=300)
    category: Category | None = None
    delegation: Line | None = Field(default=None, max_length=100, description=_DELEGATION)


class RejectRequest(_Request):
    reason: Prose = Field(min_length=1, max_length=1000)


class WithdrawRequest(_Request):
    reason: Prose | None = Field(default=None, max_length=1000)


class PassageRequest(_Request):
    gate: Line = Field(min_length=1, max_length=100)
    at: AwareDatetime | None = Field(default=None, description="When; now if left out")


class BadgePassageRequest(PassageRequest):
    badge: Line = Field(min_length=1, max_length=32, description="e.g. 7K2M-9QXD-C")


class EnrolRequest(_Request):
    session_id: Line = Field(min_length=1, max_length=128)


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


def _enrolment(outcome: EnrolmentOutcome) -> EnrolmentAccepted:
    return EnrolmentAccepted(
        **accepted(outcome).model_dump(), status=outcome.status, position=outcome.position
    )


def _when(at: datetime | None) -> datetime:
    return at if at is not None else datetime.now(UTC)


# -- routes ----------------------------------------------------------------------------------


def participants(settings: RegistrationSettings) -> APIRouter:
    """Registering, amending and reading participants."""
    router = APIRouter(tags=["participants"])
    organiser = Depends(organiser_required(settings.organiser_token.get_secret_value))
    secret = settings.participant_token_secret.get_secret_value

    # The two routes of a registrant's first minute (register, then read the record back
    # with ?after=) are the service's hottest. They declare their headers and query as
    # parameters of their own and call the helpers that the dependencies wrap: FastAPI
    # resolves each dependency anew on every request, which cost the pair 0.4-0.5 M
    # instructions a flow of 10.3 M (docs/architecture.md, bench/http_inprocess.py).
    @router.post("/participants", status_code=201)
    async def register(
        request: Request,
        body: RegisterRequest,
        key: IdempotencyKey = None,
        correlation: CorrelationId = None,
    ) -> RegistrationAccepted:
        registration = use_cases(request, Registration)
        caller = await caller_of(request, key, correlation)
        outcome = await registration.register(
            name=body.name,
            email=body.email,
            category=body.category,
            delegation=body.delegation,
            organisation=body.organisation,
            title=body.title,
            language=body.language,
            caller=caller.acting_as("registrant"),
        )
        token = participant_token(secret(), outcome.ids["participant_id"])
        return RegistrationAccepted(**accepted(outcome).model_dump(), participant_token=token)

    @router.patch("/participants/{participant_id}")
    async def amend(
        participant_id: str,
        body: AmendRequest,
        actor: Actor,
        registration: Commands,
        caller: CallerOf,
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
        return accepted(await registration.amend(command, caller.acting_as(actor)))

    # Declared before /participants/{participant_id}, which would otherwise take the path.
    @router.get("/participants/duplicates", dependencies=[organiser])
    async def duplicates(db: Reader) -> list[queries.DuplicateGroup]:
        """Possible double registrations (same name and email, under review or approved),
        oldest first in each group, for an organiser to reject the extra ones."""
        return await queries.possible_duplicates(db)

    @router.get("/participants/{participant_id}")
    async def participant(
        request: Request,
        participant_id: str,
        authorization: Authorization = None,
        after: After = None,
    ) -> queries.ParticipantDetail:
        await acting_for(request, participant_id, authorization)
        check_participant_id(participant_id)
        async with reading(request, after) as db:
            return await queries.participant(db, participant_id)

    @router.get("/participants", dependencies=[organiser])
    async def list_participants(
        db: Reader,
        country: Annotated[str | None, Query(description="alpha-3 code")] = None,
        category: Category | None = None,
        status: Literal["submitted", "approved", "rejected", "withdrawn"] | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    ) -> queries.ParticipantPage:
        return await queries.list_participants(
            db, country=country, category=category, status=status, limit=limit, offset=offset
        )

    @router.get("/delegations/{country}", dependencies=[organiser])
    async def delegation(country: str, db: Reader) -> queries.DelegationView:
        return await queries.delegation(db, country)

    @router.get("/counts", dependencies=[organiser])
    async def counts(db: Reader) -> queries.Counts:
        return await queries.counts(db)

    @router.get("/states")
    async def list_states() -> list[StateView]:
        return [
            StateView(alpha3=s.alpha3, name=s.name, status=s.status)
            for s in states.all_states().values()
        ]

    return router


def accreditation(settings: RegistrationSettings) -> APIRouter:
    """The organisers' decisions on a participant, and the participant's withdrawal."""
    router = APIRouter(tags=["accreditation"])
    organiser = Depends(organiser_required(settings.organiser_token.get_secret_value))
    secret = settings.participant_token_secret.get_secret_value

    @router.post("/participants/{participant_id}/approve", dependencies=[organiser])
    async def approve(
        participant_id: str, registration: Commands, caller: CallerOf
    ) -> CommandAccepted:
        check_participant_id(participant_id)
        return accepted(await registration.approve(participant_id, caller.acting_as(ORGANISER)))

    @router.post("/participants/{participant_id}/reject", dependencies=[organiser])
    async def reject(
        participant_id: str, body: RejectRequest, registration: Commands, caller: CallerOf
    ) -> CommandAccepted:
        check_participant_id(participant_id)
        outcome = await registration.reject(
            participant_id, body.reason, caller.acting_as(ORGANISER)
        )
        return accepted(outcome)

    @router.post("/participants/{participant_id}/withdraw")
    async def withdraw(
        participant_id: str,
        actor: Actor,
        registration: Commands,
        caller: CallerOf,
        body: Annotated[WithdrawRequest | None, Body()] = None,
    ) -> CommandAccepted:
        check_participant_id(participant_id)
        reason = body.reason if body is not None else None
        outcome = await registration.withdraw(participant_id, reason, caller.acting_as(actor))
        return accepted(outcome)

    @router.get("/participants/{participant_id}/token", dependencies=[organiser])
    async def token(participant_id: str) -> TokenView:
        """Give a participant their token again (it is derived, never stored)."""
        check_participant_id(participant_id)
        return TokenView(
            participant_id=participant_id,
            participant_token=participant_token(secret(), participant_id),
        )

    return router


def venue(settings: RegistrationSettings) -> APIRouter:
    """Check-in and check-out at the gates (organisers)."""
    organiser = Depends(organiser_required(settings.organiser_token.get_secret_value))
    router = APIRouter(tags=["venue"], dependencies=[organiser])

    @router.post("/participants/{participant_id}/check-in")
    async def check_in(
        participant_id: str, body: PassageRequest, registration: Commands, caller: CallerOf
    ) -> CommandAccepted:
        check_participant_id(participant_id)
        outcome = await registration.check_in(
            participant_id, body.gate, _when(body.at), caller.acting_as(ORGANISER)
        )
        return accepted(outcome)

    @router.post("/participants/{participant_id}/check-out")
    async def check_out(
        participant_id: str, body: PassageRequest, registration: Commands, caller: CallerOf
    ) -> CommandAccepted:
        check_participant_id(participant_id)
        outcome = await registration.check_out(
            participant_id, body.gate, _when(body.at), caller.acting_as(ORGANISER)
        )
        return accepted(outcome)

    @router.post("/check-ins")
    async def check_in_by_badge(
        body: BadgePassageRequest, registration: Commands, caller: CallerOf
    ) -> CommandAccepted:
        """Check in whoever holds a badge, as a gate scanner does."""
        participant_id = participant_id_from_badge(body.badge)
        outcome = await registration.check_in(
            participant_id, body.gate, _when(body.at), caller.acting_as(ORGANISER)
        )
        return accepted(outcome)

    return router


def workshops(settings: RegistrationSettings) -> APIRouter:
    """Enrolment in workshop sessions, with capacity and waitlist."""
    router = APIRouter(tags=["workshops"])
    organiser = Depends(organiser_required(settings.organiser_token.get_secret_value))

    @router.post("/participants/{participant_id}/enrolments")
    async def enrol(
        participant_id: str,
        body: EnrolRequest,
        actor: Actor,
        registration: Commands,
        caller: CallerOf,
    ) -> EnrolmentAccepted:
        check_participant_id(participant_id)
        validate_aggregate_id(body.session_id)
        outcome = await registration.enrol(participant_id, body.session_id, caller.acting_as(actor))
        return _enrolment(outcome)

    @router.delete("/participants/{participant_id}/enrolments/{session_id}")
    async def leave(
        participant_id: str,
        session_id: str,
        actor: Actor,
        registration: Commands,
        caller: CallerOf,
    ) -> CommandAccepted:
        check_participant_id(participant_id)
        validate_aggregate_id(session_id)
        outcome = await registration.leave(participant_id, session_id, caller.acting_as(actor))
        return accepted(outcome)

    @router.get("/sessions")
    async def sessions(db: Reader) -> list[queries.SessionSummary]:
        """Workshop sessions with their capacity and how full they are (no names)."""
        return await queries.list_sessions(db)

    @router.get("/sessions/{session_id}", dependencies=[organiser])
    async def session(session_id: str, db: Reader) -> queries.SessionLists:
        return await queries.session_lists(db, session_id)

    return router


def routers(settings: RegistrationSettings) -> Sequence[APIRouter]:
    return [
        participants(settings),
        accreditation(settings),
        venue(settings),
        workshops(settings),
    ]
