"""bridge.model.topics: the one list of a device's topics, and that the bridge's
subscriptions, ingest's parsing and the broker's per-device role agree on it."""

from __future__ import annotations

import pytest

from bridge.model import topics
from bridge.model.formats import FORMAT_NAMES, PayloadFormat
from bridge.registry import dynsec

DEVICE = "0123456789abcdef01234567"
DATA_TOPICS = ["data", "data/t", "data/", "kv", "senml", "senml/cbor"]
OTHER_TOPICS = ["errors", "datax", "kv/x", "senml/xml", "senml/cbor/x", "cbor", ""]
# Formats would take it (variable "room/1"), but a raw value's variable is one topic level:
# no subscription, no ACL line covers it.
DEEPER = "data/room/1"


def matches(topic_filter: str, topic: str) -> bool:
    """MQTT's topic matching (section 4.7), ``#`` including the parent level."""
    f, t = topic_filter.split("/"), topic.split("/")
    for i, part in enumerate(f):
        if part == "#":
            return len(t) >= i
        if i >= len(t) or (part != "+" and part != t[i]):
            return False
    return len(f) == len(t)


def test_subscriptions() -> None:
    assert topics.data_filters() == ("devices/+/data", "devices/+/data/+", "devices/+/kv",
                                      "devices/+/senml", "devices/+/senml/cbor")
    assert topics.data_filters("g1") == tuple(f"$share/g1/{s}" for s in topics.data_filters())


@pytest.mark.parametrize("suffix", DATA_TOPICS)
def test_each_data_topic_matches_exactly_one_subscription(suffix: str) -> None:
    topic = f"devices/{DEVICE}/{suffix}"
    assert sum(matches(s, topic) for s in topics.data_filters()) == 1  # never delivered twice
    device_id, fmt = topics.parse(topic)
    assert device_id == DEVICE and fmt is not None


@pytest.mark.parametrize("suffix", [*OTHER_TOPICS, DEEPER])
def test_other_topics_match_no_subscription(suffix: str) -> None:
    topic = f"devices/{DEVICE}/{suffix}"
    assert not any(matches(s, topic) for s in topics.data_filters())
    if suffix != DEEPER:
        assert topics.parse(topic) == ((DEVICE, None) if suffix else ("", None))


def test_every_format_has_a_topic() -> None:
    names = {fmt.name for s in DATA_TOPICS if (fmt := topics.parse(f"devices/d/{s}")[1])}
    assert names == set(FORMAT_NAMES)
    assert topics.parse("devices/d/data/a/b")[1] == PayloadFormat("raw", "a/b")


@pytest.mark.parametrize("topic", ["devices", "devices/x", "devices//data", "x/d/data",
                                   "Devices/d/data", "/devices/d/data"])
def test_not_under_devices(topic: str) -> None:
    assert topics.parse(topic) == ("", None)


def test_a_devices_role_lets_it_publish_only_to_its_own_data_topics() -> None:
    acls = dynsec.device_acls(DEVICE)
    own = [a["topic"] for a in acls if a["acltype"] == "publishClientSend"]
    for suffix in DATA_TOPICS:
        assert any(matches(t, f"devices/{DEVICE}/{suffix}") for t in own), suffix
        assert not any(matches(t, f"devices/other/{suffix}") for t in own), suffix
    for suffix in [*OTHER_TOPICS, DEEPER]:
        assert not any(matches(t, f"devices/{DEVICE}/{suffix}") for t in own), suffix
    assert {a["topic"] for a in acls if a["acltype"] != "publishClientSend"} == {
        topics.errors_topic(DEVICE)}
