"""The HTTP API. Organisers act as the depositary (the organiser token): they draft and open
declarations, record full powers, and record signatures and withdrawals for States. A
participant entitled to sign may sign with their own participant token (the one
registration gave them). Everyone may read an open declaration, its texts and its status;
a draft is shown to organisers only.
"""

from __future__ import annotations

import hmac
from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from agora_events.catalogue import validate_aggregate_id
from agora_events.contracts.declarations import OpenTo, Priority
from agora_events.decider import NotFound
from agora_events.http import CallerOf, CommandAccepted, accepted, organiser_guard
from agora_events.service import Reader, commands_of
from agora_events.text import Line, Prose
from agora_events.tokens import acts_for

from . import queries
from .application import Declarations
from .domain import known_state
from .settings import DeclarationsSettings

ORGANISER = "organiser"
Commands = Annotated[Declarations, Depends(commands_of(Declarations))]


def _is_organiser(request: Request, authorization: str | None) -> bool:
    settings: DeclarationsSettings = request.app.state.settings
    if authorization is None or not authorization.startswith("Bearer "):
        return False
    token = authorization.removeprefix("Bearer ").encode()
    return hmac.compare_digest(token, settings.organiser_token.get_secret_value().encode())


def organiser_or_nobody(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> bool:
    """Whether the request comes from an organiser (who may see drafts); never refuses."""
    return _is_organiser(request, authorization)


Organiser = Annotated[bool, Depends(organiser_or_nobody)]


def _id(declaration_id: str) -> str:
    try:
        return validate_aggregate_id(declaration_id)
    except ValueError:
        raise NotFound(f"there is no declaration {declaration_id!r}") from None


def _state(code: str) -> str:
    """State codes are upper case in the log; a lower-case path is read as meant."""
    return code.strip().upper()


# -- requests -------------------------------------------------------------------------------


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PriorityBody(_Request):
    number: int = Field(ge=1, le=100)
    title: Line = Field(min_length=1, max_length=300)


class DraftRequest(_Request):
    declaration_id: Line = Field(min_length=1, max_length=128, examples=["samarkand-2025"])
    title: Line = Field(min_length=1, max_length=500)
    edition_id: Line = Field(min_length=1, max_length=128, examples=["unpsf-2025"])
    launched_by: Line = Field(min_length=3, max_length=3, description="alpha-3 of the State")
    launched_on: date | None = None
    priorities: list[PriorityBody] = Field(default_factory=list, max_length=100)
    source: Prose | None = Field(default=None, max_length=2000)


class RedraftRequest(_Request):
    title: Line | None = Field(default=None, min_length=1, max_length=500)
    priorities: list[PriorityBody] | None = Field(default=None, max_length=100)


class TextRequest(_Request):
    text: Prose = Field(min_length=1, max_length=200_000)


class OpenRequest(_Request):
    opens_at: AwareDatetime | None = Field(default=None, description="Default: now")
    closes_at: AwareDatetime | None = Field(default=None, description="Default: no closing")
    open_to: OpenTo = "member_states"


class ExtendRequest(_Request):
    closes_at: AwareDatetime | None = Field(description="Later than now's closing, or null")


class FullPowersRequest(_Request):
    participant_id: Line = Field(min_length=1, max_length=128)
    instrument: Prose = Field(
        min_length=1,
        max_length=2000,
        examples=["Full powers signed by the Minister for Foreign Affairs, dated 20 June 2025"],
    )


class ReasonRequest(_Request):
    reason: Prose = Field(min_length=1, max_length=2000)


class SignRequest(_Request):
    participant_id: Line = Field(min_length=1, max_length=128, description="Who signs")
    language: Line = Field(min_length=2, max_length=35, examples=["en"])
    text_sha256: Line = Field(
        pattern="^[0-9a-fA-F]{64}$",
        description="The hash of the text the signatory was shown (GET the declaration)",
    )


class SignatureAccepted(CommandAccepted):
    signed_at: datetime | None = None


def _priorities(bodies: list[PriorityBody]) -> tuple[Priority, ...]:
    return tuple(Priority(number=p.number, title=p.title) for p in bodies)


def _as_of(as_of: datetime | None) -> datetime:
    return as_of if as_of is not None else datetime.now(UTC)


AsOf = Annotated[
    AwareDatetime | None,
    Query(description="An RFC 3339 instant with its offset; default: now"),
]


# -- routes ---------------------------------------------------------------------------------


def declarations(settings: DeclarationsSettings) -> APIRouter:
    """Drafting, opening and reading declarations."""
    router = APIRouter(tags=["declarations"])
    organiser = Depends(organiser_guard(settings.organiser_token.get_secret_value))

    async def shown(
        db: Reader, declaration_id: str, is_organiser: bool
    ) -> queries.DeclarationDetail:
        found = await queries.declaration(db, _id(declaration_id))
        if found.status == "draft" and not is_organiser:
            raise NotFound(f"there is no declaration {declaration_id!r}")
        return found

    @router.get("/declarations")
    async def list_declarations(
        db: Reader, is_organiser: Organiser
    ) -> list[queries.DeclarationView]:
        """Declarations open for signature (and, for organisers, drafts)."""
        found = await queries.list_declarations(db)
        return [d for d in found if is_organiser or d.status != "draft"]

    @router.get("/declarations/{declaration_id}")
    async def get_declaration(
        declaration_id: str, db: Reader, is_organiser: Organiser
    ) -> queries.DeclarationDetail:
        return await shown(db, declaration_id, is_organiser)

    @router.get("/declarations/{declaration_id}/texts/{language}")
    async def get_text(
        declaration_id: str, language: str, db: Reader, is_organiser: Organiser
    ) -> queries.DeclarationText:
        await shown(db, declaration_id, is_organiser)
        return await queries.text(db, declaration_id, language)

    @router.post("/declarations", status_code=201, dependencies=[organiser])
    async def draft(body: DraftRequest, commands: Commands, caller: CallerOf) -> CommandAccepted:
        outcome = await commands.draft(
            body.declaration_id,
            title=body.title,
            edition_id=body.edition_id,
            launched_by=body.launched_by.upper(),
            launched_on=body.launched_on,
            priorities=_priorities(body.priorities),
            source=body.source,
            caller=caller.acting_as(ORGANISER),
        )
        return accepted(outcome)

    @router.patch("/declarations/{declaration_id}", dependencies=[organiser])
    async def redraft(
        declaration_id: str, body: RedraftRequest, commands: Commands, caller: CallerOf
    ) -> CommandAccepted:
        priorities = None if body.priorities is None else _priorities(body.priorities)
        outcome = await commands.redraft(
            _id(declaration_id),
            title=body.title,
            priorities=priorities,
            caller=caller.acting_as(ORGANISER),
        )
        return accepted(outcome)

    @router.put("/declarations/{declaration_id}/texts/{language}", dependencies=[organiser])
    async def set_text(
        declaration_id: str,
        language: str,
        body: TextRequest,
        commands: Commands,
        caller: CallerOf,
    ) -> CommandAccepted:
        outcome = await commands.set_text(
            _id(declaration_id), language, body.text, caller=caller.acting_as(ORGANISER)
        )
        return accepted(outcome)

    @router.post("/declarations/{declaration_id}/open", dependencies=[organiser])
    async def open_for_signature(
        declaration_id: str, body: OpenRequest, commands: Commands, caller: CallerOf
    ) -> CommandAccepted:
        outcome = await commands.open_for_signature(
            _id(declaration_id),
            opens_at=body.opens_at,
            closes_at=body.closes_at,
            open_to=body.open_to,
            caller=caller.acting_as(ORGANISER),
        )
        return accepted(outcome)

    @router.post("/declarations/{declaration_id}/window", dependencies=[organiser])
    async def extend_window(
        declaration_id: str, body: ExtendRequest, commands: Commands, caller: CallerOf
    ) -> CommandAccepted:
        """Extend the signature window before it closes; it is never shortened."""
        outcome = await commands.extend_window(
            _id(declaration_id), body.closes_at, caller=caller.acting_as(ORGANISER)
        )
        return accepted(outcome)

    return router


def signatures(settings: DeclarationsSettings) -> APIRouter:
    """Signing, withdrawing, full powers, and the depositary's status table."""
    router = APIRouter(tags=["signatures"])
    organiser = Depends(organiser_guard(settings.organiser_token.get_secret_value))
    secret = settings.participant_token_secret.get_secret_value

    def signer(request: Request, body: SignRequest, authorization: str | None) -> str:
        if _is_organiser(request, authorization):
            return ORGANISER
        if authorization is None or not authorization.startswith("Bearer "):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "send 'Authorization: Bearer <token>': the signatory's participant token, or "
                "an organiser token",
                headers={"WWW-Authenticate": "Bearer"},
            )
        token = authorization.removeprefix("Bearer ")
        if acts_for(secret(), token, body.participant_id):
            return f"participant:{body.participant_id}"
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"this token does not act for participant {body.participant_id}: a participant "
            "signs with their own token",
        )

    @router.post("/declarations/{declaration_id}/states/{state}/signature", status_code=201)
    async def sign(
        declaration_id: str,
        state: str,
        body: SignRequest,
        request: Request,
        commands: Commands,
        caller: CallerOf,
        authorization: Annotated[str | None, Header()] = None,
    ) -> SignatureAccepted:
        """Sign for a State: by the depositary (organiser) for a participant, or by the
        participant with their own token. One signature per State stands at a time."""
        actor = signer(request, body, authorization)
        outcome = await commands.sign(
            _id(declaration_id),
            _state(state),
            participant_id=body.participant_id,
            language=body.language,
            text_sha256=body.text_sha256.lower(),
            caller=caller.acting_as(actor),
        )
        return SignatureAccepted(**accepted(outcome).model_dump(), signed_at=outcome.signed_at)

    @router.post(
        "/declarations/{declaration_id}/states/{state}/signature/withdraw",
        dependencies=[organiser],
    )
    async def withdraw(
        declaration_id: str,
        state: str,
        body: ReasonRequest,
        commands: Commands,
        caller: CallerOf,
    ) -> CommandAccepted:
        """Record that a State withdrew its signature (it may sign again later)."""
        outcome = await commands.withdraw_signature(
            _id(declaration_id), _state(state), body.reason, caller=caller.acting_as(ORGANISER)
        )
        return accepted(outcome)

    @router.post(
        "/declarations/{declaration_id}/states/{state}/full-powers",
        status_code=201,
        dependencies=[organiser],
    )
    async def record_full_powers(
        declaration_id: str,
        state: str,
        body: FullPowersRequest,
        commands: Commands,
        caller: CallerOf,
    ) -> CommandAccepted:
        """Record full powers (or credentials saying as much) the organiser has seen, so
        that a delegate who is not a head of State or Government, minister or head of
        delegation may sign for their State."""
        outcome = await commands.record_full_powers(
            _id(declaration_id),
            _state(state),
            body.participant_id,
            body.instrument,
            caller=caller.acting_as(ORGANISER),
        )
        return accepted(outcome)

    @router.post(
        "/declarations/{declaration_id}/states/{state}/full-powers/{participant_id}/revoke",
        dependencies=[organiser],
    )
    async def revoke_full_powers(
        declaration_id: str,
        state: str,
        participant_id: str,
        body: ReasonRequest,
        commands: Commands,
        caller: CallerOf,
    ) -> CommandAccepted:
        outcome = await commands.revoke_full_powers(
            _id(declaration_id),
            _state(state),
            participant_id,
            body.reason,
            caller=caller.acting_as(ORGANISER),
        )
        return accepted(outcome)

    @router.get("/declarations/{declaration_id}/status")
    async def signature_status(
        declaration_id: str, db: Reader, is_organiser: Organiser, as_of: AsOf = None
    ) -> queries.StatusView:
        """The depositary's table: per State, signed on, by whom and in what capacity,
        withdrawn on; as of now or of ``as_of``."""
        await _open_or_organiser(db, declaration_id, is_organiser)
        return await queries.status(db, declaration_id, _as_of(as_of))

    @router.get(
        "/declarations/{declaration_id}/status.csv",
        response_class=Response,
        responses={200: {"content": {"text/csv": {}}}},
    )
    async def signature_status_csv(
        declaration_id: str, db: Reader, is_organiser: Organiser, as_of: AsOf = None
    ) -> Response:
        await _open_or_organiser(db, declaration_id, is_organiser)
        view = await queries.status(db, declaration_id, _as_of(as_of))
        stamp = (
            view.as_of.strftime("%Y%m%dT%H%M%SZ")
            if view.as_of.utcoffset() == UTC.utcoffset(None)
            else view.as_of.strftime("%Y%m%dT%H%M%S%z")
        )
        filename = f"{declaration_id}-status-{stamp}.csv"
        return Response(
            queries.status_csv(view),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    @router.get("/declarations/{declaration_id}/states/{state}", dependencies=[organiser])
    async def state_view(declaration_id: str, state: str, db: Reader) -> queries.StateView:
        """A State's delegation as declarations knows it: who may sign, the full powers
        recorded, the signature that stands."""
        code = known_state(_state(state))
        return await queries.state(db, _id(declaration_id), code, datetime.now(UTC))

    return router


async def _open_or_organiser(db: AsyncSession, declaration_id: str, is_organiser: bool) -> None:
    found = await queries.declaration(db, _id(declaration_id))
    if found.status == "draft" and not is_organiser:
        raise NotFound(f"there is no declaration {declaration_id!r}")


def routers(settings: DeclarationsSettings) -> list[APIRouter]:
    return [declarations(settings), signatures(settings)]
