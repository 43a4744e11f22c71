"""A served process keeps the objects of its start out of the garbage collector's way: a
full collection walks every tracked object while the event loop waits, and the start's
objects made each such pause 70-100 ms (``agora_events.service.settle_heap``)."""

from __future__ import annotations

import gc
import json

from agora_events.service import settle_heap
from tests.test_service_signals import environment, serve


async def test_a_served_process_freezes_the_objects_of_its_start(nats_client, nats_url, tmp_path):
    env = environment("registration", nats_url, tmp_path)
    async with serve("registration", env) as process:
        await process.logged("serving")
        lines = [json.loads(line) for line in process.lines if '"message": "serving"' in line]
    assert len(lines) == 1, process.log
    # Modules, classes, the routes and the models' schemas: about 110,000 on this code.
    assert lines[0]["frozen_objects"] > 10_000, lines[0]


def test_settling_the_heap_leaves_the_next_objects_to_the_collector():
    # No automatic collection meanwhile: one could move the new objects on by itself.
    collecting = gc.isenabled()
    gc.disable()
    try:
        frozen = settle_heap()
        made_since = [[number] for number in range(1_000)]
        assert frozen == gc.get_freeze_count() > 0
        assert gc.is_tracked(made_since[0])
        assert not any(made_since[0] is seen for seen in gc.get_objects(generation=2))
        gc.collect()
        assert any(made_since[0] is seen for seen in gc.get_objects(generation=2))
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()  # the rest of this test process collects as before
        if collecting:
            gc.enable()
