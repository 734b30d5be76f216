"""The API serving HTTPS itself (uvicorn's certificate settings), with a certificate from
the local CA: a client that trusts the CA gets its data; plain HTTP gets no answer."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest

from bridge.settings import Settings
from devicedata import procs
from devicedata.tls import TLSFiles
from support.api import ApiServer
from support.processes import ApiProcess


def test_the_api_serves_https(api: ApiServer, stack_settings: Settings, local_ca: TLSFiles,
                              tmp_path: Path) -> None:
    _, token = api.device()
    settings = stack_settings.replace(http_port=procs.free_port(),
                                      http_tls_cert_file=local_ca.server_cert,
                                      http_tls_key_file=local_ca.server_key)
    trust = ssl.create_default_context(cafile=str(local_ca.ca_cert))
    process = ApiProcess(settings, tmp_path / "api.log", verify=trust).start()
    try:
        assert process.url.startswith("https://")
        with httpx.Client(base_url=process.url, verify=trust, headers={"token": token}) as c:
            posted = c.post("/data", json={"variable": "secure", "value": 1})
            assert posted.json() == {"status": True, "result": "1 Data Added"}
            assert [p["variable"] for p in c.get("/data").json()["result"]] == ["secure"]
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(process.url + "/health")  # the system's CAs do not know ours
        with pytest.raises(httpx.HTTPError):
            httpx.get(process.url.replace("https://", "http://") + "/health")
    finally:
        assert process.stop() == 0


def test_a_key_without_a_certificate_is_refused(stack_settings: Settings,
                                                local_ca: TLSFiles, tmp_path: Path) -> None:
    settings = stack_settings.replace(http_port=procs.free_port(),
                                      http_tls_key_file=local_ca.server_key)
    process = ApiProcess(settings, tmp_path / "api.log")
    with pytest.raises(AssertionError, match="DEVICEDATA_HTTP_TLS_KEY_FILE is set without"):
        process.start()
    assert process.proc is not None and process.proc.wait(10) == 2
