"""Starting a BACnet station opens no file on the event loop and keeps ``.env`` out of the environment.

Home Assistant's blocking-call detection skips ``open`` in tests (``skip_for_tests``), so the
check records ``open`` calls on the loop thread itself. It runs in a fresh interpreter: the
first start is the one that imports BAC0 and makes pytz read its zone files, and this pytest
process may have done both already.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .bacnet_site import free_base

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import asyncio, builtins, io, json, os, sys, threading, traceback

sys.path.insert(0, sys.argv[1])
from custom_components.submeter.pysubmeter.bacnet import BacnetIpLink, BacnetNetwork  # before the loop, as in HA

loop_thread = threading.get_ident()
recording = False
opened = []
real_open = builtins.open

def spy(file, *args, **kwargs):
    if recording and threading.get_ident() == loop_thread:
        opened.append([str(file), traceback.format_stack(limit=8)[-3]])
    return real_open(file, *args, **kwargs)

builtins.open = io.open = spy

async def main():
    global recording
    recording = True
    for _ in range(2):  # the first start imports BAC0; the second must not read device.json again either
        network = BacnetNetwork(BacnetIpLink("127.0.0.1/8", int(sys.argv[2])))
        await network.async_start()
        await network.async_who_is(wait=0.1)
        await network.async_close()
    recording = False

asyncio.run(main())
print(json.dumps({"opened": opened, "marker": os.environ.get("SUBMETER_DOTENV_MARKER"), "bac0": "BAC0" in sys.modules}))
"""


def test_station_start_reads_no_file_on_the_loop_and_no_dotenv(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("SUBMETER_DOTENV_MARKER=leaked\n")
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(ROOT), str(free_base())],
        cwd=tmp_path,  # BAC0 looks for .env in the working directory
        # Without pytest-cov's subprocess hook: away from setup.cfg it would record lines without branches,
        # which cannot be combined with the suite's branch coverage.
        env={key: value for key, value in os.environ.items() if not key.startswith("COV_CORE_")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["bac0"], "the probe never imported BAC0: it checked nothing"
    assert report["opened"] == []
    assert report["marker"] is None
