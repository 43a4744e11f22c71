"""The event catalogue over HTTP, so that ``ce-dataschema`` resolves on every service.

``GET /events/schemas/{type}.json`` answers the JSON Schema of one event type, exactly the
text committed in docs/events/schemas/; ``GET /events/schemas`` lists the types and
``GET /events/asyncapi.json`` the AsyncAPI description, whose relative ``$ref``s resolve to
the schemas beside it. Rendered once, when the router is built.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response

from .catalogue import SCHEMA_PATH, EventRegistry, catalogue, render_asyncapi, render_schemas
from .contracts import load_all

SCHEMA_MEDIA_TYPE = "application/schema+json"
CACHE = "public, max-age=300"


def schemas_router(registry: EventRegistry | None = None) -> APIRouter:
    """The routes, for the platform's catalogue unless another registry is given."""
    if registry is None:
        load_all()
        registry = catalogue
    schemas = {
        name.removesuffix(".json"): text.encode() for name, text in render_schemas(registry).items()
    }
    asyncapi = render_asyncapi(registry).encode()
    router = APIRouter(tags=["event catalogue"])
    base = SCHEMA_PATH.rstrip("/")

    @router.get(base, summary="The event types whose schemas are served here")
    async def event_types() -> list[str]:
        return sorted(schemas)

    @router.get(
        base + "/{event_type}.json",
        summary="The JSON Schema (draft 2020-12) of one event type: what ce-dataschema names",
        response_class=Response,
        responses={200: {"content": {SCHEMA_MEDIA_TYPE: {}}}, 404: {}},
    )
    async def event_schema(event_type: str) -> Response:
        body = schemas.get(event_type)
        if body is None:
            raise HTTPException(
                404, f"no event type {event_type!r} in the catalogue; GET {base} lists them"
            )
        return Response(body, media_type=SCHEMA_MEDIA_TYPE, headers={"Cache-Control": CACHE})

    @router.get(
        "/events/asyncapi.json",
        summary="The AsyncAPI 3.0 description of the event streams",
        response_class=Response,
    )
    async def asyncapi_document() -> Response:
        return Response(asyncapi, media_type="application/json", headers={"Cache-Control": CACHE})

    return router
