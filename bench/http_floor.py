"""The floor under ``bench_http.py``: the same flow on the raw parts, nothing of Agora's.

A process serving, on uvicorn with httptools (as the service), a bare ASGI callable:

* ``POST /participants``: parse the JSON body, publish one event to JetStream with the
  concurrency guard an Agora append sends (``Nats-Expected-Last-Subject-Sequence`` on the
  aggregate's wildcard) and a ``Nats-Msg-Id``, answer 201 with the event's sequence;
* one projection task: pull up to 500 messages from a durable consumer, insert each into an
  SQLite file (WAL, ``synchronous=NORMAL``, as the read models) with the checkpoint in the same
  transaction (aiosqlite, no SQLAlchemy), acknowledge, and wake the readers waiting;
* ``GET /participants/{id}?after=<sequence>``: wait until the projection passed ``after``,
  then SELECT the row and answer it.

No validation beyond the JSON, no envelope, spans, metrics, logs, admission control or auth:
the least this flow can cost on this machine's nats-server, SQLite and HTTP server.

    python bench/http_floor.py --port P --nats URL --database PATH
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import aiosqlite
import nats
import uvicorn
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig

STREAM = "FLOOR"
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class Floor:
    def __init__(self, js: JetStreamContext, db: aiosqlite.Connection) -> None:
        self.js = js
        self.db = db
        self.position = 0
        self.advanced = asyncio.Condition()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["path"] == "/readyz":
            status, answer = 200, {"status": "ready"}
        elif scope["method"] == "POST":
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            status, answer = await self.register(json.loads(body))
        else:
            after = int(scope["query_string"].decode().partition("after=")[2] or 0)
            status, answer = await self.participant(scope["path"].rsplit("/", 1)[1], after)
        data = json.dumps(answer).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(data))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})

    async def register(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        participant = secrets.token_hex(5).upper()
        aggregate = f"floor.participant.{participant}"
        ack = await self.js.publish(
            f"{aggregate}.registered",
            json.dumps(body | {"participant_id": participant}).encode(),
            headers={
                "Nats-Msg-Id": participant,
                "Nats-Expected-Last-Subject-Sequence": "0",
                "Nats-Expected-Last-Subject-Sequence-Subject": f"{aggregate}.*",
            },
        )
        ids = {"participant_id": participant}
        return 201, {"ids": ids, "sequence": ack.seq, "participant_token": participant}

    async def participant(self, participant: str, after: int) -> tuple[int, dict[str, Any]]:
        async with self.advanced:
            await self.advanced.wait_for(lambda: self.position >= after)
        cursor = await self.db.execute(
            "SELECT participant_id, name, email FROM participants WHERE participant_id = ?",
            (participant,),
        )
        row = await cursor.fetchone()
        await cursor.close()
        if row is None:
            return 404, {"detail": "no such participant"}
        return 200, dict(zip(("participant_id", "name", "email"), row, strict=True))

    async def project(self) -> None:
        config = ConsumerConfig(ack_policy=AckPolicy.ALL)
        subscription = await self.js.pull_subscribe(
            "floor.>", durable="floor", stream=STREAM, config=config
        )
        while True:
            try:
                messages = await subscription.fetch(500, timeout=5)
            except nats.errors.TimeoutError:
                continue
            rows = [json.loads(m.data) for m in messages]
            last = messages[-1].metadata.sequence.stream
            await self.db.execute("BEGIN IMMEDIATE")
            await self.db.executemany(
                "INSERT INTO participants VALUES (?, ?, ?)",
                [(r["participant_id"], r["name"], r["email"]) for r in rows],
            )
            await self.db.execute("UPDATE checkpoint SET sequence = ?", (last,))
            await self.db.commit()
            await messages[-1].ack()
            async with self.advanced:
                self.position = last
                self.advanced.notify_all()


async def serve(port: int, url: str, database: str) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name=STREAM, subjects=["floor.>"], storage=StorageType.FILE))
    db = await aiosqlite.connect(database, isolation_level=None)
    for statement in (
        "PRAGMA journal_mode=WAL",
        "PRAGMA synchronous=NORMAL",
        "CREATE TABLE participants (participant_id TEXT PRIMARY KEY, name TEXT, email TEXT)",
        "CREATE TABLE checkpoint (sequence INTEGER)",
        "INSERT INTO checkpoint VALUES (0)",
    ):
        await db.execute(statement)
    floor = Floor(js, db)
    projecting = asyncio.create_task(floor.project())
    config = uvicorn.Config(floor, port=port, http="httptools", loop="asyncio", log_level="warning")
    try:
        await uvicorn.Server(config).serve()
    finally:
        projecting.cancel()
        await db.close()
        await nc.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--nats", required=True)
    parser.add_argument("--database", required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.nats, args.database))


if __name__ == "__main__":
    main()
