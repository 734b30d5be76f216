"""A local on-disk, append-only spool of opaque byte records, for when InfluxDB is down.

Layout of ``directory``: segment files ``NNNNNNNNNNNN.seg`` (consecutive numbers), ``head``
(the committed read position, text ``"<segment> <offset>\\n"``), ``.lock`` (``flock``ed
while a ``Spool`` is open) and ``rejected.lp`` (dead letters, never retried).

Record format, repeated back to back in a segment::

    4 bytes  magic and version, b"DDS\\x01"
    4 bytes  payload length, unsigned big-endian
    4 bytes  zlib.crc32 of the payload, unsigned big-endian
    N bytes  payload

``append`` fsyncs before returning, so after a crash only the unacknowledged append can be
torn; recovery drops a bad tail of the last segment (with a warning). A bad record followed
by a valid one cannot come from a crash, so it raises ``SpoolError``: never mis-read, never
silently skip. Delivery is at-least-once: ``head`` is persisted on ``commit`` and may lag
the consumer on a crash, and an append that failed part way may have stored a prefix of its
records; either way, records are re-read, so the consumer's writes must be idempotent.

``max_bytes`` bounds the segment files on disk, consumed prefix included; segments are
capped at a quarter of it so draining frees space long before the spool is empty.

Over 300 lines: appending, reading, committing and crash recovery are one file format and
must be read together to check that a record is never mis-read or silently skipped.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from bridge.errors import DeviceDataError

log = logging.getLogger("devicedata.spool")

MAGIC = b"DDS\x01"
_HEADER = struct.Struct(">4sII")
_SEGMENT = re.compile(r"\d{12}\.seg")


class SpoolError(DeviceDataError):
    """The spool cannot be used: locked by another process, corrupt, closed or I/O failed."""


class SpoolFull(SpoolError):
    """Appending would exceed ``max_bytes`` on disk; nothing was written."""


@dataclass(frozen=True, slots=True)
class Cursor:
    """Opaque position just after the last record returned by ``read``."""

    segment: int
    offset: int
    seq: int


def _frame(payload: bytes) -> bytes:
    return _HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


def _record_end(data: bytes, at: int) -> int:
    """End offset of the valid record starting at ``at`` in ``data``, or -1."""
    if len(data) - at < _HEADER.size:
        return -1
    magic, length, crc = _HEADER.unpack_from(data, at)
    end: int = at + _HEADER.size + length
    if magic != MAGIC or end > len(data) or zlib.crc32(data[at + _HEADER.size : end]) != crc:
        return -1
    return end


def _valid_record_after(data: bytes, at: int) -> bool:
    at = data.find(MAGIC, at)
    while at >= 0:
        if _record_end(data, at) >= 0:
            return True
        at = data.find(MAGIC, at + 1)
    return False


class Spool:
    def __init__(self, directory: Path, *, max_bytes: int,
                 segment_bytes: int = 16 * 1024 * 1024) -> None:
        self._dir = directory
        self._max_bytes = max_bytes
        self._segment_bytes = max(1, min(segment_bytes, max_bytes // 4))
        self._lock = threading.Lock()
        self._lock_fd: int | None = None
        self._dir_fd = -1
        self._sizes: dict[int, int] = {}  # segment -> valid bytes; keys are consecutive
        self._head = (0, 0)
        self._head_seq = self._tail_seq = 0  # records ever committed / appended since open
        self._tail = 0
        self._tail_fd: int | None = None
        self._reader: tuple[int, int] | None = None  # (segment, fd)
        self._failed: str | None = None

    def _path(self, segment: int) -> Path:
        return self._dir / f"{segment:012d}.seg"

    def open(self) -> None:
        if self._lock_fd is not None:
            raise SpoolError(f"spool {self._dir} is already open")
        try:
            with self._io("open"):
                self._dir.mkdir(parents=True, exist_ok=True)
                self._lock_fd = os.open(self._dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise SpoolError(f"another process uses this spool dir: {self._dir}") from None
                self._dir_fd = os.open(self._dir, os.O_RDONLY | os.O_DIRECTORY)
                self._recover()
        except BaseException:
            self.close()
            raise

    @contextlib.contextmanager
    def _io(self, what: str) -> Iterator[None]:
        """Callers see only SpoolError, as everywhere else in the package."""
        try:
            yield
        except OSError as exc:
            raise SpoolError(f"spool {self._dir}: {what} failed: {exc}") from exc

    def _recover(self) -> None:
        self._sizes, self._failed = {}, None
        head_seg, head_off = self._load_head()
        found = sorted(int(p.name[:12]) for p in self._dir.iterdir()
                       if _SEGMENT.fullmatch(p.name))
        for segment in found:
            if segment < head_seg:  # consumed; the crash came between commit and unlink
                self._path(segment).unlink()
        live = [s for s in found if s >= head_seg]
        if live != list(range(head_seg, head_seg + len(live))) or (head_off and not live):
            raise SpoolError(f"spool {self._dir}: segments {live} do not follow head "
                             f"{head_seg}:{head_off}; data is missing")
        count = 0
        for i, segment in enumerate(live):
            start = head_off if i == 0 else 0
            path = self._path(segment)
            with path.open("rb") as f:
                if os.fstat(f.fileno()).st_size < start:
                    raise SpoolError(f"{path} is shorter than the head offset {start}")
                f.seek(start)
                data = f.read()
            end = 0
            while (nxt := _record_end(data, end)) >= 0:
                end, count = nxt, count + 1
            if end < len(data):
                if i < len(live) - 1 or _valid_record_after(data, end + 1):
                    raise self._corrupt(segment, start + end)
                log.warning("spool %s: dropped %d bytes of torn tail at offset %d "
                            "(an unacknowledged append)", path, len(data) - end, start + end)
                with path.open("r+b") as f:
                    f.truncate(start + end)
                    os.fsync(f.fileno())
            self._sizes[segment] = start + end
        self._head = (head_seg, head_off)
        self._tail = live[-1] if live else head_seg
        self._head_seq, self._tail_seq = 0, count

    def _load_head(self) -> tuple[int, int]:
        path = self._dir / "head"
        text = path.read_text() if path.exists() else "0 0"
        if not re.fullmatch(r"\d+ \d+\n?", text):
            raise SpoolError(f"unreadable spool head file {path}: {text!r}")
        segment, offset = text.split()
        return int(segment), int(offset)

    def close(self) -> None:
        with self._lock:
            self._drop_reader()
            # The lock fd goes last: closing it releases the flock.
            for fd in (self._tail_fd, self._dir_fd, self._lock_fd):
                if fd is not None and fd >= 0:
                    os.close(fd)
            self._tail_fd, self._dir_fd, self._lock_fd = None, -1, None

    def __enter__(self) -> Spool:
        self.open()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._lock_fd is None:
            raise SpoolError(f"spool {self._dir} is not open")

    @property
    def empty(self) -> bool:
        return self.records == 0

    @property
    def records(self) -> int:
        with self._lock:
            return self._tail_seq - self._head_seq

    @property
    def size_bytes(self) -> int:
        with self._lock:
            return sum(self._sizes.values()) - self._head[1]

    def append(self, records: list[bytes]) -> None:
        frames = [_frame(r) for r in records]
        need = sum(len(f) for f in frames)
        with self._lock:
            self._check_open()
            if self._failed:
                raise SpoolError(self._failed)
            if sum(self._sizes.values()) + need > self._max_bytes:
                raise SpoolFull(f"spool {self._dir} would exceed {self._max_bytes} bytes")
            pending: list[bytes] = []
            used = self._sizes.get(self._tail, 0)
            with self._io("append"):
                for frame in frames:
                    if used and used + len(frame) > self._segment_bytes:
                        self._flush(pending)
                        self._roll()
                        pending, used = [], 0
                    pending.append(frame)
                    used += len(frame)
                self._flush(pending)

    def _roll(self) -> None:
        if self._tail_fd is not None:
            os.close(self._tail_fd)
        self._tail, self._tail_fd = self._tail + 1, None

    def _flush(self, frames: list[bytes]) -> None:
        if not frames:
            return
        if self._tail_fd is None:
            fd = os.open(self._path(self._tail), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            if self._tail not in self._sizes:
                try:  # a new file must survive a crash too
                    os.fsync(self._dir_fd)
                except OSError:
                    os.close(fd)
                    raise
                self._sizes[self._tail] = 0
            self._tail_fd = fd
        buf = memoryview(b"".join(frames))
        old = self._sizes[self._tail]
        try:
            while buf:
                buf = buf[os.write(self._tail_fd, buf):]
            os.fsync(self._tail_fd)
        except OSError as exc:
            try:  # later appends must not land behind a half-written record
                os.ftruncate(self._tail_fd, old)
            except OSError:
                self._failed = f"spool {self._dir} is unusable after a failed write: {exc}"
            raise
        self._sizes[self._tail] = old + sum(len(f) for f in frames)
        self._tail_seq += len(frames)

    def read(self, max_records: int, max_bytes: int) -> tuple[list[bytes], Cursor]:
        """The oldest uncommitted records, at least one if any; does not consume them."""
        with self._lock:
            self._check_open()
            (segment, offset), seq = self._head, self._head_seq
            out: list[bytes] = []
            total = 0
            while len(out) < max_records and segment in self._sizes:
                if offset >= self._sizes[segment]:
                    if segment + 1 not in self._sizes:
                        break
                    segment, offset = segment + 1, 0
                    continue
                magic, length, crc = _HEADER.unpack(self._pread(segment, offset, _HEADER.size))
                if out and total + length > max_bytes:
                    break
                end = offset + _HEADER.size + length
                # Checked again although recovery validated it: the disk may rot meanwhile.
                if magic != MAGIC or end > self._sizes[segment]:
                    raise self._corrupt(segment, offset)
                payload = self._pread(segment, offset + _HEADER.size, length)
                if zlib.crc32(payload) != crc:
                    raise self._corrupt(segment, offset)
                out.append(payload)
                total, offset, seq = total + length, end, seq + 1
            return out, Cursor(segment, offset, seq)

    def _corrupt(self, segment: int, offset: int) -> SpoolError:
        return SpoolError(f"corrupt spool record in {self._path(segment)} at offset {offset}")

    def _pread(self, segment: int, offset: int, size: int) -> bytes:
        with self._io("read"):
            if self._reader is None or self._reader[0] != segment:
                self._drop_reader()
                self._reader = (segment, os.open(self._path(segment), os.O_RDONLY))
            data = os.pread(self._reader[1], size, offset)
        if len(data) != size:
            raise SpoolError(f"{self._path(segment)} is shorter than expected at {offset}")
        return data

    def _drop_reader(self) -> None:
        if self._reader is not None:
            os.close(self._reader[1])
            self._reader = None

    def commit(self, cursor: Cursor) -> None:
        """Mark everything up to ``cursor`` consumed; stale cursors are ignored."""
        with self._lock, self._io("commit"):
            self._check_open()
            if cursor.seq <= self._head_seq:
                return
            if cursor.seq > self._tail_seq or cursor.segment not in self._sizes:
                raise SpoolError(f"cursor {cursor} does not belong to this spool")
            segment, offset = cursor.segment, cursor.offset
            drained = cursor.seq == self._tail_seq
            if drained or offset == self._sizes[segment]:
                # When drained, the next append starts a new segment so the old one can go.
                segment, offset = (self._tail if drained else segment) + 1, 0
            tmp = self._dir / "head.tmp"
            with tmp.open("w") as f:
                f.write(f"{segment} {offset}\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self._dir / "head")
            self._head, self._head_seq = (segment, offset), cursor.seq
            if drained:
                self._roll()
            doomed = [s for s in self._sizes if s < segment]
            if doomed:
                os.fsync(self._dir_fd)  # the new head must be durable before its data goes
                if self._reader is not None and self._reader[0] < segment:
                    self._drop_reader()
                for s in doomed:
                    del self._sizes[s]
                    with contextlib.suppress(FileNotFoundError):
                        self._path(s).unlink()

    def dead_letter(self, record: bytes, reason: str) -> None:
        """Keep a record InfluxDB refused, for inspection; it is never retried."""
        comment = f"# {datetime.now(UTC).isoformat()} {' '.join(reason.split())}\n".encode()
        body = record if record.endswith(b"\n") else record + b"\n"
        with self._lock, self._io("dead_letter"):
            self._check_open()
            path = self._dir / "rejected.lp"
            new = not path.exists()
            with path.open("ab") as f:
                f.write(comment + body)
                f.flush()
                os.fsync(f.fileno())
            if new:
                os.fsync(self._dir_fd)
