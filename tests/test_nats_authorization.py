"""The NATS users of deploy/base/nats.yaml, on a real nats-server: each service runs under its
own user, and nobody but the admin can write outside their context or change the streams."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
import yaml
from nats.aio.client import Client as NATS
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.errors import ServiceUnavailableError

from agora_agenda.importer import bundled_editions
from agora_agenda.main import AGENDA, import_file
from agora_agenda.settings import AgendaSettings
from agora_cli.main import main as agora
from agora_declarations.demo import load_demo, samarkand
from agora_declarations.main import DECLARATIONS
from agora_declarations.settings import DeclarationsSettings
from agora_events.audit import read_log
from agora_events.contracts.registration import ParticipantWithdrew
from agora_events.nats_server import EmbeddedNats
from agora_events.service import running
from agora_events.store import AppendOutcomeUnknown, EventStore, Expected
from agora_registration.main import REGISTRATION
from agora_registration.settings import RegistrationSettings

NATS_MANIFEST = Path(__file__).resolve().parents[1] / "deploy" / "base" / "nats.yaml"
USERS = (
    "admin",
    "agenda",
    "registration",
    "declarations",
    "notifications",
    "console",
    "subscriber",
)


# The runbook's recipe for an integration with a durable consumer of its own ("NATS
# accounts"): an export of that one consumer from AGORA, and an account importing it.
INTEGRATION_EXPORTS = """
          {service: "$JS.API.CONSUMER.INFO.REGISTRATION.warehouse", accounts: [WAREHOUSE]}
          {
            service: "$JS.API.CONSUMER.MSG.NEXT.REGISTRATION.warehouse", response_type: stream
            accounts: [WAREHOUSE]
          }
          {service: "$JS.ACK.REGISTRATION.warehouse.>", accounts: [WAREHOUSE]}
"""
INTEGRATION_ACCOUNT = """
      WAREHOUSE {
        users: [{user: warehouse, password: warehouse-secret}]
        imports: [
          {service: {account: AGORA, subject: "$JS.API.CONSUMER.INFO.REGISTRATION.warehouse"}}
          {service: {account: AGORA, subject: "$JS.API.CONSUMER.MSG.NEXT.REGISTRATION.warehouse"}}
          {service: {account: AGORA, subject: "$JS.ACK.REGISTRATION.warehouse.>"}}
        ]
      }
"""


def manifest_authorization() -> str:
    config_map = next(yaml.safe_load_all(NATS_MANIFEST.read_text()))
    return str(config_map["data"]["auth.conf"])


def with_integration_account(authorization: str) -> str:
    """The manifest's accounts with the runbook's integration added: its exports first in
    AGORA's (the only account that exports), its account last."""
    exports = authorization.index("exports: [") + len("exports: [")
    authorization = authorization[:exports] + INTEGRATION_EXPORTS + authorization[exports:]
    end_of_accounts = authorization.rindex("}")
    return authorization[:end_of_accounts] + INTEGRATION_ACCOUNT + authorization[end_of_accounts:]


@pytest.fixture(scope="module")
def secured_server() -> Iterator[EmbeddedNats]:
    """A server with the manifest's users, passwords from its environment as in the pod."""
    with tempfile.TemporaryDirectory(prefix="agora-auth-") as directory:
        home = Path(directory)
        (home / "auth.conf").write_text(with_integration_account(manifest_authorization()))
        (home / "server.conf").write_text("include ./auth.conf\n")
        passwords = {f"NATS_{user.upper()}_PASSWORD": f"{user}-secret" for user in USERS}
        server = EmbeddedNats(home / "jetstream", config_file=home / "server.conf")
        server.environment = passwords
        with server:
            yield server


def url(server: EmbeddedNats, user: str) -> str:
    return f"nats://{user}:{user}-secret@{server.host}:{server.port}"


@pytest.fixture(scope="module")
def streams(secured_server: EmbeddedNats) -> EmbeddedNats:
    """The streams job's work, under the admin user."""
    assert agora(["streams", "--nats-url", url(secured_server, "admin"), "init"]) == 0
    return secured_server


async def connected(server: EmbeddedNats, user: str) -> NATS:
    return await nats.connect(url(server, user), max_reconnect_attempts=1)


@pytest.fixture
async def admin(streams: EmbeddedNats) -> AsyncIterator[NATS]:
    nc = await connected(streams, "admin")
    yield nc
    await nc.close()


async def messages_in(admin: NATS, stream: str) -> int:
    return (await admin.jetstream().stream_info(stream)).state.messages


async def test_each_service_runs_its_commands_projections_and_reactor_under_its_own_user(
    streams: EmbeddedNats, tmp_path: Path
) -> None:
    agenda = AgendaSettings(
        nats_url=url(streams, "agenda"), database_url=f"sqlite+aiosqlite:///{tmp_path}/a.db"
    )
    imported = await import_file(agenda, bundled_editions()["unpsf-2025"])
    async with running(AGENDA, agenda) as runtime:
        await runtime.projections.wait_for(imported.sequence, stream="AGENDA", timeout=10)

    registration = RegistrationSettings(
        nats_url=url(streams, "registration"),
        database_url=f"sqlite+aiosqlite:///{tmp_path}/r.db",
    )
    async with running(REGISTRATION, registration) as service:
        await service.reactor.wait_for(imported.sequence, timeout=10)  # reads AGENDA
        outcome = await service.commands.register(
            name="Dilnoza Yusupova",
            email="d.yusupova@example.org",
            category="delegate",
            delegation="UZB",
        )
        await service.projections.wait_for(outcome.sequence, stream="REGISTRATION", timeout=10)

    declarations = DeclarationsSettings(
        nats_url=url(streams, "declarations"),
        database_url=f"sqlite+aiosqlite:///{tmp_path}/d.db",
    )
    async with running(DECLARATIONS, declarations) as signing:
        await signing.reactor.wait_for(outcome.sequence, timeout=10)  # reads REGISTRATION
        participant_id = outcome.ids["participant_id"]
        assert (await signing.commands.signatory(participant_id)).delegation == "UZB"
        assert await load_demo(signing.commands)  # appends to DECLARATIONS
        opened = await signing.commands.declaration(samarkand().declaration_id)
        assert opened.is_open


async def test_a_replica_that_does_not_project_hears_checkpoints_only_its_own_service_announces(
    streams: EmbeddedNats, tmp_path: Path
) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path}/r.db"
    as_registration = url(streams, "registration")
    projecting = RegistrationSettings(nats_url=as_registration, database_url=database)
    following = RegistrationSettings(
        nats_url=as_registration, database_url=database, run_projections=False, run_reactors=False
    )
    same_account = await connected(streams, "registration")
    other_account = await connected(streams, "agenda")
    try:
        heard = await same_account.subscribe("_AGORA.checkpoint.>")
        overheard = await other_account.subscribe("_AGORA.checkpoint.>")
        await same_account.flush()
        await other_account.flush()
        async with running(REGISTRATION, projecting), running(REGISTRATION, following) as replica:
            outcome = await replica.commands.register(
                name="Aziz Karimov",
                email="a.karimov@example.org",
                category="delegate",
                delegation="UZB",
            )
            await replica.wait_for(outcome.sequence)
            announced = 0
            while announced < outcome.sequence:
                announced = int((await heard.next_msg(timeout=5)).data)
            assert [lag.state for lag in await replica.projections.lag()] == ["standby"] * len(
                replica.projections._loops
            )
        with pytest.raises(NatsTimeout):  # accounts do not share core subjects
            await overheard.next_msg(timeout=0.3)
    finally:
        await same_account.close()
        await other_account.close()


async def test_a_service_cannot_write_another_context_nor_change_a_stream(
    streams: EmbeddedNats, admin: NATS
) -> None:
    nc = await connected(streams, "agenda")
    try:
        store = EventStore(nc, timeout=0.5)
        before = await messages_in(admin, "REGISTRATION")
        forged = ParticipantWithdrew(participant_id="p0000001", reason="forged")
        with pytest.raises(AppendOutcomeUnknown):  # the server drops it; no ack comes
            await store.append([forged], expected=Expected("registration.participant.p0000001.*"))
        with pytest.raises(NatsTimeout):  # refused: the request never reaches the server
            await nc.jetstream(timeout=0.5).delete_stream("AGENDA")
        assert await messages_in(admin, "REGISTRATION") == before
        await admin.jetstream().stream_info("AGENDA")  # still there
    finally:
        await nc.close()


async def test_a_subscriber_reads_live_and_past_events_but_cannot_write_or_consume(
    streams: EmbeddedNats, admin: NATS
) -> None:
    nc = await connected(streams, "subscriber")
    try:
        live = await nc.subscribe("feed.agenda.>")
        # A round trip on this connection: the answer comes after the server took the
        # subscription. (A flush right after connecting sometimes returned before that.)
        await nc.jetstream().account_info()
        await admin.jetstream().publish("agenda.room.r-test.renamed", b'{"room_id":"r-test"}')
        republished = await live.next_msg(timeout=2)  # the stream's republish of what it stored
        assert republished.subject == "feed.agenda.room.r-test.renamed"
        assert republished.headers and republished.headers["Nats-Stream"] == "AGENDA"
        history = [message.subject async for message in read_log(nc, "AGENDA")]
        assert history[-1] == "agenda.room.r-test.renamed"

        before = await messages_in(admin, "AGENDA")
        await nc.publish("agenda.room.r-test.renamed", b"{}")
        await nc.publish("feed.agenda.room.r-test.renamed", b"{}")
        await nc.flush()
        with pytest.raises(NatsTimeout):  # no consumer of its own: refused, never sent
            await nc.jetstream(timeout=0.5).add_consumer(
                "AGENDA", deliver_subject="agenda.room.x.added"
            )
        with pytest.raises(NatsTimeout):
            await nc.jetstream(timeout=0.5).delete_stream("AGENDA")
        assert await messages_in(admin, "AGENDA") == before
        with pytest.raises(NatsTimeout):  # its own publish on the feed reached nobody
            await live.next_msg(timeout=0.3)
    finally:
        await nc.close()


async def test_an_integration_reads_only_through_the_durable_consumer_made_for_it(
    streams: EmbeddedNats, admin: NATS
) -> None:
    js = admin.jetstream()
    for durable in ("warehouse", "a-service"):  # as an admin provisions them
        config = ConsumerConfig(durable_name=durable, ack_policy=AckPolicy.EXPLICIT)
        await js.add_consumer("REGISTRATION", config)
    await js.publish("registration.participant.p0000009.registered", b"{}")
    nc = await connected(streams, "warehouse")
    try:
        own = await nc.jetstream().pull_subscribe_bind("warehouse", stream="REGISTRATION")
        fetched = await own.fetch(1, timeout=2)
        await fetched[0].ack_sync()
        assert (await js.consumer_info("REGISTRATION", "warehouse")).ack_floor.stream_seq >= 1
        theirs = await nc.jetstream().pull_subscribe_bind("a-service", stream="REGISTRATION")
        with pytest.raises(ServiceUnavailableError):  # no import: nothing answers in its account
            await theirs.fetch(1, timeout=0.5)
        untouched = await js.consumer_info("REGISTRATION", "a-service")
        assert untouched.num_ack_pending == 0 and untouched.num_pending >= 1
    finally:
        await nc.close()
