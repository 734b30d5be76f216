"""A plain (non-editable) install works: the wheel carries every module and the templates the
code reads at run time. The wheel goes into a fresh venv; the third-party dependencies come
from this environment's site-packages, without its editable hook (a ``.pth`` line adds a
path, and ``.pth`` files inside that path are not run), so only the wheel provides ours."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHECK = """
import pathlib, sys, tempfile
import api, bridge, devicedata
from bridge.registry import dynsec
from devicedata import servers
for module in (api, bridge, devicedata):
    assert pathlib.Path(module.__file__).is_relative_to(sys.prefix), module.__file__
device = "0123456789abcdef01234567"
assert f"devices/{device}/data" in dynsec.render([device], [], "admin")
assert servers.MOSQUITTO_TEMPLATE.is_file() and servers.INFLUX_TEMPLATE.is_file()
from api.page import STATIC_DIR
assert (STATIC_DIR / "index.html").is_file()
from api.app import create_app
from bridge.settings import Settings
create_app(Settings(data_dir=pathlib.Path(tempfile.mkdtemp())))
print("ok")
"""


def _clean_copy(dest: Path) -> Path:
    """The files git tracks (as a fresh clone has them, with today's edits): a build in the
    working tree would also pick up a stale egg-info's file list."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], cwd=ROOT, capture_output=True,
                            check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def test_the_wheel_installs_and_runs_from_a_fresh_venv(tmp_path: Path) -> None:
    source = _clean_copy(tmp_path / "source")
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(wheels), str(source)], check=True, cwd=tmp_path)
    (wheel,) = wheels.glob("devicedata-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-deps", "--no-index", str(wheel)], check=True, cwd=tmp_path)
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig."
                           "get_paths()['purelib'])"], capture_output=True, text=True,
                          check=True).stdout.strip()
    (Path(site) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    result = subprocess.run([str(python), "-c", CHECK], capture_output=True, text=True,
                            cwd=tmp_path, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]
    cli = subprocess.run([str(venv / "bin" / "devicedata"), "--help"], capture_output=True,
                         text=True, cwd=tmp_path, timeout=60)
    assert cli.returncode == 0, cli.stderr
