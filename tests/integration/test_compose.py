"""docker-compose.yml, the Dockerfile and docker/ against the code.

This machine has no Docker engine, so no container runs here. These tests check instead:

- statically, that every service, port, volume, bind-mounted file, ``DEVICEDATA_*`` variable,
  command and health check in the compose file and the Dockerfile exists and agrees with
  the settings the code reads, with the Mosquitto and InfluxDB templates, and with the
  Grafana provisioning (whose dashboard queries may name only what bridge/influx/schema.py writes);
- by running, what can run without containers: the Mosquitto entrypoint with its reload
  loop (under ``sh`` and BusyBox ``ash`` when BusyBox is installed) on the local broker, the
  ``init`` script, ``devicedata bridge``, the CLI, the health check script, all wired
  together as in compose, and the dashboard's queries on the real InfluxDB.

``docker compose config`` and ``hadolint`` are not used: neither is installed here.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from bridge.influx.schema import MEASUREMENT, encode_point
from bridge.model.points import Point
from bridge.registry import broker_sync
from bridge.settings import Settings, describe
from devicedata import procs, servers
from devicedata.cli import build_parser
from devicedata.servers import INFLUX_TEMPLATE, MOSQUITTO_TEMPLATE, InfluxServer
from support.mqtt import BridgeProcess, DeviceClient, connect_when_allowed, wait_refused, wait_until

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
DOCKER_DIR = ROOT / "docker"
MOSQUITTO_CONF = DOCKER_DIR / "mosquitto" / "mosquitto.conf"
ENTRYPOINT = DOCKER_DIR / "mosquitto" / "entrypoint.sh"
HEALTHCHECK = DOCKER_DIR / "app" / "healthcheck.py"
INIT = DOCKER_DIR / "app" / "init.py"
PROVISIONING = DOCKER_DIR / "grafana" / "provisioning"
DATASOURCE = PROVISIONING / "datasources" / "influxdb.yml"
DASHBOARD_PROVIDER = PROVISIONING / "dashboards" / "dashboards.yml"
DASHBOARD = PROVISIONING / "dashboards" / "devices.json"
DEPLOYMENT_DOC = ROOT / "docs" / "deployment.md"
IMAGE_DYNSEC_PLUGIN = "/usr/lib/mosquitto_dynamic_security.so"  # eclipse-mosquitto's path

SERVICES = {"init", "mosquitto", "influxdb", "bridge", "api", "grafana"}
APP_SERVICES = ("init", "bridge", "api")  # built from the Dockerfile
INFLUX_HTTP_PORT = 8086  # the influxdb image's default; nothing in the compose file moves it
GRAFANA_PORT = 3000
SETTINGS = {name for name, _, _ in describe()}
_INTERPOLATION = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


# -- reading the files ----------------------------------------------------------------------


def interpolate(value: Any) -> Any:
    """Compose's ``${VAR:-default}`` with nothing set in the environment: the defaults."""
    if isinstance(value, str):
        return _INTERPOLATION.sub(lambda m: "$" if m[0] == "$$" else (m[2] or ""), value)
    if isinstance(value, list):
        return [interpolate(v) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v) for k, v in value.items()}
    return value


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return interpolate(loaded)  # type: ignore[no-any-return]


def service(name: str) -> dict[str, Any]:
    return compose()["services"][name]  # type: ignore[no-any-return]


def environment(name: str) -> dict[str, str]:
    env = service(name).get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def mounts(name: str) -> list[tuple[str, str, bool]]:
    """(source, target, is_bind) of a service's short-syntax volumes."""
    out = []
    for entry in service(name).get("volumes") or []:
        assert isinstance(entry, str), f"{name}: use the short volume syntax: {entry!r}"
        source, target = entry.split(":")[:2]
        out.append((source, target, source.startswith((".", "/"))))
    return out


def volume_at(name: str, path: str) -> str:
    """The named volume a service mounts at ``path`` (or a parent of it)."""
    for source, target, bind in mounts(name):
        if not bind and (path == target or path.startswith(target.rstrip("/") + "/")):
            return source
    raise AssertionError(f"{name} mounts no named volume at {path}")


def bind_source(name: str, container_path: str) -> Path | None:
    """The repository file a service sees at ``container_path`` through a bind mount."""
    for source, target, bind in mounts(name):
        if bind and (container_path == target or container_path.startswith(target + "/")):
            return (ROOT / source).resolve() / container_path[len(target):].lstrip("/")
    return None


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines = [line for line in DOCKERFILE.read_text(encoding="utf-8").splitlines()
             if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def instructions(name: str) -> list[str]:
    return [args for word, args in dockerfile() if word == name]


def image_workdir() -> str:
    return instructions("WORKDIR")[-1]


def image_copies_repo_to() -> str:
    """Where the Dockerfile copies the whole build context (``COPY . DEST``)."""
    for args in instructions("COPY"):
        parts = args.split()
        if parts[0] == ".":
            dest = parts[-1]
            return image_workdir() if dest in (".", "./") else dest.rstrip("/")
    raise AssertionError("the Dockerfile never copies the source tree (COPY . /app)")


def image_file(container_path: str) -> Path | None:
    """The repository file at ``container_path`` in the app image, if the image has it."""
    base = image_copies_repo_to()
    if not container_path.startswith(base + "/"):
        return None
    relative = container_path[len(base) + 1:]
    if dockerignored(relative):
        return None
    return ROOT / relative


def dockerignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """(negated, regex) per line: Docker's rules, anchored at the context root."""
    out = []
    for raw in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        assert not set(pattern) & set("[]\\"), f"the test cannot read {line!r}"
        regex = re.escape(pattern).replace(r"\*\*/", "(?:.*/)?").replace(r"\*\*", ".*")
        regex = regex.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        out.append((negated, re.compile(regex + r"\Z")))
    return out


def dockerignored(relative: str) -> bool:
    parts = relative.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    ignored = False
    for negated, regex in dockerignore_patterns():
        if any(regex.match(prefix) for prefix in prefixes):
            ignored = not negated
    return ignored


def conf_directives(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def mosquitto_conf() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in conf_directives(MOSQUITTO_CONF.read_text(encoding="utf-8")):
        key, _, value = line.partition(" ")
        out.setdefault(key, []).append(value)
    return out


def listener() -> tuple[int, str]:
    (value,) = mosquitto_conf()["listener"]
    port, address = value.split()
    return int(port), address


def app_settings(name: str) -> Settings:
    env = environment(name)
    # Explicit: a stack.env under a host directory named like DATA_DIR must not leak in.
    return Settings.from_env({**env, "DEVICEDATA_CONFIG": os.devnull})


def load_script(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem + "_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def command(name: str) -> list[str]:
    value = service(name).get("command")
    return shlex.split(value) if isinstance(value, str) else list(value or [])


def healthcheck_test(name: str) -> list[str]:
    test = service(name)["healthcheck"]["test"]
    if isinstance(test, str):
        return ["CMD-SHELL", test]
    return list(test)


# -- services, volumes, ports ---------------------------------------------------------------


def test_every_service_exists() -> None:
    assert set(compose()["services"]) == SERVICES
    for name in APP_SERVICES:
        assert service(name)["build"] in (".", {"context": "."}), name
    images = {service(name)["image"] for name in APP_SERVICES}
    assert len(images) == 1, f"the app services should share one image: {images}"


def test_volumes_are_named_or_repository_files() -> None:
    declared = set(compose().get("volumes") or {})
    used = set()
    for name in SERVICES:
        for source, target, bind in mounts(name):
            assert target.startswith("/"), (name, target)
            if bind:
                assert source.startswith("./"), f"{name}: bind {source} from outside the repo"
                assert (ROOT / source).exists(), f"{name}: {source} does not exist"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"
                used.add(source)
    assert used == declared, f"declared but unused: {declared - used}"


def test_ports_match_what_each_server_listens_on() -> None:
    expected = {
        "api": app_settings("api").http_port,
        "mosquitto": listener()[0],
        "influxdb": INFLUX_HTTP_PORT,
        "grafana": GRAFANA_PORT,
    }
    host_ports = []
    for name in SERVICES:
        published = [str(p) for p in service(name).get("ports") or []]
        if name not in expected:
            assert not published, f"{name} publishes {published}"
            continue
        assert len(published) == 1, (name, published)
        *host, container = published[0].split(":")
        assert int(container) == expected[name], (name, published[0])
        host_ports.append(int(host[-1]))
    assert len(set(host_ports)) == len(host_ports), host_ports
    # InfluxDB has no authentication in this setup: published on the host's loopback only.
    (influx_port,) = service("influxdb")["ports"]
    assert str(influx_port).startswith("127.0.0.1:")


def test_dockerfile_exposes_the_api_port() -> None:
    assert instructions("EXPOSE") == [str(app_settings("api").http_port)]


# -- settings -------------------------------------------------------------------------------


def test_every_devicedata_variable_is_a_setting() -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8") + DOCKERFILE.read_text(encoding="utf-8")
    used = set(re.findall(r"\bDEVICEDATA_[A-Z0-9_]*[A-Z0-9]\b", text))
    assert used, "no DEVICEDATA_* variable found"
    assert used <= SETTINGS, f"not settings (bridge.settings.describe()): {used - SETTINGS}"
    for name in SERVICES:
        for key in environment(name):
            if key.startswith("DEVICEDATA"):
                assert key in SETTINGS, f"{name}: {key}"
            else:
                assert name not in APP_SERVICES, f"{name}: {key} is not a devicedata setting"


def test_app_services_share_one_configuration() -> None:
    envs = [environment(name) for name in APP_SERVICES]
    assert envs[0] == envs[1] == envs[2]
    for name in APP_SERVICES:
        app_settings(name)  # every value parses


def test_settings_point_at_the_services() -> None:
    settings = app_settings("bridge")
    services = set(compose()["services"])
    assert settings.mqtt_host == "mosquitto" and settings.mqtt_host in services
    assert settings.mqtt_port == listener()[0]
    url = urlsplit(settings.influx_url)
    assert (url.scheme, url.hostname, url.port) == ("http", "influxdb", INFLUX_HTTP_PORT)
    assert url.hostname in services
    assert settings.influx_db == environment("influxdb")["INFLUXDB_DB"]
    assert settings.http_host == "0.0.0.0"  # reachable through the published port


def test_mosquitto_listens_for_other_containers_with_authentication() -> None:
    conf = mosquitto_conf()
    assert listener()[1] == "0.0.0.0"
    assert conf["allow_anonymous"] == ["false"]
    assert conf["per_listener_settings"] == ["false"]


def test_the_bridge_writes_the_files_the_broker_reads() -> None:
    conf = mosquitto_conf()
    broker_dirs = set()
    for name in APP_SERVICES:
        settings = app_settings(name)
        directory = str(settings.broker_dir)
        broker_dirs.add(directory)
        assert conf["password_file"] == [str(broker_sync.passwd_path(settings.broker_dir))]
        assert conf["plugin_opt_config_file"] == [str(broker_sync.dynsec_path(settings.broker_dir))]
        assert "acl_file" not in conf  # it would grant every SUBSCRIBE the plugin refuses
        # The same named volume, mounted at the same path in both containers.
        assert volume_at(name, directory) == volume_at("mosquitto", directory)
        # No pid file: a process cannot signal a broker in another container, and a
        # configured one would only log "not reloaded" warnings. The entrypoint reloads.
        assert broker_sync.broker_pid_file(settings) is None
    assert len(broker_dirs) == 1
    env = environment("mosquitto")
    assert env["MOSQUITTO_AUTH_DIR"] == broker_dirs.pop()
    assert int(env["MOSQUITTO_PORT"]) == listener()[0]
    assert env["MOSQUITTO_CONFIG"] == "/mosquitto/config/mosquitto.conf"
    assert bind_source("mosquitto", env["MOSQUITTO_CONFIG"]) == MOSQUITTO_CONF
    (persistence,) = conf["persistence_location"]
    assert persistence == env["MOSQUITTO_DATA_DIR"]
    assert volume_at("mosquitto", persistence) != volume_at("mosquitto", env["MOSQUITTO_AUTH_DIR"])


def test_app_services_share_the_registry_and_secrets() -> None:
    volumes = set()
    for name in APP_SERVICES:
        settings = app_settings(name)
        # The default registry (SQLite) and the generated bridge password and admin token
        # all live in the data dir, so it must be one volume for every app container.
        assert settings.registry_location == f"sqlite:///{settings.data_dir}/registry.sqlite3"
        volumes.add(volume_at(name, str(settings.data_dir)))
    assert len(volumes) == 1


def test_mosquitto_conf_is_the_template_rendered_for_compose() -> None:
    rendered = MOSQUITTO_TEMPLATE.read_text(encoding="utf-8").format(
        port=listener()[0], data_dir=mosquitto_conf()["persistence_location"][0],
        passwd_file=mosquitto_conf()["password_file"][0], dynsec_plugin=IMAGE_DYNSEC_PLUGIN,
        dynsec_file=mosquitto_conf()["plugin_opt_config_file"][0], user="mosquitto")
    expected = [line.replace(f"listener {listener()[0]} 127.0.0.1",
                             f"listener {listener()[0]} 0.0.0.0")
                for line in conf_directives(rendered)]
    assert conf_directives(MOSQUITTO_CONF.read_text(encoding="utf-8")) == expected


def test_influxdb_environment_mirrors_the_template() -> None:
    env = environment("influxdb")
    section = ""
    for raw in INFLUX_TEMPLATE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = (part.strip() for part in line.partition("="))
        if key in ("dir", "wal-dir", "bind-address"):
            continue  # paths and addresses: the image's own are right for a container
        variable = "_".join(p for p in ("INFLUXDB", section, key) if p).upper().replace("-", "_")
        assert env.get(variable) == value.strip('"'), f"{variable} should be {value}"


# -- ordering and health --------------------------------------------------------------------


def test_depends_on_targets_exist_and_can_satisfy_the_condition() -> None:
    services = compose()["services"]
    image_healthcheck = bool(instructions("HEALTHCHECK"))
    for name, spec in services.items():
        depends = spec.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: give depends_on conditions"
        for target, rule in depends.items():
            assert target in services, f"{name} depends on unknown {target}"
            condition = rule["condition"]
            if condition == "service_healthy":
                built = target in APP_SERVICES
                assert "healthcheck" in services[target] or (built and image_healthcheck), (
                    f"{name} waits for {target} to be healthy, but it has no health check")
            else:
                assert condition == "service_completed_successfully", (name, target, condition)
                assert services[target].get("restart") == "no", f"{target} is not one-shot"


def test_first_start_order_gives_the_broker_its_files_first() -> None:
    """From empty volumes: init writes passwd/acl (with the bridge's user), then the broker
    starts with them, then the bridge connects with the password init generated."""
    assert command("init")[:2] == ["python", "/app/docker/app/init.py"]
    assert image_file("/app/docker/app/init.py") == INIT
    done = {"condition": "service_completed_successfully"}
    healthy = {"condition": "service_healthy"}
    assert service("mosquitto")["depends_on"]["init"] == done
    assert service("bridge")["depends_on"] == {"init": done, "mosquitto": healthy,
                                               "influxdb": healthy}
    assert service("api")["depends_on"]["init"] == done
    assert service("grafana")["depends_on"]["influxdb"] == healthy


def test_long_running_services_have_health_checks_and_restart() -> None:
    for name in SERVICES - {"init"}:
        assert service(name).get("restart") == "unless-stopped", name
        assert healthcheck_test(name)[0] in ("CMD", "CMD-SHELL"), name
    checks = load_script(HEALTHCHECK).CHECKS
    for name in ("api", "bridge"):
        test = healthcheck_test(name)
        assert test[1:3] == ["python", "/app/docker/app/healthcheck.py"], test
        assert image_file(test[2]) == HEALTHCHECK
        assert test[3] == name and name in checks
    (image_check,) = instructions("HEALTHCHECK")
    assert '"/app/docker/app/healthcheck.py", "api"' in image_check
    mosquitto = healthcheck_test("mosquitto")
    assert mosquitto[1:] == ["/bin/sh", "/mosquitto/config/entrypoint.sh", "healthcheck"]
    assert bind_source("mosquitto", mosquitto[2]) == ENTRYPOINT
    influx = healthcheck_test("influxdb")
    assert influx[0] == "CMD-SHELL" and f"-port {INFLUX_HTTP_PORT}" in influx[1]
    assert "$INFLUXDB_DB" in influx[1].replace("{", "").replace("}", "")


def test_mosquitto_runs_the_reload_entrypoint() -> None:
    entrypoint = service("mosquitto")["entrypoint"]
    assert entrypoint == ["/bin/sh", "/mosquitto/config/entrypoint.sh"]
    assert bind_source("mosquitto", entrypoint[1]) == ENTRYPOINT
    assert "command" not in service("mosquitto")


def test_the_bridge_may_drain_before_it_is_killed() -> None:
    from bridge.mqtt.runner import DRAIN_TIMEOUT

    grace = service("bridge")["stop_grace_period"]
    assert grace.endswith("s") and int(grace[:-1]) > DRAIN_TIMEOUT


# -- the Dockerfile -------------------------------------------------------------------------


def test_dockerfile_base_user_and_copies() -> None:
    assert instructions("FROM") == ["python:3.11-slim"]
    (user,) = instructions("USER")
    assert user not in ("root", "0") and not user.startswith("0:")
    assert "--uid 1883" in " ".join(instructions("RUN")), "uid 1883 = the broker's user"
    for args in instructions("COPY"):
        *sources, _dest = args.split()
        for source in sources:
            assert not source.startswith("--"), f"unexpected COPY option in {args!r}"
            assert (ROOT / source).exists(), f"COPY source {source} does not exist"
            if source != ".":
                assert not dockerignored(source), f"{source} is excluded by .dockerignore"


def test_dockerfile_cmd_is_the_console_script() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert not instructions("ENTRYPOINT")
    (cmd,) = instructions("CMD")
    argv = json.loads(cmd)
    assert argv == ["devicedata", "api"]
    assert argv[0] in scripts
    build_parser().parse_args(argv[1:])


def test_compose_commands_are_real_cli_commands() -> None:
    for name in ("bridge", "api"):
        argv = command(name)
        assert argv == ["devicedata", name]
        args = build_parser().parse_args(argv[1:])
        assert args.command == name


def test_image_installs_the_package_with_its_data() -> None:
    """The templates the code reads are package data: the image installs the copied tree
    as a regular package (its templates travel into site-packages with it)."""
    assert MOSQUITTO_TEMPLATE == ROOT / "devicedata" / "templates" / "mosquitto.conf.template"
    base = image_copies_repo_to()
    assert base == image_workdir() == "/app"
    runs = " ".join(instructions("RUN"))
    assert re.search(rf"pip install [^&]*{re.escape(base)}\b", runs), runs
    assert image_file(f"{base}/devicedata/templates/mosquitto.conf.template") == MOSQUITTO_TEMPLATE


def test_dockerignore_keeps_what_the_image_needs() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    needed = ["pyproject.toml", pyproject["project"]["readme"],
              "devicedata/templates/mosquitto.conf.template",
              "docker/app/init.py", "docker/app/healthcheck.py"]
    includes = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    for package in [name for name in includes if "." not in name]:
        needed += [str(p.relative_to(ROOT)) for p in (ROOT / package).rglob("*")
                   if p.is_file() and "__pycache__" not in p.parts]
    kept = [path for path in needed if dockerignored(path)]
    assert not kept, f".dockerignore leaves out what the image needs: {kept}"
    for state in (".venv/bin/python", ".data/registry.sqlite3", ".git/HEAD",
                  "devicedata.egg-info/PKG-INFO", "bridge/__pycache__/x.pyc"):
        assert dockerignored(state), f"{state} would be sent to the build"


# -- the Mosquitto entrypoint ---------------------------------------------------------------


def shells() -> list[list[str]]:
    found = [["sh"]]
    if shutil.which("busybox"):
        found.append(["busybox", "sh"])  # the image's shell: BusyBox ash (Alpine)
    return found


def test_entrypoint_is_executable() -> None:
    listed = subprocess.run(["git", "ls-files", "-s", "--", str(ENTRYPOINT)], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split()
    if listed:  # tracked: the mode a clone gets
        assert listed[0] == "100755", f"git mode {listed[0]}"
    assert os.access(ENTRYPOINT, os.X_OK)


@pytest.mark.parametrize("shell", shells(), ids=lambda s: " ".join(s))
def test_entrypoint_parses(shell: list[str]) -> None:
    result = subprocess.run([*shell, "-n", str(ENTRYPOINT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_entrypoint_under_busybox_too() -> None:
    if not shutil.which("busybox"):
        pytest.skip("busybox is not installed: the entrypoint ran under sh only "
                    "(apt-get install -y busybox to run it under the image's shell too)")


class Topology:
    """The compose wiring with plain processes: compose's app settings with host paths and
    ports, and the mosquitto entrypoint on a config derived from docker/mosquitto."""

    def __init__(self, base: Path, influx_url: str, influx_db: str, shell: list[str]) -> None:
        self.base = base
        self.shell = shell
        self.port = procs.free_port()
        env = environment("bridge")
        compose_dir = env["DEVICEDATA_MOSQUITTO_DIR"]
        env.update({
            "DEVICEDATA_DATA_DIR": str(base / "data"),
            "DEVICEDATA_MOSQUITTO_DIR": str(base / "auth"),
            "DEVICEDATA_MQTT_HOST": "127.0.0.1",
            "DEVICEDATA_MQTT_PORT": str(self.port),
            "DEVICEDATA_INFLUX_URL": influx_url,
            "DEVICEDATA_INFLUX_DB": influx_db,
            "DEVICEDATA_HTTP_HOST": "127.0.0.1",
            "DEVICEDATA_HTTP_PORT": str(procs.free_port()),
            "DEVICEDATA_CONFIG": os.devnull,
        })
        self.app_env = env
        self.settings = Settings.from_env(env)
        assert broker_sync.broker_pid_file(self.settings) is None
        conf = MOSQUITTO_CONF.read_text(encoding="utf-8")
        port, address = listener()
        conf = conf.replace(f"listener {port} {address}", f"listener {self.port} 127.0.0.1")
        conf = conf.replace(compose_dir, str(base / "auth"))
        conf = conf.replace(mosquitto_conf()["persistence_location"][0], str(base / "broker"))
        conf = conf.replace(IMAGE_DYNSEC_PLUGIN, str(servers.dynsec_plugin()))  # Debian's path
        if os.geteuid() == 0:
            # Test directories need not be reachable by the `mosquitto` user; the image's
            # broker drops to uid 1883 (= the app image's user) instead.
            conf = conf.replace("\nuser mosquitto\n", "\nuser root\n")
        self.conf = base / "mosquitto.conf"
        self.conf.write_text(conf, encoding="utf-8")
        self.broker_env = {
            **os.environ, "MOSQUITTO_CONFIG": str(self.conf),
            "MOSQUITTO_AUTH_DIR": str(base / "auth"), "MOSQUITTO_DATA_DIR": str(base / "broker"),
            "MOSQUITTO_PORT": str(self.port), "MOSQUITTO_RELOAD_SECONDS": "0.2",
            "MOSQUITTO_BIN": procs.find_binary("mosquitto") or "mosquitto"}
        self.log = base / "entrypoint.log"
        self.broker: subprocess.Popen[bytes] | None = None

    def run_app(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, *argv], env={**os.environ, **self.app_env},
                              capture_output=True, text=True, timeout=60, cwd=self.base)

    def healthcheck(self, *argv: str, env: dict[str, str] | None = None) -> int:
        return subprocess.run(argv, env={**os.environ, **(env or {})}, capture_output=True,
                              timeout=30).returncode

    def start_broker(self) -> None:
        with self.log.open("ab") as out:
            self.broker = subprocess.Popen([*self.shell, str(ENTRYPOINT)], env=self.broker_env,
                                           stdout=out, stderr=out, stdin=subprocess.DEVNULL)
        wait_until(lambda: self._accepts() or self.broker is None or
                   self.broker.poll() is not None, timeout=15, what="the broker to listen")
        assert self.broker.poll() is None, self.log.read_text()

    def _accepts(self) -> bool:
        try:
            return procs.tcp_accepts("127.0.0.1", self.port)
        except OSError:
            return False

    def stop_broker(self) -> int:
        assert self.broker is not None
        self.broker.send_signal(signal.SIGTERM)
        code = self.broker.wait(15)
        self.broker = None
        return code

    def close(self) -> None:
        if self.broker is not None and self.broker.poll() is None:
            self.broker.kill()
            self.broker.wait()


@pytest.fixture(params=shells(), ids=lambda s: " ".join(s))
def topology(request: pytest.FixtureRequest, influx: InfluxServer) -> Iterator[Topology]:
    if procs.find_binary("mosquitto") is None:
        pytest.fail("`mosquitto` is not installed: apt-get install -y mosquitto "
                    "(or run the suite with `make test`, which does)", pytrace=False)
    # Not tmp_path: its 0700 parents would keep a broker that drops privileges out.
    base = Path(tempfile.mkdtemp(prefix="devicedata-compose-"))
    base.chmod(0o755)
    db = f"devicedata_compose_{uuid.uuid4().hex[:12]}"
    influx.create_database(db)
    topo = Topology(base, influx.url, db, request.param)
    yield topo
    topo.close()
    shutil.rmtree(base, ignore_errors=True)


def test_entrypoint_starts_from_an_empty_volume_and_reloads_on_change(
        topology: Topology) -> None:
    """Without init: placeholders that admit nobody, then broker_sync's files (written
    as another container would, with no pid file to signal) apply within a second."""
    topology.start_broker()
    auth = topology.base / "auth"
    assert (auth / "passwd").read_text() == ""
    health = [*topology.shell, str(ENTRYPOINT), "healthcheck"]
    assert topology.healthcheck(*health, env={"MOSQUITTO_PORT": str(topology.port)}) == 0
    assert topology.healthcheck(*health, env={"MOSQUITTO_PORT": str(procs.free_port())}) == 1
    settings = topology.settings
    password = broker_sync.bridge_password(settings)
    probe = DeviceClient(settings, settings.mqtt_username, password)
    probe.close()
    assert not probe.accepted
    from bridge.registry import open_registry

    registry = open_registry(settings.registry_location)
    try:
        broker_sync.sync(settings, registry)
    finally:
        registry.close()
    connect_when_allowed(settings, settings.mqtt_username, password).close()
    assert "sending SIGHUP" in topology.log.read_text()
    assert topology.stop_broker() == 0
    assert "mosquitto exited with status 0" in topology.log.read_text()


def test_compose_wiring_end_to_end_without_containers(topology: Topology,
                                                      influx: InfluxServer) -> None:
    """init, mosquitto (entrypoint), bridge and the CLI as in compose: a device created
    with `devicedata device create demo --json` publishes over MQTT into InfluxDB, and a
    revoked token is refused, with no process able to signal the broker directly."""
    init = topology.run_app(str(INIT))
    assert init.returncode == 0, init.stderr
    assert "event=init_done" in init.stderr
    settings = topology.settings
    passwd = broker_sync.passwd_path(settings.broker_dir).read_text()
    users = [line.partition(":")[0] for line in passwd.splitlines()]
    assert settings.mqtt_username in users and settings.mqtt_admin_username in users
    assert (settings.data_dir / "admin-token").exists()
    access = json.loads(broker_sync.dynsec_path(settings.broker_dir).read_text())
    clients = {c["username"]: c["roles"] for c in access["clients"]}
    assert clients[settings.mqtt_username] == [{"rolename": "bridge"}]
    assert clients[settings.mqtt_admin_username] == [{"rolename": "dynsec-admin"}]
    again = topology.run_app(str(INIT))  # every `docker compose up` runs init again
    assert again.returncode == 0, again.stderr
    assert broker_sync.passwd_path(settings.broker_dir).read_text() == passwd

    topology.start_broker()
    assert "placeholders" not in topology.log.read_text()
    bridge_health = [sys.executable, str(HEALTHCHECK), "bridge"]
    health_env = {**topology.app_env}
    assert topology.healthcheck(*bridge_health, env=health_env) == 1  # not connected yet
    bridge = BridgeProcess(settings, topology.base / "bridge.log").start()
    try:
        assert topology.healthcheck(*bridge_health, env=health_env) == 0
        created = topology.run_app("-m", "devicedata", "device", "create", "demo", "--json")
        assert created.returncode == 0, created.stderr
        device = json.loads(created.stdout)
        client = connect_when_allowed(settings, device["mqtt_username"],
                                      device["mqtt_password"])
        try:
            payload = json.dumps({"variable": "temperature", "value": 21.5, "unit": "C"})
            reason = client.publish(device["topic"], payload)
            assert not reason.is_failure, reason
        finally:
            client.close()

        def stored() -> bool:
            result = influx.query(f"SELECT \"value\" FROM \"{MEASUREMENT}\" WHERE "
                                  f"\"device\" = '{device['id']}'", db=settings.influx_db)
            return bool(result["results"][0].get("series"))

        wait_until(stored, timeout=15, what="the point in InfluxDB")
        revoked = topology.run_app("-m", "devicedata", "token", "revoke", device["token"])
        assert revoked.returncode == 0, revoked.stderr
        wait_refused(settings, device["mqtt_username"], device["mqtt_password"])
    finally:
        assert bridge.stop() == 0
    assert "sending SIGHUP" in topology.log.read_text()
    assert topology.stop_broker() == 0


# -- the health check script ----------------------------------------------------------------


def test_bridge_healthcheck_reads_established_connections(tmp_path: Path) -> None:
    module = load_script(HEALTHCHECK)
    header = "  sl  local_address rem_address   st tx_queue rx_queue\n"
    table = tmp_path / "tcp"
    table.write_text(header + "   0: 0100007F:9C40 0100007F:075B 01 00000000:00000000\n"
                              "   1: 00000000:075C 00000000:0000 0A 00000000:00000000\n")
    assert module.established_to(1883, (table,))
    assert not module.established_to(1884, (table,))  # LISTEN is not a connection
    assert not module.established_to(1883, (tmp_path / "missing",))


def test_api_healthcheck_against_a_running_api(api: Any) -> None:
    env = {**os.environ, "DEVICEDATA_HTTP_PORT": str(api.settings.http_port),
           "DEVICEDATA_CONFIG": os.devnull}
    ok = subprocess.run([sys.executable, str(HEALTHCHECK), "api"], env=env, timeout=30)
    assert ok.returncode == 0
    env["DEVICEDATA_HTTP_PORT"] = str(procs.free_port())
    down = subprocess.run([sys.executable, str(HEALTHCHECK), "api"], env=env, timeout=30,
                          capture_output=True, text=True)
    assert down.returncode == 1 and "unhealthy" in down.stderr


# -- Grafana --------------------------------------------------------------------------------


def grafana_datasource() -> dict[str, Any]:
    (source,) = yaml.safe_load(DATASOURCE.read_text(encoding="utf-8"))["datasources"]
    return source  # type: ignore[no-any-return]


def test_grafana_is_provisioned_from_the_repository() -> None:
    target = "/etc/grafana/provisioning"
    assert bind_source("grafana", target) == PROVISIONING
    (provider,) = yaml.safe_load(DASHBOARD_PROVIDER.read_text(encoding="utf-8"))["providers"]
    assert bind_source("grafana", provider["options"]["path"]) == DASHBOARD.parent
    home = environment("grafana")["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert bind_source("grafana", home) == DASHBOARD


def test_grafana_datasource_points_at_the_influxdb_service() -> None:
    source = grafana_datasource()
    settings = app_settings("api")
    assert source["type"] == "influxdb" and source["access"] == "proxy"
    assert source["url"] == settings.influx_url
    assert source["jsonData"]["dbName"] == source["database"] == settings.influx_db
    assert settings.influx_db == environment("influxdb")["INFLUXDB_DB"]


def written_schema() -> tuple[str, set[str], set[str]]:
    """(measurement, tags, fields) of points that set every field, as encode_point writes."""
    common: dict[str, Any] = dict(device="0123456789abcdef01234567", time_ns=1, created_ns=2,
                                  group="g", unit="C", lat=1.0, lng=2.0, metadata="{}")
    measurements, tags, fields = set(), set(), set()
    for value in (1.5, "text", True):
        line = encode_point(Point(variable="v", value=value, slot=1, **common))
        series, field_set, _ = line.split(" ")
        measurement, *pairs = series.split(",")
        measurements.add(measurement)
        tags.update(pair.split("=", 1)[0] for pair in pairs)
        fields.update(pair.split("=", 1)[0] for pair in field_set.split(","))
    (measurement,) = measurements
    return measurement, tags, fields


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def dashboard_queries() -> list[tuple[str, str]]:
    """(where, query) of every panel target and query variable."""
    board = dashboard()
    out = [(f"variable {v['name']}", v["query"]) for v in board["templating"]["list"]
           if v["type"] == "query"]
    for panel in board["panels"]:
        out += [(f"panel {panel['title']!r}", t["query"]) for t in panel.get("targets", [])]
    return out


def test_dashboard_is_the_devices_dashboard() -> None:
    board = dashboard()
    assert board["title"] == "Devices"
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["device"]["query"] == 'SHOW TAG VALUES FROM "data" WITH KEY = "device"'
    assert 'WITH KEY = "variable"' in variables["variable"]["query"]
    kinds = {p["type"] for p in board["panels"]}
    assert {"timeseries", "table"} <= kinds
    queries = [q for _, q in dashboard_queries()]
    assert any('mean("value")' in q and "GROUP BY time($__interval)" in q for q in queries)
    uid = grafana_datasource()["uid"]
    for panel in board["panels"]:
        assert panel["datasource"]["uid"] == uid
        assert all(t["datasource"]["uid"] == uid for t in panel["targets"])
    assert all(v["datasource"]["uid"] == uid for v in variables.values())


def test_dashboard_queries_name_only_what_the_schema_writes() -> None:
    measurement, tags, fields = written_schema()
    assert measurement == MEASUREMENT
    defined = {v["name"] for v in dashboard()["templating"]["list"]}
    for where, query in dashboard_queries():
        assert re.findall(r'FROM "([^"]+)"', query) == [measurement], (where, query)
        aliases = set(re.findall(r'\bAS "([^"]+)"', query))
        for name in re.findall(r'"([^"]+)"', query):
            assert name in {measurement} | tags | fields | aliases, (where, name)
        for name in re.findall(r'WITH KEY = "([^"]+)"', query):
            assert name in tags, (where, name)
        group_by = re.search(r"GROUP BY (.*?)(?: ORDER BY| fill\(| LIMIT|$)", query)
        if group_by:
            for name in re.findall(r'"([^"]+)"', group_by[1]):
                assert name in tags, (where, name)
        select = re.match(r"SELECT (.*?) FROM", query)
        if select:
            columns = re.sub(r'\bAS "[^"]+"', "", select[1])
            for name in re.findall(r'"([^"]+)"', columns):
                assert name in fields, (where, name)
        for name in re.findall(r'"([^"]+)" (?:=~|=|!=|!~)', query):
            assert name in tags, f"{where}: filter on the indexed tags, not on {name}"
        for variable in re.findall(r"\$(\w+)", query):
            assert variable in defined | {"timeFilter", "__interval"}, (where, variable)


GRAFANA_MACROS = {
    "$timeFilter": "time >= '2024-01-01T00:00:00Z' AND time < '2024-01-01T01:00:00Z'",
    "$__interval": "4m",
}


def test_dashboard_queries_run_on_influxdb(api: Any) -> None:
    device_id, token = api.device("full")
    points = []
    for minute in range(10):
        time_text = f"2024-01-01T00:{minute:02d}:00Z"
        points += [{"variable": "temperature", "value": 20 + minute, "unit": "C",
                    "time": time_text},
                   {"variable": "status", "value": "ok", "time": time_text}]
    with api.client(token) as client:
        response = client.post("/data", json=points)
    assert response.status_code == 200, response.text
    variable_values = {"All": ".*", "one": "temperature", "several": "(temperature|status)"}
    for where, query in dashboard_queries():
        for label, variable in variable_values.items():
            statement = query.replace("$device", device_id).replace("$variable", variable)
            for macro, value in GRAFANA_MACROS.items():
                statement = statement.replace(macro, value)
            response = httpx.post(f"{api.settings.influx_url}/query",
                                  params={"db": api.settings.influx_db}, data={"q": statement})
            assert response.status_code == 200, (where, response.text)
            (result,) = response.json()["results"]
            assert "error" not in result, (where, label, result)
            rows = [row for series in result.get("series", []) for row in series["values"]]
            assert rows, f"{where} ({label}): no data from {statement}"
            if "ORDER BY time DESC LIMIT 1" in query:  # the last value of each variable
                series = {s["tags"]["variable"]: s for s in result["series"]}
                if label == "several":
                    assert set(series) == {"temperature", "status"}
                    assert series["temperature"]["values"][0][1] == 29
                    assert series["status"]["values"][0][2] == "ok"


# -- the documentation ----------------------------------------------------------------------


def test_deployment_doc_covers_the_compose_file() -> None:
    text = DEPLOYMENT_DOC.read_text(encoding="utf-8")
    for phrase in ("docker compose up -d", "docker compose exec api devicedata device create "
                   "demo --json", "http://localhost:3000", "no Docker engine"):
        assert phrase in text, phrase
    for name in SERVICES:
        assert f"`{name}`" in text, f"docs/deployment.md does not describe {name}"
    for volume in compose()["volumes"]:
        assert f"`{volume}`" in text, f"docs/deployment.md does not describe {volume}"
