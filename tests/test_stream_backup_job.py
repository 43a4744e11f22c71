"""The nightly stream backup as its CronJob runs it, and the runbook's restore from it
(docs/operations.md, "Backups and restore"), on the production NATS cluster: the
StatefulSet's three nodes from their rendered ConfigMap, streams of three replicas, TLS on the
client port. The job's script runs as the manifest has it, with only its volume's path moved
to a temporary folder and the image's tools taken from this environment."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import nats.errors
import pytest

from agora_events.connection import connect
from agora_events.contracts.agenda import RoomAdded
from agora_events.store import EventStore, Expected
from agora_events.streams import STREAMS, ensure_streams
from tests.rendered import NatsCluster, environment, mounted, named, nats_cluster, pod_spec

STREAM_NAMES = sorted(spec.name for spec in STREAMS.values())
BACKUP_VOLUME = "/backup"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    yield from nats_cluster(tmp_path_factory.mktemp("nats"))


def job_environment(cluster: NatsCluster) -> dict[str, str]:
    """The backup container's variables, its CA path leading to this machine's file."""
    spec = pod_spec(named("CronJob", "agora-stream-backup"))["spec"]
    container = spec["containers"][0]
    variables = environment(container, cluster.secret_values())
    local = mounted(spec, container, variables, cluster.secret_files())
    tools = str(Path(sys.executable).parent)  # the image's `agora` is this environment's
    return {**local, "PATH": f"{tools}{os.pathsep}{os.environ.get('PATH', '')}"}


def run_the_job(cluster: NatsCluster, volume: Path) -> subprocess.CompletedProcess[str]:
    container = pod_spec(named("CronJob", "agora-stream-backup"))["spec"]["containers"][0]
    script = container["args"][0].replace(BACKUP_VOLUME, str(volume))
    return subprocess.run(
        [*container["command"], script],
        env=job_environment(cluster),
        cwd=volume.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )


def run_agora(cluster: NatsCluster, *argv: str) -> subprocess.CompletedProcess[str]:
    """An ``agora`` command in a pod made from the CronJob's template (the runbook's Job)."""
    return subprocess.run(
        ["agora", *argv],
        env=job_environment(cluster),
        capture_output=True,
        text=True,
        timeout=120,
    )


async def _prepare(cluster: NatsCluster) -> int:
    """The streams (three replicas, as the streams Job makes them) and rooms in AGENDA."""
    nc = await connect(
        cluster.client_url("admin"), name="agora-tests", tls_ca_file=cluster.server_tls / "ca.crt"
    )
    try:
        for attempt in range(1, 6):  # as the Job's retries: a new cluster may time out at first
            try:
                await ensure_streams(nc.jetstream(), replicas=3)
                break
            except nats.errors.TimeoutError:
                if attempt == 5:
                    raise
        store = EventStore(nc, source="/agora-test")
        last = 0
        for number in range(1, 6):
            room = RoomAdded(
                room_id=f"hall-{number}",
                edition_id="unpsf-2025",
                name=f"Hall {number}",
                capacity=60,
            )
            scope = f"agenda.room.hall-{number}.*"
            appended = await store.append(
                [room], expected=Expected(scope), idempotency_key=f"add-hall-{number}"
            )
            last = appended.last_sequence
        return last
    finally:
        await nc.close()


async def _lose_and_inspect(cluster: NatsCluster, lose: bool) -> tuple[int, int, bool, int]:
    """Delete AGENDA (``lose``, as ``nats stream rm`` does), or read back its replicas, its
    messages, whether a command retried with its idempotency key is known as a duplicate,
    and the sequence a new append gets."""
    nc = await connect(
        cluster.client_url("admin"), name="agora-tests", tls_ca_file=cluster.server_tls / "ca.crt"
    )
    try:
        js = nc.jetstream()
        if lose:
            await js.delete_stream("AGENDA")
            return 0, 0, False, 0
        info = await js.stream_info("AGENDA")
        store = EventStore(nc, source="/agora-test")
        first = RoomAdded(room_id="hall-1", edition_id="unpsf-2025", name="Hall 1", capacity=60)
        retried = await store.append([first], expected=None, idempotency_key="add-hall-1")
        room = RoomAdded(room_id="new", edition_id="unpsf-2025", name="New Hall", capacity=10)
        appended = await store.append([room], expected=None)
        replicas = info.config.num_replicas or 0
        return replicas, info.state.messages, retried.duplicate, appended.last_sequence
    finally:
        await nc.close()


def test_the_nightly_job_backs_the_cluster_up_and_the_runbook_restores_a_lost_stream(
    cluster: NatsCluster, tmp_path: Path
) -> None:
    last = asyncio.run(_prepare(cluster))
    volume = tmp_path / "backup"
    volume.mkdir()
    expired = volume / "2000-01-01"
    expired.mkdir()
    old = time.time() - 20 * 24 * 3600
    os.utime(expired, (old, old))

    done = run_the_job(cluster, volume)
    assert done.returncode == 0, done.stdout + done.stderr
    night = volume / datetime.now(UTC).strftime("%Y-%m-%d")
    assert sorted(path.name for path in volume.iterdir()) == [night.name], "15 nights old: gone"
    assert sorted(path.name for path in night.iterdir()) == STREAM_NAMES
    assert f"5 messages (sequences 1-{last})" in done.stdout

    asyncio.run(_lose_and_inspect(cluster, lose=True))
    restored = run_agora(cluster, "streams", "restore", str(night), "--stream", "AGENDA")

    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert f"AGENDA         restored: 5 messages (sequences 1-{last})" in restored.stdout
    assert "matches the backup's messages, sequences and chain head" in restored.stdout
    assert "note:" not in restored.stdout  # the new leader knows the idempotency keys
    replicas, messages, duplicate, next_sequence = asyncio.run(
        _lose_and_inspect(cluster, lose=False)
    )
    assert (replicas, messages, duplicate, next_sequence) == (3, 5, True, last + 1)
