"""The console's pages. Public: the programme and the declaration. Organisers (signed in with
the organiser token): the gate. Every page is server-rendered from the console's own read
model; a page marked live follows ``/live/<context>`` and fetches itself again when told.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, date, datetime, time, timedelta
from importlib.resources import files
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy.ext.asyncio import AsyncSession

from agora_events.service import RuntimeOf, commands_of
from agora_events.streams import STREAMS

from . import i18n, queries
from .chain import ChainHeads
from .clients import Accepted, Services, Unreachable
from .domain import Admitted, Direction, Refused, verdict
from .live import LIVE_CONTEXTS, changes, checkpoint
from .settings import ConsoleSettings

SESSION_COOKIE = "agora_console_organiser"
LANGUAGE_COOKIE = "agora_console_lang"
SLOT_MINUTES = 5
STATIC = files("agora_console") / "static"

templates = Environment(
    loader=PackageLoader("agora_console", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
Commands = Annotated[Services, Depends(commands_of(Services))]


def _session_value(settings: ConsoleSettings) -> str:
    """What the organiser cookie holds: derived from the token, never the token itself."""
    key = settings.organiser_token.get_secret_value().encode()
    return hmac.new(key, b"agora-console-organiser", hashlib.sha256).hexdigest()


def is_organiser(request: Request) -> bool:
    settings: ConsoleSettings = request.app.state.settings
    found = request.cookies.get(SESSION_COOKIE, "")
    return hmac.compare_digest(found.encode(), _session_value(settings).encode())


class Page:
    """What every template is given: the language, its words, and who is looking."""

    def __init__(self, request: Request, lang: str | None = None) -> None:
        self.request = request
        self.language: i18n.Language = i18n.pick(
            lang, request.cookies.get(LANGUAGE_COOKIE), request.headers.get("accept-language")
        )
        self.chosen = lang in i18n.LANGUAGES
        self.t = i18n.translator(self.language)
        self.organiser = is_organiser(request)

    def url(self, path: str, **params: object) -> str:
        kept = {k: v for k, v in params.items() if v is not None and v != ""}
        return f"{path}?{urlencode(kept)}" if kept else path

    def other_language(self) -> str:
        lang = "fr" if self.language == "en" else "en"
        query = dict(self.request.query_params) | {"lang": lang}
        return f"{self.request.url.path}?{urlencode(query)}"

    def render(self, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
        body = templates.get_template(template).render(
            page=self,
            t=self.t,
            lang=self.language,
            long_date=lambda d: i18n.long_date(d, self.language),
            short_date=lambda d: i18n.short_date(d, self.language),
            moment=lambda at: i18n.moment(at, self.language),
            **values,
        )
        response = HTMLResponse(body, status_code=status_code)
        if self.chosen:
            response.set_cookie(LANGUAGE_COOKIE, self.language, max_age=365 * 86400, samesite="lax")
        return response


Lang = Annotated[str | None, Query(pattern="^(en|fr)$", description="en or fr")]


async def _reading(rt: RuntimeOf) -> Any:
    await rt.refuse_while_building()
    async with rt.session() as db:
        yield db


Db = Annotated[AsyncSession, Depends(_reading)]


async def _after(rt: RuntimeOf, context: str) -> int:
    return await checkpoint(rt.projections, context)


# -- the programme ------------------------------------------------------------------------


def _grid(programme: queries.Programme) -> dict[str, Any]:
    """Rows of SLOT_MINUTES from the day's first start to its last end, in the edition's
    time; each session placed in its room's column."""
    zone = programme.edition.zone
    if not programme.sessions:
        return {"blocks": [], "hours": [], "rows": 0}
    first = min(s.starts_at for s in programme.sessions).astimezone(zone)
    origin = first.replace(minute=first.minute - first.minute % 30, second=0, microsecond=0)

    def row(at: datetime) -> int:
        return int((at.astimezone(zone) - origin).total_seconds() // 60 // SLOT_MINUTES) + 2

    columns = {room.room_id: index + 2 for index, room in enumerate(programme.rooms)}
    blocks = [
        {
            "session": s,
            "row": row(s.starts_at),
            "span": max(1, row(s.ends_at) - row(s.starts_at)),
            "column": columns[s.room_id],
            "starts": s.starts_at.astimezone(zone),
            "ends": s.ends_at.astimezone(zone),
        }
        for s in programme.sessions
    ]
    last = max(
        row(s.starts_at) + max(1, row(s.ends_at) - row(s.starts_at)) for s in programme.sessions
    )
    hours = []
    at = origin
    while row(at) < last:
        hours.append({"label": f"{at:%H:%M}", "row": row(at)})
        at += timedelta(minutes=30)
    return {"blocks": blocks, "hours": hours, "rows": last}


def pages(settings: ConsoleSettings) -> APIRouter:
    router = APIRouter(tags=["pages"], default_response_class=HTMLResponse)

    @router.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("/programme", status_code=303)

    @router.get("/programme")
    async def programme(
        request: Request,
        rt: RuntimeOf,
        db: Db,
        lang: Lang = None,
        edition: str | None = None,
        day: date | None = None,
        room: str | None = None,
        kind: str | None = None,
        workshop: Annotated[int | None, Query(ge=1)] = None,
        version: Annotated[int | None, Query(ge=1)] = None,
    ) -> HTMLResponse:
        """The published programme: days as tabs, rooms as columns, sessions as blocks; the
        latest version, or ``?version=N``, with what it changed."""
        page = Page(request, lang)
        after = await _after(rt, "agenda")
        found = await queries.programme(
            db,
            edition,
            day,
            queries.Filters(room or None, kind or None, workshop),
            version,
            at=datetime.now(UTC),
        )
        return page.render(
            "programme.html",
            programme=found,
            grid=_grid(found) if found else None,
            editions=await queries.edition_ids(db),
            live="agenda",
            after=after,
        )

    @router.get("/sessions/{session_id}")
    async def session(
        request: Request, rt: RuntimeOf, db: Db, session_id: str, lang: Lang = None
    ) -> HTMLResponse:
        page = Page(request, lang)
        after = await _after(rt, "agenda")
        found = await queries.session(db, session_id)
        if found is None:
            return page.render("missing.html", 404, message=page.t("no_session"))
        edition, version, shown = found
        return page.render(
            "session.html",
            edition=edition,
            version=version,
            session=shown,
            starts=shown.starts_at.astimezone(edition.zone),
            ends=shown.ends_at.astimezone(edition.zone),
            calendar=f"{settings.calendar_base}/sessions/{session_id}/calendar.ics",
            live="agenda",
            after=after,
        )

    return router


# -- the declaration ------------------------------------------------------------------------


async def _as_of(db: AsyncSession, declaration_id: str, as_of: str | None) -> datetime:
    """``as_of`` as the declarations API reads it (an RFC 3339 instant with its offset), or a
    day (the end of that day in the edition's time zone); now when absent."""
    if not as_of:
        return datetime.now(UTC)
    try:
        day = date.fromisoformat(as_of)
    except ValueError:
        pass
    else:
        zone = await queries.declaration_zone(db, declaration_id)
        return datetime.combine(day, time.max, tzinfo=zone)
    try:
        instant = datetime.fromisoformat(as_of)
    except ValueError:
        raise HTTPException(
            422, f"{as_of!r} is neither a day (2025-06-24) nor an instant"
        ) from None
    if instant.tzinfo is None:
        raise HTTPException(422, f"{as_of!r} has no UTC offset (e.g. +05:00)")
    return instant


def declarations(settings: ConsoleSettings) -> APIRouter:
    router = APIRouter(tags=["declarations"], default_response_class=HTMLResponse)

    @router.get("/declaration", include_in_schema=False)
    async def first(request: Request, db: Db, lang: Lang = None) -> Response:
        found = await queries.declaration_ids(db)
        if not found:
            page = Page(request, lang)
            return page.render("missing.html", 404, message=page.t("no_declaration"))
        return RedirectResponse(
            Page(request, lang).url(f"/declarations/{found[0]}", lang=lang), 303
        )

    @router.get("/declarations/{declaration_id}")
    async def declaration(
        request: Request,
        rt: RuntimeOf,
        db: Db,
        declaration_id: str,
        lang: Lang = None,
        as_of: str | None = None,
    ) -> HTMLResponse:
        """The declaration and the depositary's status table, as of any instant."""
        page = Page(request, lang)
        after = await _after(rt, "declarations")
        found = await queries.declaration(db, declaration_id)
        if found is None:
            return page.render("missing.html", 404, message=page.t("no_declaration"))
        at = await _as_of(db, declaration_id, as_of)
        zone = await queries.declaration_zone(db, declaration_id)
        return page.render(
            "declaration.html",
            when=lambda moment: i18n.moment(moment.astimezone(zone), page.language),
            declaration=found,
            launched_by=queries.state_name(found.launched_by),
            status=await queries.status(db, declaration_id, at),
            as_of=as_of or "",
            as_of_day=as_of[:10] if as_of else "",
            live="declarations" if not as_of else None,
            after=after,
        )

    @router.get("/declarations/{declaration_id}/status.csv")
    async def status_csv(db: Db, declaration_id: str, as_of: str | None = None) -> Response:
        """The status table as CSV (the same columns as the declarations API's)."""
        if await queries.declaration(db, declaration_id) is None:
            raise HTTPException(404, f"no open declaration {declaration_id!r}")
        at = await _as_of(db, declaration_id, as_of)
        body = queries.status_csv(await queries.status(db, declaration_id, at))
        name = f"{declaration_id}-status-{at.date().isoformat()}.csv"
        return Response(
            body,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    return router


# -- the gate ---------------------------------------------------------------------------------


def gate(settings: ConsoleSettings) -> APIRouter:
    router = APIRouter(tags=["gate"], default_response_class=HTMLResponse)

    def _signed_in(request: Request, lang: str | None) -> Page | RedirectResponse:
        page = Page(request, lang)
        if not page.organiser:
            return RedirectResponse(page.url("/sign-in", next=request.url.path, lang=lang), 303)
        return page

    @router.get("/gate")
    async def gate_page(request: Request, db: Db, lang: Lang = None) -> Response:
        page = _signed_in(request, lang)
        if isinstance(page, RedirectResponse):
            return page
        return page.render("gate.html", answer=None, inside=await queries.inside_count(db))

    @router.post("/gate")
    async def pass_gate(
        request: Request,
        rt: RuntimeOf,
        services: Commands,
        db: Db,
        badge: Annotated[str, Form(max_length=64)],
        direction: Annotated[Direction, Form()] = "in",
        lang: Lang = None,
    ) -> Response:
        """Check the badge's holder in or out: decided here first, then by registration."""
        page = _signed_in(request, lang)
        if isinstance(page, RedirectResponse):
            return page
        holder = await queries.holder(db, badge)
        decided = verdict(badge, holder, direction)
        answer: dict[str, Any]
        if isinstance(decided, Refused):
            answer = {"ok": False, "reason": page.t(f"reason.{decided.reason}")}
        else:
            answer = await _send(rt, services, page, decided, direction)
        await db.rollback()  # read again after the passage: a new transaction
        return page.render(
            "gate.html",
            200 if answer["ok"] else 409,
            answer=answer | {"badge": badge, "direction": direction},
            inside=await queries.inside_count(db),
        )

    @router.get("/sign-in")
    async def sign_in_page(
        request: Request, lang: Lang = None, next: str = "/gate"
    ) -> HTMLResponse:
        return Page(request, lang).render("sign_in.html", next=_local(next), wrong=False)

    @router.post("/sign-in")
    async def sign_in(
        request: Request,
        token: Annotated[str, Form(max_length=500)],
        next: Annotated[str, Form()] = "/gate",
        lang: Lang = None,
    ) -> Response:
        page = Page(request, lang)
        expected = settings.organiser_token.get_secret_value().encode()
        if not hmac.compare_digest(token.encode(), expected):
            return page.render("sign_in.html", 401, next=_local(next), wrong=True)
        response = RedirectResponse(_local(next), status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            _session_value(settings),
            httponly=True,
            samesite="strict",
            secure=settings.env != "local",
            max_age=12 * 3600,
        )
        return response

    @router.post("/sign-out")
    async def sign_out() -> RedirectResponse:
        response = RedirectResponse("/programme", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    return router


def _local(path: str) -> str:
    """Only a path of this site to go back to after signing in (no open redirect)."""
    return path if path.startswith("/") and not path.startswith("//") else "/gate"


async def _send(
    rt: RuntimeOf, services: Services, page: Page, decided: Admitted, direction: Direction
) -> dict[str, Any]:
    holder = decided.holder
    try:
        sent = await services.passage(holder.participant_id, direction)
    except Unreachable:
        return {"ok": False, "reason": page.t("reason.unreachable")}
    if not isinstance(sent, Accepted):
        return {"ok": False, "reason": page.t("reason.service", detail=sent.detail)}
    # The next badge read answers from a read model that has this passage.
    await rt.projections.wait_for(
        sent.sequence, stream="REGISTRATION", timeout=rt.settings.read_your_writes_timeout
    )
    key = "welcome" if direction == "in" else "goodbye"
    return {"ok": True, "reason": page.t(key, name=holder.name)}


# -- live updates and assets ------------------------------------------------------------------


def live(settings: ConsoleSettings) -> APIRouter:
    router = APIRouter(tags=["live"])

    @router.get("/live/{context}", response_class=StreamingResponse)
    async def follow(
        rt: RuntimeOf, context: Literal["agenda", "declarations", "registration"], after: int = 0
    ) -> StreamingResponse:
        """Server-sent events: ``changed`` each time the console's read model has applied a
        new event of the context (after ``after``, its checkpoint when the page was made)."""
        assert context in LIVE_CONTEXTS
        return StreamingResponse(
            changes(rt.nc, rt.projections, context, after),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @router.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        kinds = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}
        suffix = name[name.rfind(".") :] if "." in name else ""
        asset = STATIC / name
        if "/" in name or suffix not in kinds or not asset.is_file():
            raise HTTPException(404, f"no asset {name!r}")
        return Response(
            asset.read_bytes(),
            media_type=kinds[suffix],
            headers={"Cache-Control": "public, max-age=300"},
        )

    return router


# -- accreditation, workshops, operations (organisers) ------------------------------------------

STATUSES = ("submitted", "approved", "rejected", "withdrawn")


def organisers(settings: ConsoleSettings) -> APIRouter:
    router = APIRouter(tags=["organisers"], default_response_class=HTMLResponse)

    def _signed_in(request: Request, lang: str | None) -> Page | RedirectResponse:
        page = Page(request, lang)
        if not page.organiser:
            return RedirectResponse(page.url("/sign-in", next=request.url.path, lang=lang), 303)
        return page

    async def _queue(
        page: Page,
        rt: RuntimeOf,
        db: AsyncSession,
        status: str,
        category: str | None,
        outcome: dict[str, Any] | None = None,
        status_code: int = 200,
    ) -> HTMLResponse:
        after = await _after(rt, "registration")
        return page.render(
            "accreditation.html",
            status_code,
            view=await queries.accreditation(db, status, category or None),
            statuses=STATUSES,
            outcome=outcome,
            live="registration",
            after=after,
            refresh=page.url("/accreditation", status=status, category=category),
        )

    @router.get("/accreditation")
    async def accreditation(
        request: Request,
        rt: RuntimeOf,
        db: Db,
        lang: Lang = None,
        status: Annotated[str, Query(pattern="^(submitted|approved|rejected|withdrawn)$")] = (
            "submitted"
        ),
        category: str | None = None,
    ) -> Response:
        """The accreditation queue by status and category, duplicates, delegations."""
        page = _signed_in(request, lang)
        if isinstance(page, RedirectResponse):
            return page
        return await _queue(page, rt, db, status, category)

    @router.post("/accreditation/{participant_id}")
    async def decide(
        request: Request,
        rt: RuntimeOf,
        services: Commands,
        db: Db,
        participant_id: str,
        decision: Annotated[Literal["approve", "reject"], Form()],
        reason: Annotated[str, Form(max_length=1000)] = "",
        status: Annotated[str, Form()] = "submitted",
        category: Annotated[str, Form()] = "",
        lang: Lang = None,
    ) -> Response:
        """Approve, or reject with a reason, through registration; a refusal shown inline."""
        page = _signed_in(request, lang)
        if isinstance(page, RedirectResponse):
            return page
        status = status if status in STATUSES else "submitted"
        person = await queries.applicant(db, participant_id)
        name = person.name if person else participant_id
        if decision == "reject" and not reason.strip():
            outcome = {"ok": False, "id": participant_id, "text": page.t("reason_required")}
            return await _queue(page, rt, db, status, category, outcome, 422)
        try:
            if decision == "approve":
                sent = await services.approve(participant_id)
            else:
                sent = await services.reject(participant_id, reason.strip())
        except Unreachable:
            outcome = {"ok": False, "id": participant_id, "text": page.t("reason.unreachable")}
            return await _queue(page, rt, db, status, category, outcome, 503)
        if not isinstance(sent, Accepted):
            text = page.t("reason.service", detail=sent.detail)
            outcome = {"ok": False, "id": participant_id, "text": text}
            return await _queue(page, rt, db, status, category, outcome, 409)
        await rt.projections.wait_for(
            sent.sequence, stream="REGISTRATION", timeout=rt.settings.read_your_writes_timeout
        )
        await db.rollback()  # read again after the decision: a new transaction
        key = "approved_one" if decision == "approve" else "rejected_one"
        outcome = {"ok": True, "id": participant_id, "text": page.t(key, name=name)}
        return await _queue(page, rt, db, status, category, outcome)

    @router.get("/workshops")
    async def workshop_places(
        request: Request, rt: RuntimeOf, db: Db, lang: Lang = None
    ) -> Response:
        """Each workshop session's places: enrolled against capacity, waitlist, promotions."""
        page = _signed_in(request, lang)
        if isinstance(page, RedirectResponse):
            return page
        after = await _after(rt, "registration")
        return page.render(
            "workshops.html",
            places=await queries.workshop_places(db),
            live="registration",
            after=after,
        )

    chain_heads = ChainHeads()

    @router.get("/operations")
    async def operations(
        request: Request, rt: RuntimeOf, services: Commands, lang: Lang = None
    ) -> Response:
        """The streams' last sequences and audit chain heads (as `agora audit export`
        computes them); each service's projection and reactor lag, as its /readyz says; the
        console's own projections and dead letters."""
        page = _signed_in(request, lang)
        if isinstance(page, RedirectResponse):
            return page
        js = rt.nc.jetstream()
        streams: list[dict[str, object]] = []
        for spec in STREAMS.values():
            try:
                info = await js.stream_info(spec.name)
            except Exception as exc:  # a stream missing or NATS away: say so on the page
                streams.append({"name": spec.name, "problem": type(exc).__name__})
            else:
                head = await chain_heads.head(
                    rt.nc, spec.name, str(info.created), info.state.last_seq
                )
                streams.append(
                    {
                        "name": spec.name,
                        "messages": info.state.messages,
                        "last": info.state.last_seq,
                        "head": head,
                    }
                )
        return page.render(
            "operations.html",
            streams=streams,
            lags=await rt.projections.lag(),
            dead_letters=await rt.projections.dead_letters(),
            readiness=await rt.readiness(),
            services=await services.readiness(),
        )

    return router


def routers(settings: ConsoleSettings) -> list[APIRouter]:
    return [
        pages(settings),
        declarations(settings),
        gate(settings),
        organisers(settings),
        live(settings),
    ]
