"""The one-shot ``init`` service of docker-compose.yml: prepares the shared volumes before the
broker and the long-running services start.

Mosquitto refuses to start without its password and ACL files. The bridge can connect only
once its own user is in the password file. So before ``mosquitto`` starts (compose waits
for this process to exit 0), this writes, with the same code every process uses
(``bridge.registry.broker_sync.sync``):

- ``DATA_DIR/mqtt-bridge-password``: the bridge's broker password, generated once;
- ``MOSQUITTO_DIR/passwd``: the bridge's user plus one line per device in the registry;
- ``MOSQUITTO_DIR/acl``: rendered from ``bridge/registry/acl.template``;
- ``DATA_DIR/admin-token``: the admin API token, generated once unless configured.

It runs again on every ``docker compose up``, which is harmless: broker_sync rewrites only
changed files, and the secrets already in the data dir are kept. No secret is printed.
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
        broker_sync.sync(settings, registry)
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
