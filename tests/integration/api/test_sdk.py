"""The official TagoIO Python SDK, unmodified, against our running API."""

from __future__ import annotations

from typing import Any

import pytest
from tagoio_sdk import Device

from support.api import ApiServer


@pytest.fixture
def sdk(api: ApiServer) -> tuple[Device, str]:
    device_id, token = api.device("full")
    return Device({"token": token, "region": {"api": api.url, "sse": api.url}}), device_id


def test_send_get_edit_delete_info(sdk: tuple[Device, str]) -> None:
    device, device_id = sdk
    sent = device.sendData({"variable": "temperature", "value": 21.5, "unit": "C",
                            "group": "g1", "time": "2024-01-01T12:00:00Z",
                            "location": {"lat": 42.2974279, "lng": -85.628292},
                            "metadata": {"color": "red"}})
    assert sent == "1 Data Added"
    assert device.sendData([
        {"variable": "a", "value": True}, {"variable": "b", "value": "txt"},
        {"variable": "c", "value": 1, "time": "2024-01-02 03:04:05+00:00"},
        {"variable": "d", "value": 2, "time": "2024-01-02 03:04:05"},
    ]) == "4 Data Added"

    (point,) = device.getData({"variables": ["temperature"], "query": "last_value"})
    assert point["value"] == 21.5 and point["unit"] == "C" and point["group"] == "g1"
    assert point["location"]["coordinates"] == [-85.628292, 42.2974279]
    assert point["metadata"] == {"color": "red"}
    assert point["device"] == device_id
    assert str(point["time"]).startswith("2024-01-01")

    both = device.getData({"variables": ["c", "d"], "qty": 10, "ordination": "ascending",
                           "details": True})
    assert sorted(p["variable"] for p in both) == ["c", "d"]
    assert all("created_at" in p for p in both)

    # The SDK wraps a numeric result as [{"value": n, ...}].
    (count,) = device.getData({"query": "count", "variables": ["temperature"]})
    assert count["value"] == 1

    edited = device.editData({"id": point["id"], "value": 22, "unit": "F"})
    assert edited == "1 item(s) updated"
    (point,) = device.getData({"variables": ["temperature"]})
    assert (point["value"], point["unit"]) == (22, "F")

    removed = device.deleteData({"variables": ["a", "b"], "qty": 100})
    assert removed == "2 Data Removed"
    # The SDK's default is query=last_item: the newest point of each variable.
    assert device.deleteData() == "3 Data Removed"
    assert device.getData({"qty": 100}) == []
    info: Any = device.info()
    assert info["id"] == device_id


def test_sdk_sees_errors_as_exceptions(api: ApiServer) -> None:
    bad = Device({"token": "not-a-token", "region": {"api": api.url, "sse": api.url}})
    with pytest.raises(Exception, match="Authorization denied"):
        bad.getData()
    _, token = api.device("full")
    good = Device({"token": token, "region": {"api": api.url, "sse": api.url}})
    with pytest.raises(Exception, match=r"\[0\] variable is required"):
        good.sendData({"value": 1})
