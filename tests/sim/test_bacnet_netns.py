"""BACnet/IP the way most sites have it: one subnet, UDP 47808, no BBMD, Who-Is by broadcast.

Loopback cannot stand for that (bacpypes3 takes a peer on its own port at any 127.x address for
itself), so each station gets its own network namespace: the simulated Leviton, DTS and router
(to network 2) in one each, our client in another whose bridge joins their veths. The subnet is a
/23 with the stations in the upper half, where a bare address given /24 would broadcast wrongly.
Needs root and iproute2; skipped with the reason otherwise.
"""

from __future__ import annotations

import json
import os
import secrets
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
# iproute2 lives in sbin, which the newest-HA chroot leaves off PATH.
IP = shutil.which("ip", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])) or "ip"
CLIENT = "10.77.0.1/23"
STATIONS = {"leviton": "10.77.1.11/23", "dts": "10.77.1.12/23", "router": "10.77.1.13/23"}


def inside(ns: str | None) -> list[str]:
    """The command prefix that runs a child in namespace ``ns``.

    ``nsenter --net`` rather than ``ip netns exec`` or ``ip -n``: those also remount ``/``,
    which fails in the newest-HA chroot, where ``/`` is no mount point.
    """
    return [] if ns is None else ["nsenter", f"--net=/run/netns/{ns}", "--"]


def ip(*args: str, ns: str | None = None) -> None:
    subprocess.run([*inside(ns), IP, *args], check=True, capture_output=True, text=True, timeout=10)


@dataclass
class Lan:
    client_ns: str
    namespaces: list[str] = field(default_factory=list)
    stations: list[subprocess.Popen[str]] = field(default_factory=list)

    def run_client(self, script: str, *args: str) -> dict[str, object]:
        result = subprocess.run(
            [*inside(self.client_ns), sys.executable, "-c", script, *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _skip_unless_netns_works() -> None:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    if not Path(IP).is_absolute() or shutil.which("nsenter") is None:
        pytest.skip("iproute2 (ip) or nsenter (util-linux) is not installed")
    probe = f"smprobe{secrets.token_hex(3)}"
    try:
        ip("netns", "add", probe)
    except subprocess.CalledProcessError as err:
        pytest.skip(f"ip netns add is not permitted here: {err.stderr.strip()}")
    ip("netns", "del", probe)


def _wait_ready(process: subprocess.Popen[str], deadline: float) -> None:
    """Until the station prints ``ready``; never past ``deadline``.

    A blocking ``readline`` kept the suite waiting for 20 minutes on a loaded machine
    once, so the pipe is read with ``select`` and the deadline holds.
    """
    assert process.stdout is not None
    fd, seen = process.stdout.fileno(), b""
    while (left := deadline - time.monotonic()) > 0:
        if not select.select([fd], [], [], left)[0]:
            break
        chunk = os.read(fd, 4096)
        seen += chunk
        if any(line.startswith(b"ready") for line in seen.splitlines(keepends=True) if line.endswith(b"\n")):
            return
        if not chunk:
            break  # the station exited
    process.kill()  # so its error output ends and can be read
    process.wait(10)
    error = process.stderr.read() if process.stderr else ""
    raise AssertionError(f"station did not start (it printed {seen!r}): {error[-3000:]}")


@pytest.fixture
def lan() -> Iterator[Lan]:
    """Four namespaces on one bridge, a simulated station running in three of them."""
    _skip_unless_netns_works()
    tag = secrets.token_hex(3)  # unique names: other test runs may build their own LAN meanwhile
    built = Lan(client_ns=f"sm{tag}c")
    try:
        ip("netns", "add", built.client_ns)
        built.namespaces.append(built.client_ns)
        ip("link", "set", "lo", "up", ns=built.client_ns)
        ip("link", "add", "br0", "type", "bridge", ns=built.client_ns)
        ip("addr", "add", CLIENT, "dev", "br0", ns=built.client_ns)
        ip("link", "set", "br0", "up", ns=built.client_ns)
        for number, (role, address) in enumerate(STATIONS.items()):
            ns = f"sm{tag}{number}"
            ip("netns", "add", ns)
            built.namespaces.append(ns)
            ip("link", "set", "lo", "up", ns=ns)
            ip(
                "link",
                "add",
                f"sm{tag}b{number}",
                "netns",
                built.client_ns,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                ns,
            )
            ip("link", "set", f"sm{tag}b{number}", "master", "br0", "up", ns=built.client_ns)
            ip("addr", "add", address, "dev", "eth0", ns=ns)
            ip("link", "set", "eth0", "up", ns=ns)
            built.stations.append(
                subprocess.Popen(
                    [*inside(ns), sys.executable, "-m", "submeter_sim.bacnet", role, address],
                    cwd=ROOT,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        deadline = time.monotonic() + 180  # three processes import the stack: 45 s seen under load
        for station in built.stations:
            _wait_ready(station, deadline)
        yield built
    finally:
        for station in built.stations:
            station.terminate()
        for station in built.stations:
            try:
                station.wait(10)
            except subprocess.TimeoutExpired:
                station.kill()
                station.wait(5)
        for ns in built.namespaces:  # deleting a namespace removes its veth ends, and so the pairs
            subprocess.run([IP, "netns", "del", ns], capture_output=True, check=False, timeout=10)


DISCOVER = """
import asyncio, json, sys
from ipaddress import IPv4Interface

import ifaddr

from custom_components.submeter.pysubmeter import LinkError, load_builtin_profiles
from custom_components.submeter.pysubmeter.bacnet import BacnetIpLink, BacnetNetwork, async_discover
from custom_components.submeter.pysubmeter.bacnet.link import check_interface, with_prefix

interface = sys.argv[1]
local = [IPv4Interface(f"{i.ip}/{i.network_prefix}") for a in ifaddr.get_adapters() for i in a.ips if not i.is_IPv6]
verdicts = {}
address = interface.split("/")[0]
for given in (with_prefix(address, local), address + "/24", address + "/32"):
    try:
        check_interface(BacnetIpLink(given), local)
        verdicts[given] = "ok"
    except LinkError as err:
        verdicts[given] = err.reason

async def main():
    profiles = load_builtin_profiles()
    network = BacnetNetwork(BacnetIpLink(interface, networks=(2,)))  # no BBMD: broadcast Who-Is
    await network.async_start()
    try:
        found = await async_discover(network, profiles, networks=[2])
        devices = {d.instance: [d.address, d.profile_id] for d in found}
        reading = await network.meter(1734211, profiles["leviton_4100_bacnet"], devices[1734211][0]).async_read()
        remote = await network.meter(2093007, profiles["leviton_4100_bacnet"]).async_read()
    finally:
        await network.async_close()
    return devices, reading.values["energy_import"], remote.values["power"]

devices, energy, power = asyncio.run(main())
print(json.dumps({"verdicts": verdicts, "devices": devices, "energy": energy, "remote_power": power}))
"""


def test_broadcast_who_is_without_bbmd_finds_and_reads_every_station(lan: Lan) -> None:
    report = lan.run_client(DISCOVER, CLIENT)
    assert report["verdicts"] == {
        CLIENT: "ok",  # a bare address got the kernel's /23
        "10.77.0.1/24": "prefix_mismatch",  # would broadcast to 10.77.0.255, which no station hears
        "10.77.0.1/32": "no_broadcast",
    }
    devices = report["devices"]
    assert devices["1734211"] == ["10.77.1.11", "leviton_4100_bacnet"]
    assert devices["473001"] == ["10.77.1.12", "bacnet_generic"]
    assert devices["4000001"][0] == "10.77.1.13"  # the router answers too
    assert devices["2093007"] == ["2:7", "leviton_4100_bacnet"]  # found by the directed Who-Is to network 2
    assert report["energy"] == 1500.0
    assert report["remote_power"] == pytest.approx(4200.0)
