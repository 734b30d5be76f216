"""The broker's access rules as answers to a broker that asks over HTTP (EMQX, VerneMQ,
mosquitto-go-auth, RabbitMQ: ``api/broker_hooks.py``). Pure: no I/O here; who a client is
comes from ``broker_login``.

The rules are the roles of ``dynsec`` (what a Mosquitto with the dynamic-security plugin
enforces), read as yes/no questions:

- a **device** (user name = its id) publishes only to its own topics of the contract
  (``bridge.model.topics.PUBLISH_SUFFIXES``) and subscribes to, and receives, only its own
  errors topic, literally: no wildcard, no ``$share/...`` filter, nobody else's topic;
- a **bridge** subscribes to and receives ``devices/...`` (``$share/GROUP/devices/...``
  too), and publishes only to ``devices/+/errors``; for the live inspector it also hears
  watch leases and publishes events (``bridge/inspector``);
- an **api** user uses only the inspector's topics; the broker **admin** only
  ``$CONTROL/dynamic-security``.

A client id, where the broker tells it, must be the device's own id (or empty: the broker
then makes one up): that is how a device is kept from taking another's session, or a
bridge's, on brokers that cannot bind client ids to user names themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.inspector.events import EVENTS_PREFIX, WATCH_PREFIX
from bridge.inspector.events import PREFIX as INSPECT_PREFIX
from bridge.model.topics import PREFIX, PUBLISH_SUFFIXES, errors_topic
from bridge.registry.dynsec import ADMIN_ROLE, API_ROLE, BRIDGE_ROLE

DEVICE_ROLE = "device"
MAX_TOPIC = 1024  # bytes of UTF-8; a device's longest topic is under 150
MAX_VARIABLE = 100  # characters of a variable name (SPEC section 2), on data/{variable}
CONTROL = "$CONTROL/dynamic-security/"
RABBITMQ_VHOST = "/"
RABBITMQ_EXCHANGE = "amq.topic"  # where RabbitMQ's MQTT plugin publishes and binds


@dataclass(frozen=True, slots=True)
class Identity:
    username: str
    role: str  # DEVICE_ROLE, or one of dynsec's service roles


def client_id_allowed(identity: Identity, client_id: str | None) -> bool:
    """Devices connect under their own id as client id (or none given); our own users,
    which hold the shared secret, under any."""
    if identity.role != DEVICE_ROLE:
        return True
    return not client_id or client_id == identity.username


def _plain(topic: str) -> bool:
    return (0 < len(topic.encode("utf-8", "replace")) <= MAX_TOPIC
            and not any(c in topic for c in "+#\0"))


def _under_devices(topic_filter: str) -> bool:
    return topic_filter.startswith(PREFIX + "/") and "\0" not in topic_filter


def may_publish(identity: Identity, topic: str) -> bool:
    if not _plain(topic):
        return False
    if identity.role == DEVICE_ROLE:
        own = f"{PREFIX}/{identity.username}/"
        if not topic.startswith(own):
            return False
        suffix = topic[len(own):]
        if suffix in PUBLISH_SUFFIXES:
            return True
        variable = suffix.removeprefix("data/")
        return ("data/+" in PUBLISH_SUFFIXES and suffix.startswith("data/")
                and 0 < len(variable) <= MAX_VARIABLE and "/" not in variable)
    if identity.role == BRIDGE_ROLE:
        parts = topic.split("/")
        return (len(parts) == 3 and parts[0] == PREFIX and bool(parts[1])
                and parts[2] == "errors") or topic.startswith(EVENTS_PREFIX)
    if identity.role == API_ROLE:
        return topic.startswith(INSPECT_PREFIX)
    if identity.role == ADMIN_ROLE:
        return topic.startswith(CONTROL)
    return False


def may_subscribe(identity: Identity, topic_filter: str) -> bool:
    if not topic_filter or len(topic_filter.encode("utf-8", "replace")) > MAX_TOPIC:
        return False
    if identity.role == DEVICE_ROLE:
        # Literally its own errors topic: a "$share/..." filter, a wildcard or another
        # device's topic would let it take messages meant for others.
        return topic_filter == errors_topic(identity.username)
    if identity.role == BRIDGE_ROLE:
        if topic_filter.startswith("$share/"):
            parts = topic_filter.split("/", 2)
            group, rest = parts[1], parts[2] if len(parts) == 3 else ""
            return bool(group) and not any(c in group for c in "+#") and _under_devices(rest)
        return _under_devices(topic_filter) or topic_filter.startswith(WATCH_PREFIX)
    if identity.role == API_ROLE:
        return topic_filter.startswith(INSPECT_PREFIX)
    if identity.role == ADMIN_ROLE:
        return topic_filter.startswith(CONTROL)
    return False


def may_receive(identity: Identity, topic: str) -> bool:
    """A delivery to the client (mosquitto-go-auth asks for each: "read")."""
    if not _plain(topic):
        return False
    if identity.role == DEVICE_ROLE:
        return topic == errors_topic(identity.username)
    if identity.role == BRIDGE_ROLE:
        return _under_devices(topic) or topic.startswith(WATCH_PREFIX)
    if identity.role == API_ROLE:
        return topic.startswith(INSPECT_PREFIX)
    if identity.role == ADMIN_ROLE:
        return topic.startswith(CONTROL)
    return False


# -- RabbitMQ's MQTT plugin speaks AMQP inside: its questions name queues and routing keys --

def mqtt_topic(routing_key: str) -> str:
    """RabbitMQ's MQTT plugin turns a topic's "/" into "." and "." into "/", and a
    filter's "+" into "*"; this turns its routing key back into the MQTT topic."""
    swapped = routing_key.translate(str.maketrans("./", "/."))
    return "/".join("+" if level == "*" else level for level in swapped.split("/"))


def rabbitmq_queue_names(client_id: str) -> tuple[str, str]:
    """The queues RabbitMQ's MQTT plugin (3.x) declares for a session."""
    return f"mqtt-subscription-{client_id}qos0", f"mqtt-subscription-{client_id}qos1"


def rabbitmq_resource(identity: Identity, client_id: str, resource: str, name: str,
                      permission: str) -> bool:
    """A queue or exchange RabbitMQ asks about: the client's own session queues (a device's
    are named after its id, the only client id it may use) and the MQTT exchange."""
    if identity.role == API_ROLE:
        return False
    if resource == "exchange":
        return name == RABBITMQ_EXCHANGE and permission in ("read", "write")
    if resource == "queue":
        if not client_id or not client_id_allowed(identity, client_id):
            return False
        return name in rabbitmq_queue_names(client_id) and permission in (
            "configure", "read", "write")
    return False


def rabbitmq_topic(identity: Identity, name: str, permission: str, routing_key: str) -> bool:
    """Topic authorisation on the MQTT exchange: "write" is a PUBLISH, "read" a SUBSCRIBE
    (the routing key is then the filter)."""
    if name != RABBITMQ_EXCHANGE:
        return False
    topic = mqtt_topic(routing_key)
    if permission == "write":
        return may_publish(identity, topic)
    if permission == "read":
        return may_subscribe(identity, topic)
    return False
