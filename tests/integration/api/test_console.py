"""The console's flows end to end in Chromium against the real stack (API, a real bridge
process, Mosquitto, InfluxDB): create a device in the page, publish with its token over
MQTT, see the value, open the history, export, watch a rejection arrive live with its
reason, revoke the token and see the next publish refused, rename and delete; give a token
a LoRaWAN serial and create a network in the page, post a ChirpStack uplink with that
network's token, see it on the device, revoke the network and see the webhook refused.

Leaves the console's screenshot in docs/console.png (the README shows it), so that it
never goes stale."""

from __future__ import annotations

import csv
import json
import math
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright import sync_api

from bridge.model.timeparse import format_iso_ms
from bridge.settings import Settings
from support.api import ApiServer
from support.browser import DESKTOP, Watched, browser  # noqa: F401 (a fixture)
from support.mqtt import (
    BridgeProcess,
    connect_when_allowed,
    running_bridge,
    wait_refused,
    wait_until,
)

DOCS = Path(__file__).resolve().parents[3] / "docs"
LORAWAN = Path(__file__).resolve().parents[2] / "fixtures" / "lorawan"
TEMPERATURES = [round(62 + 6 * math.sin(i / 9) + (i % 5) / 4, 2) for i in range(80)]


@pytest.fixture(scope="module")
def bridge(stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[BridgeProcess]:
    yield from running_bridge(stack_settings.replace(mqtt_client_id="console-bridge"),
                              tmp_path_factory.mktemp("bridge") / "bridge.log")


@pytest.fixture
def console(api: ApiServer, browser: Any) -> Iterator[Watched]:  # noqa: F811
    watched = Watched(browser, DESKTOP)
    watched.page.goto(api.url + "/")
    watched.sign_in(api.state.admin_token)
    yield watched
    watched.close()
    assert watched.dialogs == []
    assert watched.errors == []


def create_device(page: Any, name: str) -> tuple[str, str]:
    """The "New device" flow; (device id, token) as the page showed them, once."""
    page.get_by_role("button", name="New device").click()
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_role("button", name="Create", exact=True).click()
    dialog = page.locator("#device-dialog")
    token = dialog.locator(".secret-text").text_content()
    snippets = dialog.locator("#snippets").text_content()
    sync_api.expect(page.locator("#device-title")).to_have_text(name)
    device_id = page.locator("#device-id").text_content()
    assert token and device_id and token in snippets and f"devices/{device_id}/data" in snippets
    assert "curl" in snippets and "mosquitto_pub" in snippets
    dialog.get_by_role("button", name="Done").click()
    sync_api.expect(dialog).not_to_be_visible()
    return device_id, token


def local_input(page: sync_api.Page, ns: int) -> str:
    """A datetime-local input's value for ``ns``, in the browser's own time zone."""
    value: str = page.evaluate("""(ms) => {
        const d = new Date(ms), p = (n) => String(n).padStart(2, "0");
        return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T` +
               `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
    }""", ns // 10**6)
    return value


def test_create_publish_see_history_export(api: ApiServer, bridge: BridgeProcess,
                                           console: Watched, tmp_path: Path) -> None:
    page = console.page
    device_id, token = create_device(page, "Boiler room")
    client = connect_when_allowed(api.settings, device_id, token)
    now = time.time_ns()
    try:
        topic = f"devices/{device_id}/data"
        client.publish(topic, json.dumps(
            [{"variable": "temperature", "value": TEMPERATURES[i], "unit": "°C",
              "time": format_iso_ms(now - (80 - i) * 45 * 10**9)} for i in range(80)]))
        client.publish(topic, json.dumps([{"variable": "pressure", "value": 1.5, "unit": "bar"},
                                          {"variable": "state", "value": "heating"}]))
    finally:
        client.close()

    rows = page.locator("#variables tbody tr")
    sync_api.expect(rows).to_have_count(3, timeout=8000)
    temperature = rows.filter(has_text="temperature")
    sync_api.expect(temperature.locator("td").nth(1)).to_have_text(str(TEMPERATURES[-1]))
    sync_api.expect(temperature.locator("svg.spark polyline")).to_have_count(1)

    # History: the table (newest first, in pages), the chart, deleting one point.
    page.get_by_role("button", name="History of temperature").click()
    sync_api.expect(page.locator("#history-title")).to_have_text("History of temperature")
    table = page.locator("#history-table tbody tr")
    sync_api.expect(table).to_have_count(50)
    sync_api.expect(page.locator("#chart polyline")).to_have_count(1)
    sync_api.expect(page.locator("#chart-caption")).to_contain_text("80 points")
    page.get_by_role("button", name="Older").click()
    sync_api.expect(table).to_have_count(30)
    sync_api.expect(page.get_by_role("button", name="Older")).to_be_disabled()
    page.get_by_role("button", name="Newer").click()
    sync_api.expect(table).to_have_count(50)
    page.get_by_role("button", name="Last hour").click()
    sync_api.expect(page.locator("#chart")).to_have_attribute("data-range", "3600")
    sync_api.expect(page.locator("#chart-caption")).to_contain_text(
        re.compile(r"temperature: (7[89]|80) points"))
    page.screenshot(path=str(DOCS / "console.png"))
    # From/to: the points 500 to 1,000 s old are the 11 sent 540 to 990 s before `now`.
    ranged = page.get_by_role("group", name="Time range")
    ranged.get_by_label("From").fill(local_input(page, now - 1000 * 10**9))
    ranged.get_by_label("To").fill(local_input(page, now - 500 * 10**9))
    ranged.get_by_role("button", name="Show range").click()
    sync_api.expect(page.locator("#chart-caption")).to_contain_text("temperature: 11 points")
    sync_api.expect(table).to_have_count(11)
    page.get_by_role("button", name="Last hour").click()
    sync_api.expect(table).to_have_count(50)
    newest = table.first.locator("td").first.locator("time").get_attribute("datetime")
    page.get_by_role("button", name=f"Delete point at {newest}").click()
    sync_api.expect(table.first.locator("time")).not_to_have_attribute("datetime", newest)
    page.get_by_role("button", name="All variables").click()
    sync_api.expect(temperature.locator("td").nth(1)).to_have_text(str(TEMPERATURES[-2]))

    # Export: all variables as CSV, then one variable.
    page.get_by_role("tab", name="Export").click()
    with page.expect_download() as download:
        page.get_by_role("button", name="Export CSV").click()
    lines = list(csv.reader(Path(download.value.path()).read_text().splitlines()))
    assert lines[0] == ["time", "variable", "value", "unit", "group", "lat", "lng", "metadata"]
    assert len(lines) == 1 + 79 + 2
    assert sorted({r[1] for r in lines[1:]}) == ["pressure", "state", "temperature"]
    page.locator("#export-variables").get_by_label("pressure").check()
    with page.expect_download() as download:
        page.get_by_role("button", name="Export JSON lines").click()
    (only,) = [json.loads(x) for x in Path(download.value.path()).read_text().splitlines()]
    assert only["variable"] == "pressure" and only["value"] == 1.5


def test_live_rejection_then_revoke_then_delete(api: ApiServer, bridge: BridgeProcess,
                                                console: Watched) -> None:
    page = console.page
    device_id, token = create_device(page, "Pump 7")
    page.get_by_role("tab", name="Live").click()
    sync_api.expect(page.locator("#live-status")).to_contain_text("Watching", timeout=8000)
    live = page.get_by_role("log", name="Live")
    client = connect_when_allowed(api.settings, device_id, token)
    try:
        topic = f"devices/{device_id}/data"
        client.publish(topic, json.dumps({"variable": "flow", "value": 3.5}))
        client.publish(topic, json.dumps([{"variable": "flow", "value": None}]))
        rejected = live.locator("li.event.rejected")
        sync_api.expect(rejected).to_have_count(1, timeout=3000)
        sync_api.expect(rejected).to_contain_text("invalid")
        sync_api.expect(rejected).to_contain_text("[0] value")
        sync_api.expect(rejected).to_contain_text('"value": null')  # the payload, as text
        sync_api.expect(live.locator("li.event.accepted")).to_contain_text("1 point")

        # Tokens: a new one shown once, then the device's own revoked.
        page.get_by_role("tab", name="Tokens").click()
        tokens = page.locator("#tokens tbody tr")
        sync_api.expect(tokens).to_have_count(1)
        page.get_by_role("button", name="New token").click()
        page.get_by_label("Permission").select_option("read")
        page.get_by_role("button", name="Create", exact=True).click()
        newer = page.locator("#token-dialog .secret-text").text_content()
        assert newer and newer != token
        page.locator("#token-dialog").get_by_role("button", name="Done").click()
        sync_api.expect(tokens).to_have_count(2)
        first = tokens.filter(has_text=token[:8])
        first.get_by_role("button", name="Revoke").click()
        sync_api.expect(first.locator("td").nth(5)).to_have_text("revoked")
        # The broker drops the open connection at once, and refuses the token from then on.
        wait_until(lambda: client.disconnects >= 1, what="the open connection to be dropped")
        wait_refused(api.settings, device_id, token)
    finally:
        client.close()

    page.get_by_role("tab", name="Settings").click()
    page.get_by_label("New name").fill("Pump 7b")
    page.get_by_role("button", name="Rename").click()
    sync_api.expect(page.locator("#device-title")).to_have_text("Pump 7b")
    delete = page.get_by_role("button", name="Delete device")
    sync_api.expect(delete).to_be_disabled()
    page.get_by_label("Type the device's name to confirm").fill("Pump 7")
    sync_api.expect(delete).to_be_disabled()
    page.get_by_label("Type the device's name to confirm").fill("Pump 7b")
    delete.click()
    sync_api.expect(page.locator("#device")).to_be_hidden()
    sync_api.expect(page.locator("#status")).to_contain_text("Deleted Pump 7b")
    assert device_id not in page.locator("#devices").text_content()


def create_serial_token(page: Any, serial: str) -> sync_api.Locator:
    """The "New token" flow with a serial number, on the chosen device's Tokens tab; the
    dialog, still open (the token shown once, or the API's refusal)."""
    page.get_by_role("tab", name="Tokens").click()
    page.get_by_role("button", name="New token").click()
    page.get_by_label("Permission").select_option("write")
    page.get_by_label("Serial number").fill(serial)
    page.get_by_role("button", name="Create", exact=True).click()
    return page.locator("#token-dialog")


def create_network(page: Any, name: str, origin: str) -> str:
    """The "New network" flow; the network token as the page showed it, once."""
    page.get_by_role("button", name="New network").click()
    page.get_by_label("Network name").fill(name)
    page.get_by_role("button", name="Create", exact=True).click()
    dialog = page.locator("#network-dialog")
    token = dialog.locator(".secret-text").text_content()
    assert token and token.startswith("net_")
    sync_api.expect(dialog.get_by_role("button", name="Copy network token")).to_be_focused()
    sync_api.expect(dialog).to_contain_text("/integrations/chirpstack?event=up")
    webhooks = dialog.locator("#webhooks")
    sync_api.expect(webhooks).to_contain_text(f"{origin}/integrations/chirpstack")
    sync_api.expect(webhooks).to_contain_text(f"{origin}/integrations/ttn")
    sync_api.expect(webhooks).to_contain_text(f"Authorization: {token}")
    dialog.get_by_role("button", name="Done").click()
    sync_api.expect(dialog).not_to_be_visible()
    return token


def chirpstack_uplink(eui: str) -> dict[str, Any]:
    """ChirpStack's documented "up" event with its codec's object ({temp: 22.5})."""
    body: dict[str, Any] = json.loads((LORAWAN / "chirpstack-up-codec.json").read_text())
    body["deviceInfo"]["devEui"] = eui
    return body


def test_serial_token_and_network_carry_an_uplink_until_revoked(
        api: ApiServer, console: Watched) -> None:
    page = console.page
    suffix = secrets.token_hex(3)
    device_id, token = create_device(page, f"Soil sensor {suffix}")
    eui = secrets.token_hex(8)
    spelled = "-".join(eui[i:i + 2] for i in range(0, 16, 2)).upper()  # as labels print it
    dialog = create_serial_token(page, spelled)
    assert dialog.locator(".secret-text").text_content()
    dialog.get_by_role("button", name="Done").click()
    row = page.locator("#tokens tbody tr").filter(has_text=eui)
    sync_api.expect(row.locator("td").nth(2)).to_have_text(eui)  # stored as 16 hex digits
    sync_api.expect(row.locator("td").nth(3)).to_have_text("write")

    name = f"chirpstack-{suffix}"
    network = create_network(page, name, api.url)
    listed = page.locator("#networks tbody tr").filter(has_text=name)
    sync_api.expect(listed.locator("td").nth(1)).to_have_text(f"{network[:12]}…")
    sync_api.expect(listed.locator("td").nth(2)).to_have_text("active")

    webhook = f"{api.url}/integrations/chirpstack"
    sent = httpx.post(webhook, params={"event": "up"}, json=chirpstack_uplink(eui),
                      headers={"authorization": network}, timeout=30)
    assert sent.status_code == 200 and sent.json()["result"] == "8 Data Added", sent.text
    page.get_by_role("tab", name="Data").click()
    temp = page.locator("#variables tbody tr").filter(has_text="temp")
    sync_api.expect(temp.locator("td").nth(1)).to_have_text("22.5", timeout=8000)
    with api.client(token) as client:
        (point,) = client.get("/data", params={"variable": "temp"}).json()["result"]
    assert point["value"] == 22.5 and point["device"] == device_id

    listed.get_by_role("button", name="Revoke").click()
    sync_api.expect(listed.locator("td").nth(2)).to_have_text("revoked")
    sync_api.expect(page.locator("#status")).to_contain_text(f"Network {name}")
    sync_api.expect(listed.get_by_role("button", name="Revoke")).to_have_count(0)
    refused = httpx.post(webhook, params={"event": "up"}, json=chirpstack_uplink(eui),
                         headers={"authorization": network}, timeout=30)
    assert refused.status_code == 401, refused.text


def test_a_refused_serial_shows_the_apis_message(api: ApiServer, console: Watched) -> None:
    page = console.page
    device_id, _ = create_device(page, f"Tracker {secrets.token_hex(3)}")
    eui = secrets.token_hex(8)
    path = f"{api.url}/admin/devices/{device_id}/tokens"
    headers = {"admin-token": api.state.admin_token}
    first = httpx.post(path, json={"permission": "write", "serie_number": eui},
                       headers=headers, timeout=30)
    assert first.status_code == 200, first.text
    for serial, status in ((eui.upper(), 409), ("not a serial!", 400)):
        refusal = httpx.post(path, json={"permission": "write", "serie_number": serial},
                             headers=headers, timeout=30)
        assert refusal.status_code == status, refusal.text
        message = refusal.json()["message"]
        dialog = create_serial_token(page, serial)
        sync_api.expect(dialog.get_by_role("alert")).to_have_text(f"Cannot create: {message}")
        sync_api.expect(dialog.locator("#token-form")).to_be_visible()  # nothing was created
        dialog.get_by_role("button", name="Cancel").click()
        sync_api.expect(dialog).not_to_be_visible()
    sync_api.expect(page.locator("#tokens tbody tr")).to_have_count(2)
    # Chromium itself logs each refused request ("status of 409"); only other errors count.
    refused = re.compile(r"status of (400|409)")
    console.errors[:] = [e for e in console.errors if not refused.search(e)]
