"""devicedata.procs: where we dial a listener, and which addresses stay on this machine."""

from __future__ import annotations

from devicedata.procs import dial_address, is_loopback


def test_where_we_dial_a_listener_and_whether_it_is_loopback() -> None:
    assert [dial_address(a) for a in ("0.0.0.0", "", "::", "192.0.2.7")] == [
        "127.0.0.1", "127.0.0.1", "::1", "192.0.2.7"]
    assert [is_loopback(a) for a in ("127.0.0.1", "127.0.1.1", "::1", "localhost")] == [True] * 4
    assert [is_loopback(a) for a in ("0.0.0.0", "::", "192.0.2.7", "example.com")] == [False] * 4
