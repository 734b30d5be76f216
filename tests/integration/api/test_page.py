"""The console page in a real headless Chromium (Debian's ``chromium``, driven by
Playwright through ``executable_path``: nothing is downloaded): static files, hostile
device strings, the Data tab updating itself, a phone-sized screen, the keyboard alone
(devices, tabs, a token's serial number, networks).
The flows against a real bridge are in test_console.py."""

from __future__ import annotations

import re
import secrets
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright import sync_api

from bridge.model.timeparse import format_iso_ms
from support.api import ApiServer
from support.browser import DESKTOP, Watched, browser  # noqa: F401 (a fixture)

ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = ROOT / "artifacts"
STATIC = ROOT / "api" / "static"
HOSTILE = "<img src=x onerror=alert(1)>"
PHONE = {"width": 375, "height": 740}


def admin_call(api: ApiServer, method: str, path: str, **kwargs: Any) -> Any:
    response = httpx.request(method, api.url + path, timeout=30,
                             headers={"admin-token": api.state.admin_token}, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()["result"]


def post(api: ApiServer, token: str, body: Any) -> None:
    with api.client(token) as client:
        response = client.post("/data", json=body)
        assert response.status_code == 200, response.text


def test_page_and_static_files_are_served_safely(api: ApiServer) -> None:
    page = httpx.get(api.url + "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert 'src="/static/app.js"' in page.text
    names = sorted(p.name for p in STATIC.iterdir())
    assert "app.js" in names and "spark.js" in names and "app.css" in names
    for name in names:
        response = httpx.get(f"{api.url}/static/{name}")
        kind = {".js": "javascript", ".css": "text/css", ".html": "text/html"}[
            Path(name).suffix]
        assert response.status_code == 200 and kind in response.headers["content-type"]
        # Nothing may come from anywhere but this server, nor be parsed as markup.
        text = (STATIC / name).read_text()
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
        assert "https://" not in text
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write",
                     "eval(", "new Function"):
            assert sink not in text, (name, sink)
        assert "style=" not in text or name.endswith(".css"), name  # the CSP forbids it
    missing = httpx.get(api.url + "/static/nope.js")
    assert missing.status_code == 404 and missing.json()["status"] is False


@pytest.mark.parametrize("path", ["/", "/static/index.html", "/static/app.js",
                                  "/static/app.css"])
def test_every_page_path_carries_the_csp_and_framing_headers(api: ApiServer, path: str) -> None:
    """/static/index.html is the same page as /: it must not be framable or lose its CSP."""
    response = httpx.get(api.url + path)
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_data_tab_shows_hostile_strings_as_text_and_updates_itself(
        api: ApiServer, browser: Any) -> None:  # noqa: F811
    device = admin_call(api, "POST", "/admin/devices", json={"name": f"Greenhouse {HOSTILE}"})
    now = time.time_ns()
    history = [{"variable": "temperature", "value": 18 + i / 2, "unit": "°C",
                "time": format_iso_ms(now - (12 - i) * 240 * 10**9)} for i in range(12)]
    post(api, device["token"], [*history,
                                {"variable": "humidity", "value": 41, "unit": "%"},
                                {"variable": HOSTILE, "value": "<script>alert(2)</script>",
                                 "unit": "<b>u</b>"},
                                {"variable": "door_open", "value": False}])

    ARTIFACTS.mkdir(exist_ok=True)
    watched = Watched(browser, DESKTOP)
    page = watched.page
    try:
        page.goto(api.url + "/")
        watched.sign_in("not-the-token")
        sync_api.expect(page.locator("#signin-error")).to_contain_text("refused")
        # The refused attempt is logged by the browser itself ("401"); only later errors count.
        watched.errors.clear()
        watched.sign_in(api.state.admin_token)

        page.get_by_role("button", name=f"Open Greenhouse {HOSTILE}").click()
        sync_api.expect(page.locator("#device-title")).to_have_text(f"Greenhouse {HOSTILE}")
        rows = page.locator("#variables tbody tr")
        sync_api.expect(rows).to_have_count(4)
        shown = {r[0]: r[1:] for r in rows.evaluate_all(
            "rows => rows.map(r => [...r.cells].map(c => c.textContent))")}
        assert shown["temperature"][:2] == ["23.5", "°C"]
        assert shown["humidity"][:2] == ["41", "%"]
        assert shown[HOSTILE][:2] == ["<script>alert(2)</script>", "<b>u</b>"]
        assert shown["door_open"][:2] == ["false", ""]
        assert page.locator("main img, main script, main b").count() == 0
        device_row = page.locator("#devices tbody tr.selected")
        sync_api.expect(device_row).to_contain_text(device["id"])
        sync_api.expect(device_row.locator("td").nth(3)).to_have_text("15")
        sync_api.expect(page.locator("#device-activity")).to_have_text("active")

        # A sparkline for each numeric variable: 12 minute-means for temperature.
        spark = rows.filter(has_text="temperature").locator("svg.spark polyline")
        sync_api.expect(spark).to_have_attribute("points", _count_points(12))
        assert rows.filter(has_text="door_open").locator("svg").count() == 0

        # New data arrives: the page shows it by itself (it polls every 2 s).
        post(api, device["token"], [{"variable": "temperature", "value": 24.75, "unit": "°C"},
                                    {"variable": "pressure", "value": 1013, "unit": "hPa"}])
        temperature = rows.filter(has_text="temperature").locator("td").nth(1)
        sync_api.expect(temperature).to_have_text("24.75", timeout=6000)
        sync_api.expect(rows).to_have_count(5, timeout=6000)
        sync_api.expect(spark).to_have_attribute("points", _count_points(13), timeout=6000)

        # The filter narrows the device list by name.
        page.get_by_label("Filter by name").fill("greenhouse <IMG")
        sync_api.expect(page.locator("#devices tbody tr")).to_have_count(1)
        page.get_by_label("Filter by name").fill("no such device name")
        sync_api.expect(page.locator("#devices-empty")).to_be_visible()
        page.get_by_label("Filter by name").fill("")

        page.set_viewport_size(PHONE)
        page.wait_for_timeout(300)
        width = page.evaluate("document.scrollingElement.scrollWidth")
        assert width <= PHONE["width"], f"horizontal overflow: {width}px"
        assert page.get_by_text(HOSTILE, exact=True).first.is_visible()
        page.screenshot(path=str(ARTIFACTS / "console-phone.png"), full_page=True)

        page.reload()  # the token survives a reload (sessionStorage), the place too (#hash)
        sync_api.expect(rows).to_have_count(5)
        page.get_by_role("button", name="Sign out").click()
        sync_api.expect(page.get_by_label("Admin token")).to_be_visible()
        assert page.evaluate("sessionStorage.length") == 0
    finally:
        watched.close()
    assert watched.dialogs == []
    assert watched.errors == []


def sign_in_by_keyboard(page: sync_api.Page, url: str, admin_token: str) -> None:
    page.goto(url)
    page.get_by_label("Admin token").focus()
    page.keyboard.type(admin_token)
    page.keyboard.press("Enter")


def test_the_keyboard_alone_creates_a_device_and_moves_between_tabs(
        api: ApiServer, browser: Any) -> None:  # noqa: F811
    watched = Watched(browser, DESKTOP)
    page = watched.page
    try:
        sign_in_by_keyboard(page, api.url + "/", api.state.admin_token)
        new_device = page.get_by_role("button", name="New device")
        sync_api.expect(new_device).to_be_visible()
        new_device.focus()
        page.keyboard.press("Enter")
        sync_api.expect(page.get_by_label("Name", exact=True)).to_be_focused()
        page.keyboard.type("typed by keyboard")
        page.keyboard.press("Enter")  # submits: Create
        copy = page.get_by_role("button", name="Copy token")
        sync_api.expect(copy).to_be_focused()
        page.keyboard.press("Escape")  # closes the dialog
        sync_api.expect(page.locator("#device-dialog")).not_to_be_visible()
        sync_api.expect(page.locator("#device-title")).to_have_text("typed by keyboard")

        data_tab = page.get_by_role("tab", name="Data")
        data_tab.focus()
        page.keyboard.press("ArrowRight")
        tokens_tab = page.get_by_role("tab", name="Tokens")
        sync_api.expect(tokens_tab).to_be_focused()
        sync_api.expect(tokens_tab).to_have_attribute("aria-selected", "true")
        sync_api.expect(page.locator("#panel-tokens")).to_be_visible()
        sync_api.expect(page.locator("#tokens tbody tr")).to_have_count(1)
        page.keyboard.press("End")
        sync_api.expect(page.get_by_role("tab", name="Settings")).to_be_focused()
        page.keyboard.press("ArrowRight")  # wraps around
        sync_api.expect(data_tab).to_be_focused()
    finally:
        watched.close()
    assert watched.dialogs == [] and watched.errors == []


def test_the_keyboard_alone_gives_a_token_a_serial_and_creates_and_revokes_a_network(
        api: ApiServer, browser: Any) -> None:  # noqa: F811
    device = admin_call(api, "POST", "/admin/devices",
                        json={"name": f"keyboard lorawan {secrets.token_hex(3)}"})
    eui = secrets.token_hex(8)
    network_name = f"keyboard network {secrets.token_hex(3)}"
    watched = Watched(browser, DESKTOP)
    page = watched.page
    try:
        sign_in_by_keyboard(page, f"{api.url}/#device={device['id']}&tab=tokens",
                            api.state.admin_token)
        new_token = page.get_by_role("button", name="New token")
        sync_api.expect(new_token).to_be_visible()
        new_token.focus()
        page.keyboard.press("Enter")
        sync_api.expect(page.get_by_label("Token name")).to_be_focused()
        page.keyboard.type("uplinks")
        for label in ("Permission", "Expires", "Serial number"):  # Tab reaches each field
            page.keyboard.press("Tab")
            sync_api.expect(page.get_by_label(label)).to_be_focused()
        page.keyboard.type(eui.upper())
        page.keyboard.press("Enter")  # submits: Create
        sync_api.expect(page.get_by_role("button", name="Copy token")).to_be_focused()
        page.keyboard.press("Escape")
        sync_api.expect(new_token).to_be_focused()
        row = page.locator("#tokens tbody tr").filter(has_text="uplinks")
        sync_api.expect(row.locator("td").nth(2)).to_have_text(eui)

        new_network = page.get_by_role("button", name="New network")
        new_network.focus()
        page.keyboard.press("Enter")
        sync_api.expect(page.get_by_label("Network name")).to_be_focused()
        page.keyboard.type(network_name)
        page.keyboard.press("Enter")  # submits: Create
        sync_api.expect(page.get_by_role("button", name="Copy network token")).to_be_focused()
        page.keyboard.press("Escape")
        sync_api.expect(page.locator("#network-dialog")).not_to_be_visible()
        sync_api.expect(new_network).to_be_focused()
        listed = page.locator("#networks tbody tr").filter(has_text=network_name)
        revoke = listed.get_by_role("button", name="Revoke")
        revoke.focus()
        page.keyboard.press("Enter")
        sync_api.expect(listed.locator("td").nth(2)).to_have_text("revoked")
        sync_api.expect(new_network).to_be_focused()  # the revoked row has no button left
    finally:
        watched.close()
    assert watched.dialogs == [] and watched.errors == []
    (network,) = [n for n in admin_call(api, "GET", "/admin/networks")
                  if n["name"] == network_name]
    assert network["status"] == "revoked"


def _count_points(n: int) -> re.Pattern[str]:
    return re.compile(rf"^\S+(?: \S+){{{n - 1}}}$")
