"""Commands sent to the other services through their HTTP APIs (the console appends to no
stream). One client per process, made when the service starts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from .domain import Direction
from .settings import ConsoleSettings


@dataclass(frozen=True, slots=True)
class Accepted:
    sequence: int


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int
    detail: str


class Unreachable(Exception):
    pass


class Services:
    """The console's use cases: each sends one command to the service that owns it."""

    def __init__(
        self, settings: ConsoleSettings, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.settings = settings
        self.transport = transport

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=self.settings.service_timeout,
            transport=self.transport,
            headers={"Authorization": f"Bearer {self.settings.outgoing_token}"},
        )

    async def passage(self, participant_id: str, direction: Direction) -> Accepted | Refusal:
        """Check a participant in or out at the console's gate, through registration."""
        path = "check-in" if direction == "in" else "check-out"
        return await self._registration(
            f"/participants/{participant_id}/{path}", {"gate": self.settings.gate_name}
        )

    async def readiness(self) -> list[tuple[str, dict[str, Any] | None]]:
        """Each service's own ``/readyz`` answer (its projections' and reactors' lag), or
        None when it does not answer."""
        urls = {
            "agenda": self.settings.agenda_url,
            "registration": self.settings.registration_url,
            "declarations": self.settings.declarations_url,
            "notifications": self.settings.notifications_url,
        }
        found: list[tuple[str, dict[str, Any] | None]] = []
        async with self._client() as http:
            for name, url in urls.items():
                try:
                    response = await http.get(f"{url.rstrip('/')}/readyz", timeout=5)
                    answer: dict[str, Any] | None = response.json()
                except (httpx.HTTPError, ValueError):
                    answer = None
                found.append((name, answer))
        return found

    async def approve(self, participant_id: str) -> Accepted | Refusal:
        return await self._registration(f"/participants/{participant_id}/approve", None)

    async def reject(self, participant_id: str, reason: str) -> Accepted | Refusal:
        return await self._registration(
            f"/participants/{participant_id}/reject", {"reason": reason}
        )

    async def _registration(self, path: str, body: dict[str, str] | None) -> Accepted | Refusal:
        url = f"{self.settings.registration_url.rstrip('/')}{path}"
        try:
            async with self._client() as http:
                response = await http.post(
                    url,
                    json=body,
                    headers={"Idempotency-Key": f"console-{uuid.uuid4().hex}"},
                )
        except httpx.HTTPError as exc:
            raise Unreachable(str(exc)) from exc
        if response.status_code >= 500:
            raise Unreachable(f"registration answered {response.status_code}")
        if response.status_code >= 400:
            try:
                detail = str(response.json().get("detail") or response.reason_phrase)
            except ValueError:
                detail = response.reason_phrase
            return Refusal(response.status_code, detail)
        return Accepted(int(response.json()["sequence"]))
