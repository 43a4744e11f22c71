"""The participant's language: an optional, additive field of the registration, for those
who write to them (notifications)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agora_events.contracts.registration import ParticipantRegistered

if TYPE_CHECKING:
    from tests.conftest import Api


async def test_a_registration_records_the_language_the_participant_asks_to_be_written_in(
    api: Api,
) -> None:
    registered = await api.register(language="fr-CA")
    participant_id = registered["ids"]["participant_id"]
    history = await api.service.store.read(f"registration.participant.{participant_id}.*")
    [event] = [r.event for r in history]
    assert isinstance(event, ParticipantRegistered)
    assert event.language == "fr-CA"


async def test_a_registration_without_a_language_records_none(api: Api) -> None:
    registered = await api.register()
    participant_id = registered["ids"]["participant_id"]
    history = await api.service.store.read(f"registration.participant.{participant_id}.*")
    assert history[0].event.model_dump()["language"] is None


async def test_a_language_that_is_no_bcp_47_tag_is_refused(api: Api) -> None:
    response = await api.client.post(
        "/participants",
        json={
            "name": "Ada Example",
            "email": "ada@example.org",
            "category": "delegate",
            "delegation": "UZB",
            "language": "French please",
        },
    )
    assert response.status_code == 422, response.text
    assert "language" in response.text
