"""The device registry, written against the ``Registry`` protocol so every backend runs the
same suite: SQLite in a temporary file, PostgreSQL in a throwaway database created for the
session (``support.postgres``) and emptied before each test."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bridge.errors import Conflict, NotFound, RegistryError, ValidationError
from bridge.registry import Registry, TokenInfo, open_registry, tokens
from bridge.registry.sql import SQLRegistry
from bridge.registry.sqlite import MIGRATIONS, SQLiteRegistry
from support import postgres

BACKENDS = ["sqlite", "postgresql"]
HOUR = 3600 * 10**9

HOSTILE_NAMES = [
    "Robert'); DROP TABLE devices;--",
    'say "hi"',
    "back\\slash, comma = equals",
    "100% _wild_ [chars]",
    "日本語のセンサー",
    "emoji 🌡️ thermo",
    "zero\u200bwidth",
    "  padded  ",
    "x" * 100,
]


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """One throwaway database for the session's PostgreSQL cases, schema in place."""
    with postgres.scratch_database() as url:
        open_registry(url).close()
        yield url


@pytest.fixture(params=BACKENDS)
def open_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Registry]:
    """A factory: each call opens another handle on the same backend store."""
    if request.param == "sqlite":
        return lambda: open_registry(f"sqlite:///{tmp_path / 'reg' / 'registry.sqlite3'}")
    if request.param == "postgresql":
        url: str = request.getfixturevalue("pg_url")
        with postgres.connect(url) as db:
            db.execute("TRUNCATE devices, tokens, network_tokens, current_values")
        return lambda: open_registry(url)
    raise AssertionError(request.param)


@pytest.fixture
def registry(open_backend: Callable[[], Registry]) -> Iterator[Registry]:
    reg = open_backend()
    yield reg
    reg.close()


@pytest.fixture
def fixed_tokens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Tokens handed out in order by ``new_token``, to force shared prefixes."""
    queue: list[str] = []
    monkeypatch.setattr(tokens, "new_token", lambda: queue.pop(0))
    return queue


def test_device_lifecycle(registry: Registry) -> None:
    dev = registry.create_device("Kitchen")
    assert len(dev.id) == 24 and all(c in "0123456789abcdef" for c in dev.id)
    assert registry.get_device(dev.id) == dev
    assert dev.last_input_ns is None
    assert abs(dev.created_ns - time.time_ns()) < 60 * 10**9
    other = registry.create_device("Garage")
    assert [d.id for d in registry.list_devices()] == [dev.id, other.id]
    renamed = registry.rename_device(dev.id, "Kitchen 2")
    assert renamed.name == "Kitchen 2" and renamed.id == dev.id
    registry.delete_device(dev.id)
    with pytest.raises(NotFound):
        registry.get_device(dev.id)
    assert registry.list_devices() == [other]


@pytest.mark.parametrize("call", ["get", "rename", "delete", "list_tokens", "create_token"])
def test_unknown_device_is_not_found(registry: Registry, call: str) -> None:
    missing = "0" * 24
    with pytest.raises(NotFound):
        if call == "get":
            registry.get_device(missing)
        elif call == "rename":
            registry.rename_device(missing, "x")
        elif call == "delete":
            registry.delete_device(missing)
        elif call == "list_tokens":
            registry.list_tokens(missing)
        else:
            registry.create_token(missing, "full")


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_names_round_trip(registry: Registry, name: str) -> None:
    dev = registry.create_device(name)
    assert registry.get_device(dev.id).name == name
    assert [d.name for d in registry.list_devices()] == [name]
    assert registry.rename_device(dev.id, name[::-1]).name == name[::-1]
    issued = registry.create_token(dev.id, "read", name=name)
    assert registry.list_tokens(dev.id)[0].name == name
    assert issued.info.name == name


@pytest.mark.parametrize("name", ["", "   ", "x" * 101, "new\nline", "nul\x00", "del\x7f",
                                  "tab\t", "c1\x85"])
def test_bad_names_are_rejected(registry: Registry, name: str) -> None:
    with pytest.raises(ValidationError) as err:
        registry.create_device(name)
    assert [e.field for e in err.value.errors] == ["name"]
    dev = registry.create_device("ok")
    with pytest.raises(ValidationError):
        registry.rename_device(dev.id, name)
    if name:  # a token's name is optional, so only "" is fine there
        with pytest.raises(ValidationError):
            registry.create_token(dev.id, "read", name=name)
    assert registry.get_device(dev.id).name == "ok"


def test_token_issue_and_authenticate(registry: Registry) -> None:
    dev = registry.create_device("d")
    issued = registry.create_token(dev.id, "write", name="field unit")
    token = issued.token
    assert len(token) == 40 and all(c in "0123456789abcdef" for c in token)
    assert issued.info.prefix == token[:8]
    info = registry.authenticate(token)
    assert info == issued.info
    assert info is not None and info.device_id == dev.id and info.permission == "write"
    assert registry.list_tokens(dev.id) == [issued.info]
    assert registry.authenticate(token[:-1]) is None
    assert registry.authenticate(token.upper()) is None
    assert registry.authenticate("") is None
    assert registry.authenticate("x" * 10_000) is None
    assert registry.create_token(dev.id, "write").token != token


def test_bad_permission_and_past_expiry(registry: Registry) -> None:
    dev = registry.create_device("d")
    with pytest.raises(ValidationError) as err:
        registry.create_token(dev.id, "admin")  # type: ignore[arg-type]
    assert "permission" in str(err.value) and err.value.errors[0].field == "permission"
    with pytest.raises(ValidationError):
        registry.create_token(dev.id, "read", expires_ns=time.time_ns() - 1)
    assert registry.list_tokens(dev.id) == []


def test_expiry(registry: Registry) -> None:
    dev = registry.create_device("d")
    expires = time.time_ns() + HOUR
    issued = registry.create_token(dev.id, "full", expires_ns=expires)
    assert issued.info.expires_ns == expires
    assert registry.authenticate(issued.token) is not None
    assert registry.authenticate(issued.token, now_ns=expires - 1) is not None
    assert registry.authenticate(issued.token, now_ns=expires) is None
    assert registry.broker_credentials(now_ns=expires - 1) != []
    assert registry.broker_credentials(now_ns=expires) == []


@pytest.mark.parametrize(("needed", "read", "write", "full"), [
    ("read", True, False, True),
    ("write", False, True, True),
    ("full", False, False, True),
])
def test_permissions(registry: Registry, needed: str, read: bool, write: bool,
                     full: bool) -> None:
    dev = registry.create_device("d")
    for permission, expected in (("read", read), ("write", write), ("full", full)):
        issued = registry.create_token(dev.id, permission)  # type: ignore[arg-type]
        info = registry.authenticate(issued.token)
        assert info is not None
        assert info.allows(needed) is expected  # type: ignore[arg-type]


def test_revoke_by_full_token(registry: Registry) -> None:
    dev = registry.create_device("d")
    issued = registry.create_token(dev.id, "full")
    keep = registry.create_token(dev.id, "full")
    revoked = registry.revoke_token(issued.token)
    assert revoked.revoked_ns is not None and revoked.prefix == issued.info.prefix
    assert registry.authenticate(issued.token) is None
    assert registry.authenticate(keep.token) is not None
    again = registry.revoke_token(issued.token)
    assert again.revoked_ns == revoked.revoked_ns  # idempotent, first time kept
    listed = {t.prefix: t for t in registry.list_tokens(dev.id)}
    assert listed[issued.info.prefix].revoked_ns == revoked.revoked_ns
    assert listed[keep.info.prefix].revoked_ns is None


@pytest.mark.parametrize("length", [6, 7, 8])
def test_revoke_by_prefix(registry: Registry, length: int) -> None:
    dev = registry.create_device("d")
    issued = registry.create_token(dev.id, "read")
    info = registry.revoke_token(issued.token[:length])
    assert info.prefix == issued.info.prefix and info.revoked_ns is not None
    assert registry.authenticate(issued.token) is None


@pytest.mark.parametrize("text", ["abcde", "", "f" * 40, "ffffffff", "a" * 9, "%%%%%%",
                                  "______"])
def test_revoke_unknown(registry: Registry, text: str) -> None:
    dev = registry.create_device("d")
    issued = registry.create_token(dev.id, "read")
    if text and issued.token.startswith(text):
        pytest.skip("random token happened to match")
    with pytest.raises(NotFound):
        registry.revoke_token(text)
    assert registry.authenticate(issued.token) is not None


def test_ambiguous_prefix(registry: Registry, fixed_tokens: list[str]) -> None:
    a = "abcdef01" + "1" * 32
    b = "abcdef02" + "2" * 32
    fixed_tokens.extend([a, b])
    dev = registry.create_device("d")
    registry.create_token(dev.id, "full")
    registry.create_token(dev.id, "full")
    with pytest.raises(Conflict) as err:
        registry.revoke_token("abcdef")
    message = str(err.value)
    assert a not in message and b not in message and a[8:] not in message
    assert registry.authenticate(a) is not None and registry.authenticate(b) is not None
    assert registry.revoke_token("abcdef02").prefix == "abcdef02"
    # once only one match is still live, the short prefix is no longer ambiguous
    assert registry.revoke_token("abcdef").prefix == "abcdef01"
    assert registry.authenticate(a) is None and registry.authenticate(b) is None


def test_identical_prefixes_need_the_full_token(registry: Registry,
                                                fixed_tokens: list[str]) -> None:
    a, b = "abcdef01" + "1" * 32, "abcdef01" + "2" * 32
    fixed_tokens.extend([a, b])
    dev = registry.create_device("d")
    registry.create_token(dev.id, "full")
    registry.create_token(dev.id, "full")
    with pytest.raises(Conflict):
        registry.revoke_token("abcdef01")
    registry.revoke_token(b)
    assert registry.authenticate(a) is not None and registry.authenticate(b) is None


# serial numbers (serie_number) and network credentials


EUI = "70b3d57ed0000001"


@pytest.mark.parametrize("spelling", ["70B3D57ED0000001", "70-b3-d5-7e-d0-00-00-01",
                                      "70:B3:D5:7E:D0:00:00:01", " 70b3d57ed0000001 "])
def test_serial_is_normalised_and_found_in_any_spelling(registry: Registry,
                                                        spelling: str) -> None:
    dev = registry.create_device("d")
    issued = registry.create_token(dev.id, "write", serial=spelling)
    assert issued.info.serial == EUI
    assert registry.list_tokens(dev.id) == [issued.info]
    for asked in (EUI, EUI.upper(), "70-B3-D5-7E-D0-00-00-01", spelling):
        found = registry.token_for_serial(asked)
        assert found is not None and found.device_id == dev.id and found.serial == EUI
    assert registry.token_for_serial("70b3d57ed0000002") is None
    assert registry.authenticate(issued.token) == issued.info  # still a device token


@pytest.mark.parametrize("serial", ["", "   ", "-leading-dash", "with space", "semi;colon",
                                    "quote'", "x" * 65, "ünïcode", "a\nb", "a\x00b", "%", "_"])
def test_bad_serials_are_refused(registry: Registry, serial: str) -> None:
    dev = registry.create_device("d")
    with pytest.raises(ValidationError) as err:
        registry.create_token(dev.id, "write", serial=serial)
    assert err.value.errors[0].field == "serie_number"
    with pytest.raises(ValidationError):
        registry.token_for_serial(serial)
    assert registry.list_tokens(dev.id) == []


def test_other_serials_are_case_insensitive(registry: Registry) -> None:
    dev = registry.create_device("d")
    issued = registry.create_token(dev.id, "full", serial="SN-2024.A:7")
    assert issued.info.serial == "sn-2024.a:7"
    found = registry.token_for_serial("sn-2024.A:7")
    assert found is not None and found.device_id == dev.id


def test_a_serial_names_one_unrevoked_token(registry: Registry) -> None:
    a, b = registry.create_device("a"), registry.create_device("b")
    first = registry.create_token(a.id, "write", serial=EUI)
    for device_id, spelling in ((b.id, EUI.upper()), (a.id, "70-b3-d5-7e-d0-00-00-01")):
        with pytest.raises(Conflict, match=first.info.prefix):
            registry.create_token(device_id, "full", serial=spelling)
    assert len(registry.list_tokens(b.id)) == 0
    registry.revoke_token(first.token)
    assert registry.token_for_serial(EUI) is None
    second = registry.create_token(b.id, "write", serial=EUI)  # free once revoked
    found = registry.token_for_serial(EUI)
    assert found is not None and found.device_id == b.id and found.prefix == second.info.prefix


def test_the_schema_keeps_serials_unique(registry: Registry) -> None:
    """The unique index holds even for a writer that skips create_token's check."""
    assert isinstance(registry, SQLRegistry)
    dev = registry.create_device("d")
    registry.create_token(dev.id, "write", serial=EUI)
    with pytest.raises(RegistryError), registry._write() as cur:
        cur.run("INSERT INTO tokens (hash, prefix, device_id, permission, created_ns, "
                "mqtt_hash, serial) VALUES ('h', 'p', ?, 'write', 0, 'm', ?)", (dev.id, EUI))


def test_serial_tokens_must_write_and_be_active(registry: Registry) -> None:
    dev = registry.create_device("d")
    with pytest.raises(ValidationError, match="write or full"):
        registry.create_token(dev.id, "read", serial=EUI)
    expires = time.time_ns() + HOUR
    issued = registry.create_token(dev.id, "write", serial=EUI, expires_ns=expires)
    assert registry.token_for_serial(EUI, now_ns=expires - 1) is not None
    assert registry.token_for_serial(EUI, now_ns=expires) is None
    # An expired token still holds its serial: revoking it is a deliberate act.
    with pytest.raises(Conflict):
        registry.create_token(dev.id, "write", serial=EUI)
    registry.revoke_token(issued.token)
    registry.create_token(dev.id, "write", serial=EUI)


def test_deleting_the_device_frees_its_serial(registry: Registry) -> None:
    dev = registry.create_device("d")
    registry.create_token(dev.id, "write", serial=EUI)
    registry.delete_device(dev.id)
    assert registry.token_for_serial(EUI) is None
    other = registry.create_device("e")
    assert registry.create_token(other.id, "write", serial=EUI).info.serial == EUI


def test_network_credentials(registry: Registry) -> None:
    issued = registry.create_network("ChirpStack on the roof")
    token = issued.token
    assert token.startswith("net_") and len(token) == 44
    assert all(c in "0123456789abcdef" for c in token[4:])
    assert issued.info.prefix == token[:12] and issued.info.name == "ChirpStack on the roof"
    assert registry.authenticate_network(token) == issued.info
    assert registry.list_networks() == [issued.info]
    # Neither kind of token stands in for the other.
    assert registry.authenticate(token) is None
    dev = registry.create_device("d")
    device_token = registry.create_token(dev.id, "full").token
    assert registry.authenticate_network(device_token) is None
    assert registry.authenticate_network("net_" + device_token) is None
    for wrong in ("", token[:-1], token.upper(), token + "0", "net_" + "x" * 10_000):
        assert registry.authenticate_network(wrong) is None
    with pytest.raises(NotFound):
        registry.revoke_token(token)  # a device-token revoke cannot reach it
    assert registry.authenticate_network(token) is not None


@pytest.mark.parametrize("how", ["full", "prefix", "short prefix"])
def test_network_revoke(registry: Registry, how: str) -> None:
    issued = registry.create_network("ttn")
    keep = registry.create_network("ttn")
    text = {"full": issued.token, "prefix": issued.info.prefix,
            "short prefix": issued.token[:10]}[how]
    if how == "short prefix" and keep.token.startswith(text):
        pytest.skip("random tokens happened to share the short prefix")
    revoked = registry.revoke_network(text)
    assert revoked.prefix == issued.info.prefix and revoked.revoked_ns is not None
    assert registry.authenticate_network(issued.token) is None
    assert registry.authenticate_network(keep.token) is not None
    assert registry.revoke_network(issued.token).revoked_ns == revoked.revoked_ns
    listed = {n.prefix: n for n in registry.list_networks()}
    assert listed[issued.info.prefix].revoked_ns == revoked.revoked_ns


@pytest.mark.parametrize("text", ["net_", "net_abc", "", "net_%%%%%%", "net______", "x" * 50])
def test_network_revoke_unknown(registry: Registry, text: str) -> None:
    issued = registry.create_network("n")
    if text and issued.token.startswith(text) and len(text) >= 10:
        pytest.skip("random token happened to match")
    with pytest.raises(NotFound):
        registry.revoke_network(text)
    assert registry.authenticate_network(issued.token) is not None


def test_ambiguous_network_prefix(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    from bridge.registry import networks

    queue = ["net_abcdef01" + "1" * 32, "net_abcdef02" + "2" * 32]
    monkeypatch.setattr(networks, "new_network_token", lambda: queue.pop(0))
    a, b = registry.create_network("a"), registry.create_network("b")
    with pytest.raises(Conflict) as err:
        registry.revoke_network("net_abcdef")
    assert a.token not in str(err.value) and b.token not in str(err.value)
    registry.revoke_network("net_abcdef02")
    assert registry.revoke_network("net_abcdef").prefix == "net_abcdef01"


@pytest.mark.parametrize("name", ["", "   ", "x" * 101, "tab\there"])
def test_bad_network_names(registry: Registry, name: str) -> None:
    with pytest.raises(ValidationError):
        registry.create_network(name)
    assert registry.list_networks() == []


def test_touch_only_moves_forward(registry: Registry) -> None:
    dev = registry.create_device("d")
    registry.touch(dev.id, 2000)
    assert registry.get_device(dev.id).last_input_ns == 2000
    registry.touch(dev.id, 1000)
    assert registry.get_device(dev.id).last_input_ns == 2000
    registry.touch(dev.id, 3000)
    assert registry.get_device(dev.id).last_input_ns == 3000
    registry.touch("0" * 24, 5000)  # a device deleted meanwhile: ignored


def test_data_versions_move_only_while_watched(registry: Registry,
                                               open_backend: Callable[[], Registry]) -> None:
    a, b = registry.create_device("a"), registry.create_device("b")
    assert (registry.data_version(a.id), registry.data_version(b.id)) == (0, 0)
    registry.bump_data_versions([a.id, b.id])  # nobody watches: nothing to tell
    assert registry.watched_devices([a.id, b.id, "0" * 24]) == set()
    assert (registry.data_version(a.id), registry.data_version(b.id)) == (0, 0)
    assert registry.watch_data_version(a.id) == 0
    assert registry.watch_data_version(a.id) == 0  # watching twice changes nothing
    assert registry.watched_devices([a.id, b.id, "0" * 24]) == {a.id}
    second = open_backend()  # another process's handle sees the same flags and counters
    try:
        assert second.watched_devices([a.id, b.id]) == {a.id}
        second.bump_data_versions([a.id, b.id, "0" * 24])  # an unknown id is ignored
    finally:
        second.close()
    assert (registry.data_version(a.id), registry.data_version(b.id)) == (1, 0)
    assert registry.watched_devices([a.id]) == set()  # a bump ends the watch
    registry.bump_data_versions([a.id])
    assert registry.data_version(a.id) == 1
    assert registry.watch_data_version("0" * 24) is None
    assert registry.data_version("0" * 24) is None
    registry.delete_device(b.id)
    assert registry.data_version(b.id) is None


def test_data_versions_of_many_devices_at_once(registry: Registry) -> None:
    """More ids than one statement takes (SQLite's oldest limit is 999 parameters)."""
    ids = [registry.create_device(f"d{i}").id for i in range(1203)]
    for device_id in ids[::2]:
        registry.watch_data_version(device_id)
    assert registry.watched_devices(ids) == set(ids[::2])
    registry.bump_data_versions(ids)
    assert [registry.data_version(i) for i in ids] == [1, 0] * 601 + [1]


def test_data_versions_can_be_read_without_waiting(registry: Registry) -> None:
    """SQLite answers reads at once; PostgreSQL always says it would have to wait (a
    network round trip), and the caller goes to a thread."""
    dev = registry.create_device("d")
    registry.watch_data_version(dev.id)
    try:
        version, watched = (registry.data_version(dev.id, wait=False),
                            registry.watched_devices([dev.id], wait=False))
    except BlockingIOError:
        assert not isinstance(registry, SQLiteRegistry)
        return
    assert isinstance(registry, SQLiteRegistry)
    assert (version, watched) == (0, {dev.id})
    # A write on the loop never waits for a lock: while another connection holds the
    # write lock it says so, and the caller goes to a thread.
    other = sqlite3.connect(registry.path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(BlockingIOError):
            registry.record_writes([], [dev.id], wait=False)
        other.execute("ROLLBACK")
    finally:
        other.close()
    registry.record_writes([], [dev.id], wait=False)
    assert registry.data_version(dev.id) == 1


def test_broker_credentials(registry: Registry) -> None:
    now = time.time_ns()
    a = registry.create_device("a")
    b = registry.create_device("b")
    gone = registry.create_device("gone")
    a_full = registry.create_token(a.id, "full")
    a_write = registry.create_token(a.id, "write")
    registry.create_token(a.id, "read")
    b_revoked = registry.create_token(b.id, "write")
    registry.revoke_token(b_revoked.token)
    registry.create_token(b.id, "write", expires_ns=now + HOUR)
    registry.create_token(gone.id, "full")
    registry.delete_device(gone.id)

    creds = registry.broker_credentials(now_ns=now + 2 * HOUR)
    assert [user for user, _ in creds] == [a.id, a.id]
    # oldest first within a device: Mosquitto keeps the last line for a username
    assert tokens.mosquitto_verify(a_full.token, creds[0][1])
    assert tokens.mosquitto_verify(a_write.token, creds[1][1])
    assert not tokens.mosquitto_verify(a_write.token, creds[0][1])
    assert [u for u, _ in registry.broker_credentials(now_ns=now)] == sorted(
        [a.id, a.id, b.id])
    for _, hashed in creds:
        assert hashed.startswith("$7$101$")


def test_a_serial_token_leaves_the_mqtt_password_alone(registry: Registry) -> None:
    device = registry.create_device("lorawan-and-mqtt")
    own = registry.create_token(device.id, "write")
    registry.create_token(device.id, "write", serial="70b3d57ed005ab01")
    creds = [hashed for user, hashed in registry.broker_credentials() if user == device.id]
    assert len(creds) == 2 and tokens.mosquitto_verify(own.token, creds[-1])  # the last wins


def test_delete_device_cascades_to_tokens(registry: Registry) -> None:
    dev = registry.create_device("d")
    other = registry.create_device("other")
    issued = [registry.create_token(dev.id, p) for p in ("read", "write", "full")]
    survivor = registry.create_token(other.id, "full")
    registry.delete_device(dev.id)
    for item in issued:
        assert registry.authenticate(item.token) is None
        with pytest.raises(NotFound):
            registry.revoke_token(item.token)
    assert [u for u, _ in registry.broker_credentials()] == [other.id]
    assert registry.authenticate(survivor.token) is not None
    with pytest.raises(NotFound):
        registry.delete_device(dev.id)


def test_two_handles_share_state(registry: Registry,
                                 open_backend: Callable[[], Registry]) -> None:
    second = open_backend()
    try:
        dev = registry.create_device("d")
        issued = registry.create_token(dev.id, "write")
        assert second.authenticate(issued.token) is not None
        second.revoke_token(issued.token)
        assert registry.authenticate(issued.token) is None
    finally:
        second.close()


def test_concurrent_use_from_threads(registry: Registry) -> None:
    dev = registry.create_device("d")
    errors: list[BaseException] = []
    found: list[TokenInfo | None] = []

    def work(n: int) -> None:
        try:
            for i in range(20):
                issued = registry.create_token(dev.id, "write")
                found.append(registry.authenticate(issued.token))
                registry.touch(dev.id, n * 1000 + i)
                registry.watch_data_version(dev.id)
                registry.bump_data_versions([dev.id])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(found) == 160 and all(f is not None for f in found)
    assert registry.get_device(dev.id).last_input_ns == 7019
    # Each thread watches, then bumps: between 20 (every bump of a round but one found
    # the watch already ended by another thread's) and 160 bumps, never more.
    assert 20 <= (registry.data_version(dev.id) or 0) <= 160


def test_ping(registry: Registry) -> None:
    registry.ping()


def test_schema_enforces_constraints(registry: Registry) -> None:
    """The schema itself refuses what the methods never write (CHECK, foreign key)."""
    assert isinstance(registry, SQLRegistry)
    dev = registry.create_device("d")
    for device_id, permission in ((dev.id, "admin"), ("nope", "read")):
        with pytest.raises(RegistryError), registry._write() as cur:
            cur.run("INSERT INTO tokens (hash, prefix, device_id, permission, created_ns, "
                    "mqtt_hash) VALUES ('h', 'p', ?, ?, 0, 'm')", (device_id, permission))
    registry.ping()  # still usable after failed transactions
    registry.close()
    with pytest.raises(RegistryError):
        registry.ping()


# SQLite specifics


def _db_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


def test_sqlite_stores_only_hashes(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    reg = SQLiteRegistry(path)
    dev = reg.create_device("d")
    issued = [reg.create_token(dev.id, p) for p in ("read", "write", "full")]
    reg.revoke_token(issued[0].token)
    raw = _db_bytes(path)  # the database file plus its -wal and -shm
    assert (tmp_path / "r.sqlite3-wal").exists()
    for item in issued:
        token = item.token
        assert token.encode() not in raw
        assert token.upper().encode() not in raw
        assert token.encode("utf-16-le") not in raw
        assert token[:12].encode() not in raw  # not even more than the listed prefix
        assert hashlib.sha256(token.encode()).hexdigest().encode() in raw
    network = reg.create_network("n").token
    raw = _db_bytes(path)
    assert network.encode() not in raw and network[:16].encode() not in raw
    assert hashlib.sha256(network.encode()).hexdigest().encode() in raw
    reg.close()
    raw = _db_bytes(path)  # after the checkpoint on close, too
    assert all(item.token.encode() not in raw for item in issued)


def test_sqlite_migrations_are_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    reg = SQLiteRegistry(path)
    assert reg.schema_version == len(MIGRATIONS)
    dev = reg.create_device("d")
    issued = reg.create_token(dev.id, "full")
    reg.close()
    for _ in range(2):
        reg = SQLiteRegistry(path)
        assert reg.schema_version == len(MIGRATIONS)
        assert reg.get_device(dev.id) == dev
        assert reg.authenticate(issued.token) is not None
        reg.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"devices", "tokens"} <= tables


def test_sqlite_registry_of_the_first_release_upgrades_in_place(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    with sqlite3.connect(path) as db:
        for statement in MIGRATIONS[0]:
            db.execute(statement.format(int="INTEGER"))
        db.execute("INSERT INTO devices (id, name, created_ns) VALUES ('ab', 'old', 1)")
        db.execute("PRAGMA user_version = 1")
    reg = SQLiteRegistry(path)
    try:
        assert reg.schema_version == len(MIGRATIONS)
        assert reg.get_device("ab").name == "old" and reg.data_version("ab") == 0
        assert reg.watch_data_version("ab") == 0
        reg.bump_data_versions(["ab"])
        assert reg.data_version("ab") == 1
    finally:
        reg.close()


def test_sqlite_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    SQLiteRegistry(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    db.close()
    with pytest.raises(RegistryError, match="newer"):
        SQLiteRegistry(path)


def test_sqlite_turns_foreign_keys_on(tmp_path: Path) -> None:
    reg = SQLiteRegistry(tmp_path / "r.sqlite3")
    with reg._locked() as db:
        assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1  # off by default
    reg.close()


def test_sqlite_unopenable_path_is_registry_error(tmp_path: Path) -> None:
    (tmp_path / "dir.sqlite3").mkdir()
    with pytest.raises(RegistryError):
        SQLiteRegistry(tmp_path / "dir.sqlite3")


# open_registry


def test_open_registry_sqlite_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    absolute = tmp_path / "a" / "b" / "reg.sqlite3"
    reg = open_registry(f"sqlite:///{absolute}")
    assert isinstance(reg, SQLiteRegistry) and reg.path == absolute
    reg.close()
    assert absolute.exists()
    monkeypatch.chdir(tmp_path)
    reg = open_registry("sqlite:///rel/dir/reg.sqlite3")
    reg.close()
    assert (tmp_path / "rel" / "dir" / "reg.sqlite3").exists()


@pytest.mark.parametrize("url", ["mysql://user:s3cret@host/db", "registry.sqlite3", "",
                                 "sqlite://", "sqlite:///"])
def test_open_registry_bad_urls(url: str) -> None:
    with pytest.raises(ValueError, match="DEVICEDATA_REGISTRY_URL") as err:
        open_registry(url)
    assert "s3cret" not in str(err.value)
