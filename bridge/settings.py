"""Settings, read once at start from ``DEVICEDATA_*`` environment variables (and an
optional ``KEY=VALUE`` file named by ``DEVICEDATA_CONFIG``; without one, the
``DATA_DIR/stack.env`` a running ``devicedata stack`` leaves behind), then passed down
explicitly. Environment variables win over either file.

Every setting is listed in ``FIELDS`` with its variable name, default and meaning; the
README's configuration table is generated from the same list (``devicedata config``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PREFIX = "DEVICEDATA_"
STACK_ENV = "stack.env"  # left in the data dir by a running `devicedata stack`


def _doc(text: str) -> dict[str, str]:
    return {"doc": text}


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path = field(default=Path(".data"), metadata=_doc(
        "Directory for the registry, spool, admin token and (for `stack`) the servers' data."))
    http_host: str = field(default="127.0.0.1", metadata=_doc("API listen address."))
    http_port: int = field(default=8888, metadata=_doc("API listen port."))
    http_requests_per_second: float = field(default=50.0, metadata=_doc(
        "HTTP requests one device may make per second, sustained (all its tokens together); "
        "429 + Retry-After past it. 0 turns the limit off."))
    http_requests_burst: float = field(default=100.0, metadata=_doc(
        "HTTP requests one device may make at once before the per-second rate applies."))
    http_concurrency: int = field(default=4, metadata=_doc(
        "HTTP requests of one device in flight at once; 429 past it. 0: no limit."))
    http_read_points_per_second: float = field(default=2_000.0, metadata=_doc(
        "Points one device may read per second over HTTP (GET returns, PUT changes and "
        "DELETE removes count), sustained; reads wait (429) while it is spent. 0: no limit."))
    http_read_points_burst: float = field(default=20_000.0, metadata=_doc(
        "Points one device may read at once before the per-second budget applies."))
    http_read_seconds_per_second: float = field(default=0.5, metadata=_doc(
        "Seconds one device's reads (GET, PUT, DELETE) may take per second, sustained: a "
        "count or aggregate over a long history costs its time, not its one point; reads "
        "wait (429) while it is spent. 0: no limit."))
    http_read_seconds_burst: float = field(default=10.0, metadata=_doc(
        "Seconds of reads one device may spend at once before the per-second budget applies."))
    http_header_timeout: float = field(default=10.0, metadata=_doc(
        "Seconds a client has to send a request's head (from connecting, or from the "
        "previous answer on a keep-alive connection); 408 and closed after."))
    http_body_timeout: float = field(default=60.0, metadata=_doc(
        "Seconds a client has to send a request's whole body once its head arrived "
        "(1 MiB in 60 s is 17 KiB/s); 408 and closed after."))
    http_max_connections: int = field(default=1000, metadata=_doc(
        "Most open HTTP connections per API process; one more is answered 503 and closed."))
    http_tls_cert_file: Path = field(default=Path(""), metadata=_doc(
        "Certificate (PEM, with its chain) for the API to serve HTTPS itself; empty: plain "
        "HTTP (e.g. behind a reverse proxy)."))
    http_tls_key_file: Path = field(default=Path(""), metadata=_doc(
        "Private key of `DEVICEDATA_HTTP_TLS_CERT_FILE`; empty: in the certificate file."))
    influx_url: str = field(default="http://127.0.0.1:8086", metadata=_doc(
        "InfluxDB base URL (1.x, or 2.x/3.x through their v1-compatible API)."))
    influx_db: str = field(default="devicedata", metadata=_doc("InfluxDB database name."))
    influx_rp: str = field(default="", metadata=_doc(
        "Retention policy to write to; empty means the database's default."))
    influx_username: str = field(default="", metadata=_doc("InfluxDB user (basic auth)."))
    influx_password: str = field(default="", metadata=_doc("InfluxDB password."))
    influx_token: str = field(default="", metadata=_doc(
        "InfluxDB token (sent as `Authorization: Token ...`, for 2.x/3.x v1 APIs)."))
    influx_timeout: float = field(default=10.0, metadata=_doc(
        "Seconds before an InfluxDB request counts as failed."))
    influx_create_db: bool = field(default=True, metadata=_doc(
        "Create the database on start (needs admin rights; failure is only logged)."))
    registry_url: str = field(default="", metadata=_doc(
        "`sqlite:///path` or `postgresql://...`; empty: SQLite at `DATA_DIR/registry.sqlite3`."))
    admin_token: str = field(default="", metadata=_doc(
        "Admin API token; empty: generated once and kept in `DATA_DIR/admin-token`."))
    max_body_bytes: int = field(default=1024 * 1024, metadata=_doc(
        "Largest accepted HTTP body or MQTT payload, bytes (413 above)."))
    max_points: int = field(default=10_000, metadata=_doc(
        "Most points in one request or message (413 above)."))
    max_variables: int = field(default=1000, metadata=_doc(
        "Most distinct variables one device may have; a write adding more is refused "
        "(400 naming the limit; an error report over MQTT). 0: no limit."))
    batch_max_points: int = field(default=5000, metadata=_doc(
        "The batching writer flushes when this many points are waiting..."))
    batch_linger_ms: float = field(default=5.0, metadata=_doc(
        "...otherwise batches start at most once per this many milliseconds; the first "
        "after a quiet spell goes out at once."))
    max_pending_points: int = field(default=200_000, metadata=_doc(
        "Points waiting for the writer before HTTP answers 503 + Retry-After (memory bound)."))
    spool_dir: Path = field(default=Path(""), metadata=_doc(
        "Where a process spools batches while InfluxDB is down; empty: "
        "`DATA_DIR/spool/api-PORT` or `DATA_DIR/spool/bridge-CLIENT_ID`."))
    spool_max_bytes: int = field(default=1024**3, metadata=_doc(
        "Largest spool on disk; when full, HTTP answers 503 and the bridge stops acknowledging."))
    token_cache_seconds: float = field(default=2.0, metadata=_doc(
        "How long a token look-up is cached per process (bounds revocation delay)."))
    read_cache_seconds: float = field(default=60.0, metadata=_doc(
        "Longest an answer to a repeated GET without start/end date is served from memory; "
        "any write to the device ends it sooner. 0 turns the cache off."))
    read_cache_points: int = field(default=50_000, metadata=_doc(
        "Most points kept in answers per API process; a larger answer than a tenth of this "
        "is not kept."))
    mqtt_host: str = field(default="127.0.0.1", metadata=_doc("Broker host for the bridge."))
    mqtt_port: int = field(default=1883, metadata=_doc("Broker port for the bridge."))
    mqtt_username: str = field(default="devicedata-bridge", metadata=_doc(
        "This process's own broker user (one per bridge process: the broker binds a "
        "session to its user name)."))
    mqtt_password: str = field(default="", metadata=_doc(
        "The bridge's broker password; empty: generated and kept in the data dir."))
    mqtt_client_id: str = field(default="devicedata-bridge", metadata=_doc(
        "Client id the bridge sends; names its spool directory. Our broker replaces client "
        "ids with user names (`use_username_as_clientid`), so there the user name is what "
        "keeps the bridge's persistent session: each bridge needs its own user name."))
    mqtt_admin_username: str = field(default="devicedata-admin", metadata=_doc(
        "Broker user that changes the broker's access rules (dynamic-security commands)."))
    mqtt_admin_password: str = field(default="", metadata=_doc(
        "Its password; empty: generated and kept in the data dir (`mqtt-admin-password`)."))
    mqtt_tls: bool = field(default=False, metadata=_doc(
        "The bridge connects to the broker over TLS, checking its certificate and name."))
    mqtt_tls_ca_file: Path = field(default=Path(""), metadata=_doc(
        "CA certificate(s) the bridge trusts for the broker (PEM); empty: the system's CAs."))
    mqtt_tls_cert_file: Path = field(default=Path(""), metadata=_doc(
        "The bridge's client certificate (PEM), for brokers that ask for one."))
    mqtt_tls_key_file: Path = field(default=Path(""), metadata=_doc(
        "Private key of `DEVICEDATA_MQTT_TLS_CERT_FILE`; empty: in the certificate file."))
    mqtt_tls_server_name: str = field(default="", metadata=_doc(
        "Name the broker's certificate must carry; empty: `DEVICEDATA_MQTT_HOST`."))
    mqtt_protocol: str = field(default="auto", metadata=_doc(
        "MQTT version the bridge speaks: `5`, `3.1.1`, or `auto` (5, and 3.1.1 when the "
        "broker answers \"unsupported protocol version\")."))
    mqtt_shared_group: str = field(default="", metadata=_doc(
        "When set, subscribe to the data topics as `$share/GROUP/devices/+/...` to split "
        "load across bridges."))
    mqtt_points_per_second: float = field(default=1000.0, metadata=_doc(
        "Points one device may write per second over MQTT, sustained; a message over it is "
        "refused with an error report. 0 turns the limit off."))
    mqtt_points_burst: float = field(default=50_000.0, metadata=_doc(
        "Points one device may write at once over MQTT (a backlog after an outage) before "
        "the per-second limit applies; at least DEVICEDATA_MAX_POINTS."))
    mosquitto_dir: Path = field(default=Path(""), metadata=_doc(
        "Where the broker's password and ACL files are written; empty: `DATA_DIR/mosquitto`."))
    mosquitto_pid_file: Path = field(default=Path(""), metadata=_doc(
        "PID file of the Mosquitto to SIGHUP after credential changes; empty: "
        "`DATA_DIR/run/mosquitto.pid` (where `devicedata stack` writes it), if present."))
    broker_plain_listener: bool = field(default=True, metadata=_doc(
        "`stack`: Mosquitto also listens without TLS; false: TLS only (production)."))
    broker_listen_address: str = field(default="127.0.0.1", metadata=_doc(
        "`stack`: the address Mosquitto's listeners bind; `0.0.0.0` lets devices on other "
        "machines connect (production, with the TLS listener only)."))
    broker_tls_cert_file: Path = field(default=Path(""), metadata=_doc(
        "`stack`: certificate (PEM, with its chain) of Mosquitto's TLS listener; empty: "
        "one from a local CA made in `DATA_DIR/tls`."))
    broker_tls_key_file: Path = field(default=Path(""), metadata=_doc(
        "`stack`: private key of `DEVICEDATA_BROKER_TLS_CERT_FILE`."))
    broker_tls_hosts: str = field(default="", metadata=_doc(
        "`stack` and compose `init`: names and addresses, comma-separated, that the local "
        "CA's broker certificate carries besides `localhost` and `127.0.0.1`."))
    bridge_metrics_host: str = field(default="127.0.0.1", metadata=_doc(
        "Listen address of the bridge's own /metrics endpoint."))
    bridge_metrics_port: int = field(default=8889, metadata=_doc(
        "Port of the bridge's /metrics and /health endpoint; 0 disables it."))
    metrics_token: str = field(default="", metadata=_doc(
        "When set, `/metrics` (the API's and the bridge's) answers only requests with "
        "`Authorization: Bearer TOKEN`; empty: open, as Prometheus scrapes by default."))
    broker_sync_seconds: float = field(default=2.0, metadata=_doc(
        "How often the bridge rewrites the broker's password/ACL files from the registry "
        "(catches expiries and changes made elsewhere); 0 disables."))
    broker_hook_secret: str = field(default="", metadata=_doc(
        "Secret a broker sends to the API's broker hooks (`/broker/...`: EMQX, VerneMQ, "
        "mosquitto-go-auth, RabbitMQ; docs/scaling.md); empty: the hooks are off (404)."))
    public_mqtt_port: int = field(default=0, metadata=_doc(
        "Plain MQTT port devices dial, for the console's connection snippets; 0: "
        "`DEVICEDATA_MQTT_PORT` unless the bridge uses TLS; -1: no plain listener."))
    public_mqtt_tls_port: int = field(default=0, metadata=_doc(
        "MQTT over TLS port devices dial, for the console's snippets; 0: "
        "`DEVICEDATA_MQTT_PORT` when the bridge uses TLS, else none shown."))
    public_ca_file: str = field(default="", metadata=_doc(
        "Path of the CA certificate devices trust, named in the console's TLS snippet; "
        "empty: the device's own trust store."))
    active_seconds: float = field(default=300.0, metadata=_doc(
        "The console marks a device active when its last input is at most this old."))
    inspector: bool = field(default=True, metadata=_doc(
        "Live inspector: API processes connect to the broker (each as its own user, "
        "`devicedata-api-PORT-HOST`) to show admins what reaches a device; false turns the "
        "console's live view off."))
    log_format: str = field(default="text", metadata=_doc("`text` (key=value) or `json`."))
    log_level: str = field(default="INFO", metadata=_doc("Python logging level."))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``environ`` (default ``os.environ``), an optional
        ``DEVICEDATA_CONFIG`` file beneath it, and explicit ``overrides`` on top."""
        env = dict(os.environ if environ is None else environ)
        values: dict[str, str] = {}
        config_file = env.get(PREFIX + "CONFIG")
        if not config_file:
            stack_env = Path(env.get(PREFIX + "DATA_DIR", ".data")) / STACK_ENV
            config_file = str(stack_env) if stack_env.is_file() else ""
        if config_file:
            values.update(_read_config_file(Path(config_file)))
        values.update({k: v for k, v in env.items() if k.startswith(PREFIX)})
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            name = PREFIX + f.name.upper()
            if name in values:
                kwargs[f.name] = _convert(f.name, f.default, values[name])
        kwargs.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**kwargs)

    def to_env(self) -> dict[str, str]:
        """Every setting as ``DEVICEDATA_*`` variables, for starting a child process."""
        env = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool):
                value = "true" if value else "false"
            env[PREFIX + f.name.upper()] = str(value)
        return env

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @property
    def registry_location(self) -> str:
        return self.registry_url or f"sqlite:///{self.data_dir / 'registry.sqlite3'}"

    def spool_path(self, process: str) -> Path:
        if str(self.spool_dir) not in ("", "."):
            return self.spool_dir
        return self.data_dir / "spool" / process

    @property
    def broker_dir(self) -> Path:
        return self.mosquitto_dir if str(self.mosquitto_dir) not in ("", ".") else (
            self.data_dir / "mosquitto")


def configured(path: Path) -> Path | None:
    """A path setting, or None when it is unset (empty: ``Path("")`` prints as ``.``)."""
    return None if str(path) in ("", ".") else path


def _convert(name: str, default: Any, raw: str) -> Any:
    try:
        if isinstance(default, bool):
            if raw.strip().lower() in ("1", "true", "yes", "on"):
                return True
            if raw.strip().lower() in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(raw)
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, Path):
            return Path(raw)
        return raw
    except ValueError:
        raise ValueError(f"{PREFIX}{name.upper()}: cannot read {raw!r} as "
                         f"{type(default).__name__}") from None


def _read_config_file(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"{path}: expected KEY=VALUE, got {line!r}")
        key = key.strip()
        if not key.startswith(PREFIX):
            key = PREFIX + key.upper()
        out[key] = value.strip().strip('"')
    return out


def describe() -> list[tuple[str, str, str]]:
    """(variable, default, meaning) for every setting, for docs and ``devicedata config``."""
    rows = []
    for f in dataclasses.fields(Settings):
        rows.append((PREFIX + f.name.upper(), str(f.default), f.metadata.get("doc", "")))
    return rows
