"""The batching writer's logic, against an in-memory sink (pure logic; the real store is
exercised end to end in test_api_data and test_store)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection

import pytest

from bridge.errors import Overloaded, StoreRejected, StoreUnavailable
from bridge.write.batcher import Batcher


class RecordingSink:
    def __init__(self, delay: float = 0.0) -> None:
        self.bodies: list[bytes] = []
        self.delay = delay
        self.fail_with: Exception | None = None
        self.reject_containing: bytes | None = None
        self.devices: list[Collection[str] | None] = []

    async def write(self, body: bytes, devices: Collection[str] | None = None,
                    current: object = None) -> None:
        self.devices.append(devices)
        await asyncio.sleep(self.delay)
        if self.fail_with is not None:
            raise self.fail_with
        if self.reject_containing is not None and self.reject_containing in body:
            raise StoreRejected("bad line")
        self.bodies.append(body)


async def test_size_trigger_flushes_before_linger() -> None:
    sink = RecordingSink()
    batcher = Batcher(sink, max_points=4, linger=30.0)
    await batcher.start()
    await asyncio.wait_for(asyncio.gather(*(batcher.submit(b"p%d" % i, 1) for i in range(4))), 5)
    assert sink.bodies == [b"p0\np1\np2\np3"]
    await batcher.close()


async def test_the_sink_learns_whose_lines_a_batch_holds() -> None:
    sink = RecordingSink()
    batcher = Batcher(sink, max_points=3, linger=30.0)
    await batcher.start()
    await asyncio.wait_for(asyncio.gather(batcher.submit(b"a", 1, "dev-a"),
                                          batcher.submit(b"b", 1, "dev-b"),
                                          batcher.submit(b"c", 1, "dev-a")), 5)
    # One submission that does not say: the sink must read the devices from the lines.
    await asyncio.wait_for(asyncio.gather(batcher.submit(b"d", 1, "dev-a"),
                                          batcher.submit(b"e", 1),
                                          batcher.submit(b"f", 1, "dev-c")), 5)
    assert sink.bodies == [b"a\nb\nc", b"d\ne\nf"]
    assert sink.devices == [{"dev-a", "dev-b"}, None]
    await batcher.close()


async def test_an_idle_writer_writes_at_once() -> None:
    sink = RecordingSink()
    batcher = Batcher(sink, max_points=1000, linger=30.0)
    await batcher.start()
    # With a 30 s linger, only "the first batch after a quiet spell goes at once" can
    # finish this in time.
    await asyncio.wait_for(asyncio.gather(batcher.submit(b"a", 1), batcher.submit(b"b", 1)), 5)
    assert sink.bodies == [b"a\nb"]
    await batcher.close()


async def test_submissions_within_a_linger_of_the_last_batch_go_out_together() -> None:
    sink = RecordingSink()
    batcher = Batcher(sink, max_points=1000, linger=1.0)
    await batcher.start()
    first = asyncio.create_task(batcher.submit(b"a", 1))
    await asyncio.wait_for(_until(lambda: sink.bodies == [b"a"]), 5)  # at once: idle
    later = []
    for body in (b"b", b"c", b"d"):
        later.append(asyncio.create_task(batcher.submit(body, 1)))
        await asyncio.sleep(0.01)
    assert sink.bodies == [b"a"]  # held: "a" went out less than a linger ago
    await asyncio.wait_for(asyncio.gather(first, *later), 5)
    assert sink.bodies == [b"a", b"b\nc\nd"]
    await batcher.close()


async def test_a_steady_stream_is_written_once_per_linger_not_per_submission() -> None:
    sink = RecordingSink()
    linger = 0.02
    batcher = Batcher(sink, max_points=100_000, linger=linger)
    await batcher.start()
    loop = asyncio.get_running_loop()
    started = loop.time()
    waiting = []
    for i in range(100):
        waiting.append(asyncio.create_task(batcher.submit(b"%d" % i, 1)))
        await asyncio.sleep(0.001)
    await asyncio.gather(*waiting)
    elapsed = loop.time() - started
    # At most one batch starts per linger (none here is full), however slow the loop ran.
    assert len(sink.bodies) <= elapsed / linger + 2
    assert b"\n".join(sink.bodies).split(b"\n") == [b"%d" % i for i in range(100)]
    await batcher.close()


class GatedSink(RecordingSink):
    """Holds each write until the test opens its gate; records when writes start."""

    def __init__(self) -> None:
        super().__init__()
        self.started: list[bytes] = []
        self.gates: list[asyncio.Event] = []

    async def write(self, body: bytes, devices: Collection[str] | None = None,
                    current: object = None) -> None:
        gate = asyncio.Event()
        self.started.append(body)
        self.gates.append(gate)
        await gate.wait()
        self.bodies.append(body)


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.001)


async def _held_first_write(linger: float) -> tuple[GatedSink, Batcher, asyncio.Task[None]]:
    """A started batcher whose first write (``a``) is in flight and held at its gate."""
    sink = GatedSink()
    batcher = Batcher(sink, max_points=1000, linger=linger)
    await batcher.start()
    first = asyncio.create_task(batcher.submit(b"a", 1))
    await asyncio.wait_for(_until(lambda: len(sink.started) == 1), 5)
    return sink, batcher, first


async def test_linger_bounds_the_wait_behind_a_slow_write() -> None:
    sink, batcher, first = await _held_first_write(linger=0.02)
    second = asyncio.create_task(batcher.submit(b"b", 1))
    # The first write never ends by itself: only the linger can start the second.
    await asyncio.wait_for(_until(lambda: len(sink.started) == 2), 5)
    assert sink.started == [b"a", b"b"]
    for gate in sink.gates:
        gate.set()
    await asyncio.gather(first, second)
    await batcher.close()


async def test_concurrent_submissions_share_writes_and_keep_order() -> None:
    sink = RecordingSink(delay=0.01)
    batcher = Batcher(sink, max_points=50, linger=0.001)
    await batcher.start()
    await asyncio.gather(*(batcher.submit(b"%d" % i, 1) for i in range(200)))
    assert len(sink.bodies) < 200
    assert b"\n".join(sink.bodies).split(b"\n") == [b"%d" % i for i in range(200)]
    assert all(len(body.split(b"\n")) <= 50 for body in sink.bodies)
    await batcher.close()


async def test_close_drains_everything_submitted() -> None:
    sink = RecordingSink(delay=0.01)
    batcher = Batcher(sink, max_points=10, linger=10.0)
    await batcher.start()
    waiting = [asyncio.create_task(batcher.submit(b"x%d" % i, 1)) for i in range(25)]
    await asyncio.sleep(0)
    await batcher.close()
    await asyncio.gather(*waiting)
    assert sum(len(b.split(b"\n")) for b in sink.bodies) == 25
    with pytest.raises(Overloaded):
        await batcher.submit(b"late", 1)


async def test_unavailable_store_fails_every_waiter() -> None:
    sink = RecordingSink()
    sink.fail_with = StoreUnavailable("down")
    batcher = Batcher(sink, max_points=10, linger=0.001)
    await batcher.start()
    results = await asyncio.gather(*(batcher.submit(b"a", 1) for _ in range(3)),
                                   return_exceptions=True)
    assert all(isinstance(r, StoreUnavailable) for r in results)
    await batcher.close()


async def test_a_rejected_submission_does_not_poison_its_batch() -> None:
    sink = RecordingSink()
    sink.reject_containing = b"poison"
    batcher = Batcher(sink, max_points=10, linger=0.01)
    await batcher.start()
    results = await asyncio.gather(batcher.submit(b"good1", 1), batcher.submit(b"poison", 1),
                                   batcher.submit(b"good2", 1), return_exceptions=True)
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], StoreRejected)
    assert sink.bodies == [b"good1", b"good2"]
    await batcher.close()


async def test_overload_is_refused_at_once() -> None:
    sink = RecordingSink(delay=0.2)
    batcher = Batcher(sink, max_points=5, linger=0.0, max_pending_points=10)
    await batcher.start()
    first = asyncio.create_task(batcher.submit(b"a", 5))
    await asyncio.sleep(0.01)  # now being written
    queued = [asyncio.create_task(batcher.submit(b"b", 5)) for _ in range(2)]
    await asyncio.sleep(0)
    with pytest.raises(Overloaded):
        await batcher.submit(b"c", 5)
    await asyncio.gather(first, *queued)
    await batcher.close()
