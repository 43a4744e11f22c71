"""Fixtures shared by the kernel's tests."""

from __future__ import annotations

import pytest
from nats.aio.client import Client as NATS

from agora_events.store import EventStore

from .counter import registry


@pytest.fixture
def store(nats_client: NATS) -> EventStore:
    """An event store for the counter events of ``counter.py``, on fresh streams."""
    return EventStore(nats_client, registry=registry, source="/test")
