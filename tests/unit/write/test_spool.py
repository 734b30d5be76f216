"""The on-disk spool: pure file logic in tmp_path, no servers."""

from __future__ import annotations

import errno
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.write.spool import MAGIC, Spool, SpoolError, SpoolFull

ROOT = Path(__file__).resolve().parents[3]
HEADER = 12


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.seg"))


def drain(spool: Spool, *, max_records: int = 1000, max_bytes: int = 1 << 20,
          commit: bool = True) -> list[bytes]:
    out: list[bytes] = []
    while True:
        got, cursor = spool.read(max_records, max_bytes)
        if not got:
            return out
        out += got
        if not commit:
            return out
        spool.commit(cursor)


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    with Spool(tmp_path / "spool", max_bytes=1 << 20, segment_bytes=1 << 16) as s:
        yield s


def reopen(directory: Path, *, segment_bytes: int = 1 << 16) -> Spool:
    """A not yet opened Spool; ``with`` opens it."""
    return Spool(directory, max_bytes=1 << 20, segment_bytes=segment_bytes)


def test_record_format_is_as_documented(spool: Spool, tmp_path: Path) -> None:
    spool.append([b"m v=1"])
    data = segments(tmp_path / "spool")[0].read_bytes()
    assert data == MAGIC + (5).to_bytes(4, "big") + zlib.crc32(b"m v=1").to_bytes(4, "big") \
        + b"m v=1"


def test_order_across_many_segments(tmp_path: Path) -> None:
    d = tmp_path / "s"
    expected = [b"rec %04d " % i + b"x" * (i % 37) for i in range(600)]
    with Spool(d, max_bytes=1 << 20, segment_bytes=300) as s:
        for i in range(0, 600, 7):
            s.append(expected[i:i + 7])
        assert len(segments(d)) > 50
        assert s.records == 600
        got = drain(s, max_records=13)
        assert got == expected
        assert s.empty and s.records == 0 and s.size_bytes == 0
        assert segments(d) == []
        s.append([b"after"])
        assert drain(s) == [b"after"]


def test_records_larger_than_max_bytes_come_one_at_a_time(spool: Spool) -> None:
    big = [bytes([65 + i]) * 5000 for i in range(3)]
    spool.append(big)
    for record in big:
        got, cursor = spool.read(100, 10)
        assert got == [record]
        spool.commit(cursor)
    assert spool.read(100, 10)[0] == []


def test_read_does_not_consume_and_respects_limits(spool: Spool) -> None:
    spool.append([b"a" * 10, b"b" * 10, b"c" * 10])
    assert spool.read(2, 1000)[0] == [b"a" * 10, b"b" * 10]
    assert spool.read(10, 25)[0] == [b"a" * 10, b"b" * 10]
    got, cursor = spool.read(10, 1000)
    assert len(got) == 3
    spool.commit(cursor)
    spool.commit(cursor)  # a stale cursor is harmless
    assert spool.empty


def test_reader_sees_appends_made_after_it_started(spool: Spool) -> None:
    spool.append([b"one"])
    got, cursor = spool.read(10, 1000)
    assert got == [b"one"]
    spool.append([b"two"])
    spool.commit(cursor)
    assert spool.read(10, 1000)[0] == [b"two"]


def test_reopen_after_commit_resumes_at_head(tmp_path: Path) -> None:
    d = tmp_path / "s"
    with Spool(d, max_bytes=1 << 20, segment_bytes=100) as s:
        s.append([b"r%d" % i for i in range(50)])
        got, cursor = s.read(20, 1 << 20)
        assert got == [b"r%d" % i for i in range(20)]
        s.commit(cursor)
    with Spool(d, max_bytes=1 << 20, segment_bytes=100) as s:
        assert s.records == 30
        assert drain(s) == [b"r%d" % i for i in range(20, 50)]
    with Spool(d, max_bytes=1 << 20, segment_bytes=100) as s:
        assert s.empty


def test_reopen_without_commit_rereads(tmp_path: Path) -> None:
    d = tmp_path / "s"
    with Spool(d, max_bytes=1 << 20) as s:
        s.append([b"a", b"b"])
        s.commit(s.read(1, 100)[1])
        assert drain(s, commit=False) == [b"b"]
    with Spool(d, max_bytes=1 << 20) as s:  # at-least-once: "b" was read, never committed
        assert drain(s) == [b"b"]


def write_five(d: Path) -> list[bytes]:
    records = [b"record number %d" % i for i in range(5)]
    with Spool(d, max_bytes=1 << 20) as s:
        s.append(records[:2])
        s.append(records[2:])
    return records


def test_torn_tail_is_dropped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    d = tmp_path / "s"
    records = write_five(d)
    seg = segments(d)[0]
    size = seg.stat().st_size
    os.truncate(seg, size - 5)
    with caplog.at_level(logging.WARNING, "devicedata.spool"), reopen(d) as s:
        assert s.records == 4
        assert drain(s) == records[:4]
    torn = HEADER + len(records[4]) - 5
    assert f"dropped {torn} bytes of torn tail at offset {size - 5 - torn}" in caplog.text
    assert not seg.exists()  # drained segments are deleted


def test_torn_header_is_dropped(tmp_path: Path) -> None:
    d = tmp_path / "s"
    records = write_five(d)
    with segments(d)[0].open("ab") as f:
        f.write(MAGIC + b"\x00\x00")
    with reopen(d) as s:
        assert drain(s) == records


def test_garbage_tail_is_dropped(tmp_path: Path) -> None:
    d = tmp_path / "s"
    records = write_five(d)
    seg = segments(d)[0]
    size = seg.stat().st_size
    with seg.open("ab") as f:
        f.write(b"\x00garbage" * 20)
    with reopen(d) as s:
        assert seg.stat().st_size == size
        s.append([b"later"])
        assert drain(s) == [*records, b"later"]


def test_checksum_flip_in_last_record_is_dropped(tmp_path: Path) -> None:
    d = tmp_path / "s"
    records = write_five(d)
    seg = segments(d)[0]
    data = bytearray(seg.read_bytes())
    data[-1] ^= 0x01
    seg.write_bytes(bytes(data))
    with reopen(d) as s:
        assert drain(s) == records[:4]


def test_checksum_flip_in_middle_record_raises(tmp_path: Path) -> None:
    d = tmp_path / "s"
    records = write_five(d)
    seg = segments(d)[0]
    data = bytearray(seg.read_bytes())
    second = HEADER + len(records[0])
    data[second + HEADER + 3] ^= 0x01
    seg.write_bytes(bytes(data))
    s = reopen(d)
    with pytest.raises(SpoolError, match=rf"{seg.name} at offset {second}"):
        s.open()
    assert seg.read_bytes() == bytes(data)  # nothing truncated
    assert not list(d.glob("head*"))
    with pytest.raises(SpoolError, match="at offset"):  # and the lock was released
        reopen(d).open()


def test_corrupt_length_in_middle_record_raises(tmp_path: Path) -> None:
    d = tmp_path / "s"
    write_five(d)
    seg = segments(d)[0]
    data = bytearray(seg.read_bytes())
    data[4:8] = (10_000).to_bytes(4, "big")
    seg.write_bytes(bytes(data))
    with pytest.raises(SpoolError, match="at offset 0"):
        reopen(d).open()


def test_bad_tail_of_an_earlier_segment_raises(tmp_path: Path) -> None:
    d = tmp_path / "s"
    with Spool(d, max_bytes=1 << 20, segment_bytes=50) as s:
        s.append([b"x" * 30 for _ in range(4)])
    first = segments(d)[0]
    os.truncate(first, first.stat().st_size - 1)
    with pytest.raises(SpoolError, match=first.name):
        reopen(d, segment_bytes=50).open()


def test_missing_segment_raises(tmp_path: Path) -> None:
    d = tmp_path / "s"
    with Spool(d, max_bytes=1 << 20, segment_bytes=50) as s:
        s.append([b"x" * 30 for _ in range(4)])
    segments(d)[1].unlink()
    with pytest.raises(SpoolError, match="missing"):
        reopen(d, segment_bytes=50).open()


def test_spool_full_writes_nothing_and_commit_frees_space(tmp_path: Path) -> None:
    d = tmp_path / "s"
    with Spool(d, max_bytes=400, segment_bytes=100) as s:
        for _ in range(10):
            s.append([b"p" * 28])  # 40 bytes framed
        before = {p.name: p.read_bytes() for p in segments(d)}
        with pytest.raises(SpoolFull):
            s.append([b"q"])
        with pytest.raises(SpoolFull):
            s.append([b"q" * 400])
        assert {p.name: p.read_bytes() for p in segments(d)} == before
        assert s.records == 10
        # Committing part of the backlog deletes whole segments, which frees room.
        s.commit(s.read(5, 1 << 20)[1])
        s.append([b"r" * 28])
        assert s.records == 6
        assert drain(s) == [b"p" * 28] * 5 + [b"r" * 28]
        s.append([b"s" * 300])


def test_failed_write_leaves_no_partial_record(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "s"
    real_write = os.write

    def half_then_enospc(fd: int, data: bytes | memoryview) -> int:
        if len(data) > 100:
            real_write(fd, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    with Spool(d, max_bytes=1 << 20) as s:
        s.append([b"first"])
        size = segments(d)[0].stat().st_size
        monkeypatch.setattr(os, "write", half_then_enospc)
        with pytest.raises(SpoolError, match="No space left"):
            s.append([b"x" * 500])
        monkeypatch.undo()
        assert segments(d)[0].stat().st_size == size
        assert s.records == 1
        s.append([b"second"])
    with Spool(d, max_bytes=1 << 20) as s:
        assert drain(s) == [b"first", b"second"]


def test_second_spool_on_same_dir_is_refused(tmp_path: Path) -> None:
    d = tmp_path / "s"
    with Spool(d, max_bytes=1000):
        with pytest.raises(SpoolError, match="another process uses this spool dir"):
            Spool(d, max_bytes=1000).open()
        child = subprocess.run(
            [sys.executable, "-c",
             "import sys; from pathlib import Path\n"
             "from bridge.write.spool import Spool, SpoolError\n"
             "try: Spool(Path(sys.argv[1]), max_bytes=1000).open()\n"
             "except SpoolError as e: print(e); sys.exit(3)\n",
             str(d)],
            cwd=ROOT, capture_output=True, text=True, timeout=30, check=False)
        assert child.returncode == 3, child.stderr
        assert "another process" in child.stdout
    with Spool(d, max_bytes=1000):  # released on close
        pass


def test_concurrent_appends_while_reading(tmp_path: Path) -> None:
    writers, per_writer = 4, 300
    with Spool(tmp_path / "s", max_bytes=1 << 24, segment_bytes=4096) as s:
        def write(w: int) -> None:
            for i in range(per_writer):
                s.append([b"%d %d a" % (w, i), b"%d %d b" % (w, i)])

        threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
        for t in threads:
            t.start()
        got: list[bytes] = []
        deadline = time.monotonic() + 30
        while len(got) < writers * per_writer * 2 and time.monotonic() < deadline:
            batch, cursor = s.read(37, 1 << 20)
            got += batch
            s.commit(cursor)
        for t in threads:
            t.join()
        assert s.empty and s.read(10, 100)[0] == []
    assert len(got) == writers * per_writer * 2
    for w in range(writers):
        mine = [g for g in got if g.startswith(b"%d " % w)]
        assert mine == [b"%d %d %s" % (w, i, x) for i in range(per_writer) for x in (b"a", b"b")]


def test_dead_letter(spool: Spool, tmp_path: Path) -> None:
    spool.dead_letter(b"m,t=1 v=1\nm,t=2 v=x", "400: field type\nconflict")
    spool.dead_letter(b"n v=2\n", "bad")
    lines = (tmp_path / "spool" / "rejected.lp").read_text().splitlines()
    assert len(lines) == 5
    assert lines[0].startswith("# 20") and lines[0].endswith(" 400: field type conflict")
    assert lines[1:3] == ["m,t=1 v=1", "m,t=2 v=x"]
    assert lines[3].endswith(" bad") and lines[4] == "n v=2"
    assert spool.empty


def test_bookkeeping(tmp_path: Path) -> None:
    d = tmp_path / "s"
    with Spool(d, max_bytes=1 << 20, segment_bytes=64) as s:
        assert s.empty and s.records == 0 and s.size_bytes == 0
        s.append([b"a" * 20, b"b" * 20, b"c" * 20])
        assert not s.empty and s.records == 3 and s.size_bytes == 96
        got, cursor = s.read(1, 1000)
        assert got == [b"a" * 20] and s.records == 3  # reading consumes nothing
        s.commit(cursor)
        assert s.records == 2 and s.size_bytes == 64
    with Spool(d, max_bytes=1 << 20, segment_bytes=64) as s:
        assert s.records == 2 and s.size_bytes == 64
        drain(s)
        assert s.empty and s.size_bytes == 0
    with pytest.raises(SpoolError, match="not open"):
        s.append([b"x"])


SIZE = "lambda i, j: 4_000_000 if i % 7 == 6 and j == 0 else (i * 7 + j) % 900"
CHILD = f"""
import sys
from pathlib import Path
from bridge.write.spool import Spool
size = {SIZE}
s = Spool(Path(sys.argv[1]), max_bytes=1 << 30, segment_bytes=20_000)
s.open()
i = 0
while True:
    s.append([b"%d.%d|" % (i, j) + bytes([97 + (i + j) % 26]) * size(i, j)
              for j in range(1 + i % 5)])
    i += 1
    print(i, flush=True)
"""


def expected_records() -> Iterator[bytes]:
    size = eval(SIZE)  # the very function the child uses
    i = 0
    while True:
        for j in range(1 + i % 5):
            yield b"%d.%d|" % (i, j) + bytes([97 + (i + j) % 26]) * size(i, j)
        i += 1


@pytest.mark.parametrize("round_", range(5))
def test_sigkill_mid_append_loses_nothing_acknowledged(tmp_path: Path, round_: int) -> None:
    d = tmp_path / "s"
    with subprocess.Popen([sys.executable, "-c", CHILD, str(d)], cwd=ROOT,
                          stdout=subprocess.PIPE, text=True) as child:
        assert child.stdout is not None
        first = child.stdout.readline()  # it is appending now
        assert first.strip() == "1"
        time.sleep(0.1 + 0.1 * round_)  # some kills land inside a 4 MB write
        os.kill(child.pid, signal.SIGKILL)
        reported = [first, *child.stdout]
    assert child.returncode == -signal.SIGKILL
    acknowledged = int(reported[-1]) if reported[-1].endswith("\n") else int(reported[-2])
    assert acknowledged > 3
    with Spool(d, max_bytes=1 << 30, segment_bytes=20_000) as s:
        got = drain(s, max_records=500)
    must_have = sum(1 + i % 5 for i in range(acknowledged))
    assert must_have <= len(got) <= must_have + 1 + acknowledged % 5
    # In order and intact; an unacknowledged batch may be there, in part or whole.
    assert got == [r for r, _ in zip(expected_records(), range(len(got)), strict=False)]
