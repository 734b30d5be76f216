"""The Node-RED peer: the flows a hobbyist would wire, rendered for one run, and Node-RED
started from bench/nodered/node_modules against our broker and our InfluxDB.

Two flows, both ``mqtt in (devices/+/data, QoS 1) -> json -> function -> InfluxDB``:

- ``plain``: the function turns the TagoIO point into ``[fields, tags]`` for an
  ``influxdb out`` node: one InfluxDB write (one HTTP request) per message.
- ``batch``: the function builds a point object, a ``join`` node collects 1000 of them
  (or whatever arrived within 1 s), and an ``influxdb batch`` node writes the array.

Node-RED logs in to our broker with the bridge's broker account: the ACL lets only that
user read ``devices/+/data``. Its client id differs (``nodered-bench``) and it uses a clean
session, as Node-RED's MQTT node does by default. It writes to database ``nodered``,
measurement ``telemetry`` (tags device, variable; field value; the device's time).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from typing import Any

from lib import BENCH, Child, Env, stop_proc

from devicedata import procs

NR_DIR = BENCH / "nodered"
NR_DB = "nodered"

FN_PLAIN = """const p = msg.payload;
msg.payload = [
    { value: p.value, time: new Date(p.time) },
    { device: msg.topic.split('/')[1], variable: p.variable }
];
return msg;"""

FN_BATCH = """const p = msg.payload;
msg.payload = {
    measurement: 'telemetry',
    fields: { value: p.value },
    tags: { device: msg.topic.split('/')[1], variable: p.variable },
    timestamp: new Date(p.time)
};
return msg;"""


def flow(kind: str, mqtt_port: int, influx_port: int) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = [
        {"id": "tab", "type": "tab", "label": f"bench {kind}"},
        {"id": "broker", "type": "mqtt-broker", "name": "devicedata broker",
         "broker": "127.0.0.1", "port": str(mqtt_port), "clientid": "nodered-bench",
         "autoConnect": True, "usetls": False, "protocolVersion": "4", "keepalive": "60",
         "cleansession": True, "autoUnsubscribe": True, "birthTopic": "", "closeTopic": "",
         "willTopic": ""},
        {"id": "influx", "type": "influxdb", "hostname": "127.0.0.1", "port": str(influx_port),
         "protocol": "http", "database": NR_DB, "name": "local influx", "usetls": False,
         "tls": "", "influxdbVersion": "1.x"},
        {"id": "in", "type": "mqtt in", "z": "tab", "name": "devices", "topic": "devices/+/data",
         "qos": "1", "datatype": "utf8", "broker": "broker", "nl": False, "rap": True, "rh": 0,
         "inputs": 0, "x": 100, "y": 100, "wires": [["json"]]},
        {"id": "json", "type": "json", "z": "tab", "property": "payload", "action": "obj",
         "pretty": False, "x": 250, "y": 100, "wires": [["fn"]]},
    ]
    if kind == "plain":
        nodes += [
            {"id": "fn", "type": "function", "z": "tab", "name": "to influx", "func": FN_PLAIN,
             "outputs": 1, "x": 400, "y": 100, "wires": [["out"]]},
            {"id": "out", "type": "influxdb out", "z": "tab", "influxdb": "influx",
             "name": "telemetry", "measurement": "telemetry", "precision": "",
             "retentionPolicy": "", "x": 600, "y": 100, "wires": []},
        ]
    else:
        nodes += [
            {"id": "fn", "type": "function", "z": "tab", "name": "to point", "func": FN_BATCH,
             "outputs": 1, "x": 400, "y": 100, "wires": [["join"]]},
            {"id": "join", "type": "join", "z": "tab", "name": "1000 or 1 s", "mode": "custom",
             "build": "array", "property": "payload", "propertyType": "msg", "key": "topic",
             "joiner": "\\n", "joinerType": "str", "accumulate": False, "timeout": "1",
             "count": "1000", "reduceRight": False, "x": 550, "y": 100, "wires": [["batch"]]},
            {"id": "batch", "type": "influxdb batch", "z": "tab", "influxdb": "influx",
             "precision": "", "retentionPolicy": "", "name": "write batch", "x": 700, "y": 100,
             "wires": []},
        ]
    return nodes


class NodeRed(Child):
    def __init__(self, env: Env, kind: str, tag: str):
        assert env.mosquitto is not None and env.influx is not None
        self.env, self.kind = env, kind
        self.user_dir = env.dir / f"nodered-{tag}"
        self.log = env.dir / f"nodered-{tag}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = procs.free_port()

    def __enter__(self) -> NodeRed:
        env = self.env
        assert env.mosquitto is not None and env.influx is not None and env.settings
        if self.user_dir.exists():
            shutil.rmtree(self.user_dir)
        self.user_dir.mkdir(parents=True)
        (self.user_dir / "flows.json").write_text(json.dumps(
            flow(self.kind, env.mosquitto.port, env.influx.port), indent=1))
        (self.user_dir / "flows_cred.json").write_text(json.dumps({
            "broker": {"user": env.settings.mqtt_username, "password": env.bridge_password},
            "influx": {}}))
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                ["node", str(NR_DIR / "node_modules/node-red/red.js"), "--settings",
                 str(NR_DIR / "settings.js"), "--userDir", str(self.user_dir), "flows.json"],
                env={**os.environ, "NR_PORT": str(self.port)}, stdout=out, stderr=out,
                stdin=subprocess.DEVNULL, cwd=NR_DIR)

        def connected() -> bool:
            with self.log.open("rb") as f:
                f.seek(offset)
                return b"Connected to broker" in f.read()

        procs.wait_ready(connected, "Node-RED's broker connection", self.log, 60, self.proc)
        time.sleep(0.5)  # SUBSCRIBE follows the CONNACK
        return self

    def log_tail_errors(self) -> int:
        text = self.log.read_text(errors="replace")
        return sum(1 for line in text.splitlines() if "[error]" in line)

    def __exit__(self, *exc: Any) -> None:
        stop_proc(self.proc, timeout=10)
