"""The one-shot ``init`` service of docker-compose.yml: prepares the shared volumes before the
broker and the long-running services start.

Mosquitto refuses to start without its password file and its access rules, and reads the
rules only when it starts. So before ``mosquitto`` starts (compose waits for this process
to exit 0), this writes, with the same code the local stack uses
(``bridge.registry.broker_sync.prepare``):

- ``DATA_DIR/mqtt-bridge-password`` and ``mqtt-admin-password``: generated once;
- ``MOSQUITTO_DIR/passwd``: our own users plus one line per device in the registry;
- ``MOSQUITTO_DIR/dynamic-security.json``: a role per device, and our users' roles;
- ``DATA_DIR/admin-token``: the admin API token, generated once unless configured.

It runs again on every ``docker compose up``, which is harmless: the files are rendered from
the registry, the broker is not running yet, and the secrets already in the data dir are
kept. No secret is printed.
"""

from __future__ import annotations

import sys

from bridge.registry import broker_sync, open_registry
from bridge.registry.devices import admin_token
from bridge.settings import Settings


def main() -> int:
    settings = Settings.from_env()
    registry = open_registry(settings.registry_location)
    try:
        broker_sync.prepare(settings, registry)
        devices = len(registry.list_devices())
    finally:
        registry.close()
    admin_token(settings)
    print(f"event=init_done broker_dir={settings.broker_dir} "
          f"bridge_user={settings.mqtt_username} devices={devices} "
          f"data_dir={settings.data_dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
