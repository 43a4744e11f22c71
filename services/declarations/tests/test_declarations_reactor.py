"""What registration says reaches declarations through the reactor, on a real nats-server:
who may sign follows accreditation, and a withdrawal stops a signature once it has arrived."""

from __future__ import annotations

import pytest

from agora_declarations.application import Declarations
from agora_declarations.reactor import Reactions
from agora_events.messaging import Delivery
from agora_events.store import EventStore

from .conftest import Api, Registration, new_id, open_declaration

pytestmark = pytest.mark.asyncio


async def test_an_approved_minister_registered_in_registration_may_sign(
    api: Api, registration: Registration
) -> None:
    commands: Declarations = api.service.commands
    declaration_id = new_id("reactor")
    sha256 = await open_declaration(commands, declaration_id)
    minister = await registration.registered("BRA", name="Ana Ministra")
    submitted = registration.sequence
    await api.service.reactor.wait_for(submitted, timeout=30)

    early = await api.sign(declaration_id, "BRA", minister, sha256)
    await registration.approved(minister)
    await api.service.reactor.wait_for(registration.sequence, timeout=30)
    signed = await api.sign(declaration_id, "BRA", minister, sha256)

    assert early.status_code == 409 and "accreditation is submitted" in early.json()["reason"]
    assert signed.status_code == 201, signed.text
    status = await api.status(declaration_id, after=signed.json()["sequence"])
    assert [(r["signatory_name"], r["capacity"]) for r in status["rows"]] == [
        ("Ana Ministra", "minister")
    ]


async def test_a_participant_withdrawn_in_registration_cannot_sign_once_that_has_arrived(
    api: Api, registration: Registration
) -> None:
    commands: Declarations = api.service.commands
    declaration_id = new_id("withdrawn")
    sha256 = await open_declaration(commands, declaration_id)
    minister = await registration.registered("ARG")
    await registration.approved(minister)
    await registration.withdrew(minister)
    await api.service.reactor.wait_for(registration.sequence, timeout=30)

    refused = await api.sign(declaration_id, "ARG", minister, sha256)

    assert refused.status_code == 409
    assert "accreditation is withdrawn" in refused.json()["reason"]
    assert (await commands.signatory(minister)).status == "withdrawn"


async def test_a_redelivered_registration_event_records_the_standing_once(
    registration: Registration, declarations: Declarations, store: EventStore
) -> None:
    minister = await registration.registered("CAN")
    sequence = await registration.approved(minister)
    reactions = Reactions(store, declarations)
    [approved] = await store.read(f"registration.participant.{minister}.approved")
    delivery = Delivery(approved.envelope, "REGISTRATION", sequence, attempt=2)

    await reactions.participant_changed(minister, delivery)
    await reactions.participant_changed(minister, delivery)
    await Reactions(store, Declarations(store)).participant_changed(minister, delivery)

    recorded = await store.read(f"declarations.participant.{minister}.*")
    assert [r.event.status for r in recorded] == ["approved"]  # type: ignore[attr-defined]
