"""Two replicas on one read model: one projects, the other only serves, and a client of the
one that serves still reads its own writes."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.conftest import Api


async def test_a_replica_that_does_not_project_serves_a_registrant_their_own_registration(
    serving_replica: Api,
) -> None:
    registered = await serving_replica.register(name="Malika Tosheva")
    participant_id = registered["ids"]["participant_id"]
    response = await serving_replica.client.get(
        f"/participants/{participant_id}",
        params={"after": registered["sequence"]},
        headers=serving_replica.bearer(registered["participant_token"]),
    )
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Malika Tosheva"


async def test_a_replica_that_does_not_project_is_ready_and_says_it_stands_by(
    serving_replica: Api,
) -> None:
    ready = await serving_replica.client.get("/readyz")
    assert ready.status_code == 200, ready.text
    states = {check["state"] for check in ready.json()["checks"]["projections"]}
    assert states == {"standby"}
