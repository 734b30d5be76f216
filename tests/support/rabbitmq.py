"""A RabbitMQ node of our own for the broker-hook test: private ports, its own data, log,
config and Erlang cookie in a temporary directory; never the machine's node (5672/25672)
nor its cookie (/var/lib/rabbitmq/.erlang.cookie).

Debian's /usr/sbin/rabbitmq-server is a wrapper that switches to the ``rabbitmq`` user
(whose HOME holds the machine node's cookie) and writes to /var/log/rabbitmq; we run the
real script under /usr/lib/rabbitmq/bin instead, with HOME set to our directory, so Erlang
makes a cookie of our own there and the node name ``devicedata-test-<random>@localhost``
registers beside the machine's in the shared epmd, like any other node would.
"""

from __future__ import annotations

import glob
import os
import secrets
import subprocess
import time
from pathlib import Path

from devicedata.procs import free_port, tcp_accepts

SCRIPTS = Path("/usr/lib/rabbitmq/bin")
PLUGINS = ("rabbitmq_mqtt", "rabbitmq_auth_backend_http")


def missing() -> str:
    """Why a node cannot be started here, or "" when it can."""
    if not (SCRIPTS / "rabbitmq-server").exists():
        return f"RabbitMQ is not installed ({SCRIPTS}/rabbitmq-server missing: " \
               "apt-get install rabbitmq-server)"
    for plugin in PLUGINS:
        if not glob.glob(f"/usr/lib/rabbitmq/lib/rabbitmq_server-*/plugins/{plugin}-*"):
            return f"RabbitMQ's {plugin} plugin is not installed"
    return ""


class RabbitNode:
    def __init__(self, root: Path, hook_url: str, secret: str) -> None:
        self.root = root
        self.name = f"devicedata-test-{secrets.token_hex(4)}@localhost"
        self.amqp_port, self.dist_port, self.mqtt_port = free_port(), free_port(), free_port()
        self.log = root / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("RABBITMQ_")},
            "HOME": str(root / "home"), "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.amqp_port), "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(root / "mnesia"), "RABBITMQ_LOG_BASE": str(root / "log"),
            "RABBITMQ_LOGS": "-", "RABBITMQ_CONFIG_FILE": str(root / "rabbitmq"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(root / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(root / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(root / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(root / "rabbit.pid"),
        }
        for sub in ("home", "mnesia", "log"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        (root / "rabbitmq-env.conf").write_text("")
        (root / "enabled_plugins").write_text(f"[{','.join(PLUGINS)}].\n")
        paths = "\n".join(f"auth_http.{kind}_path = {hook_url}/broker/rabbitmq/{kind}"
                          f"?secret={secret}" for kind in ("user", "vhost", "resource", "topic"))
        (root / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.amqp_port}\n"
            f"mqtt.listeners.tcp.default = 127.0.0.1:{self.mqtt_port}\n"
            "mqtt.allow_anonymous = false\n"
            "loopback_users = none\n"
            "auth_backends.1 = http\n"
            "auth_http.http_method = post\n"
            f"{paths}\n")

    def start(self, timeout: float = 90.0) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([str(SCRIPTS / "rabbitmq-server")], env=self.env,
                                         stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                                         cwd=self.root)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("RabbitMQ exited at start:\n" + self.tail())
            if b"Server startup complete" in self.log.read_bytes():
                try:
                    if tcp_accepts("127.0.0.1", self.mqtt_port):
                        return
                except OSError:
                    pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"RabbitMQ did not start in {timeout:.0f} s:\n" + self.tail())
            time.sleep(0.2)

    def stop(self) -> None:
        """``rabbitmqctl stop`` on our node (by its name, with our cookie), then make sure
        the process we started is gone."""
        if self.proc is None:
            return
        subprocess.run([str(SCRIPTS / "rabbitmqctl"), "-n", self.name, "stop"], env=self.env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60,
                       check=False)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def tail(self, size: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-size:] if self.log.exists() else ""
