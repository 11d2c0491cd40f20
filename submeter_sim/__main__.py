"""Command line: serve simulated meters until interrupted (``python -m submeter_sim --help``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from custom_components.submeter.pysubmeter.exceptions import ProfileError
from custom_components.submeter.pysubmeter.profile import Profile
from custom_components.submeter.pysubmeter.profile_loader import load_builtin_profiles, load_user_profiles

from .model import SimulatedMeter
from .pty import PtyPair
from .replay import (
    BacnetReplaySite,
    DumpError,
    ReplayedMeter,
    bacnet_meters,
    dlms_meters,
    has_bacnet_meters,
    modbus_meters,
    mstp_line,
    read_dump,
)
from .server import LOCALHOST, SimulatorServer

MAX_UNIT = 247


def _endpoint(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT`` or ``PORT``; the host defaults to 127.0.0.1."""
    host, _, port = text.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"port {number} is out of range")
    return host.strip("[]") or LOCALHOST, number


def _meter_spec(text: str) -> tuple[str, int | None]:
    """``PROFILE_ID@ADDRESS`` or ``PROFILE_ID`` (the profile's default address)."""
    profile_id, at, address = text.partition("@")
    if not at:
        return profile_id, None
    if not address.isdigit() or not 1 <= int(address) <= MAX_UNIT:
        raise argparse.ArgumentTypeError(f"address in {text!r} must be 1-{MAX_UNIT}")
    return profile_id, int(address)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m submeter_sim",
        description="Simulate Modbus electricity sub-meters from submeter profiles (tests and demos).",
    )
    parser.add_argument(
        "--meter",
        action="append",
        type=_meter_spec,
        default=[],
        metavar="PROFILE_ID@ADDRESS",
        help="meter to simulate (repeatable); default: every built-in Modbus profile at its default "
        "address, moved to the next free address when taken",
    )
    parser.add_argument("--tcp", type=_endpoint, metavar="HOST:PORT", help="serve Modbus TCP (port 0: any free)")
    parser.add_argument("--rtu-over-tcp", type=_endpoint, metavar="HOST:PORT", help="serve RTU frames over TCP")
    parser.add_argument(
        "--serial-link", type=Path, metavar="PATH", help="serve RTU on a pty pair; PATH links to the client end"
    )
    parser.add_argument(
        "--bacnet-site",
        type=int,
        metavar="PORT",
        help="also run a BACnet/IP site on 127.0.0.1 UDP PORT+1..PORT+3 (Leviton + BBMD, DTS, router to network 2); "
        "the integration's station belongs on PORT",
    )
    parser.add_argument(
        "--dlms-tcp",
        type=int,
        metavar="PORT",
        help="also serve a DLMS/COSEM SM307 (IP wrapper) on 127.0.0.1 TCP PORT (0: any free; the usual is 4059), "
        "its clock on wall time",
    )
    parser.add_argument(
        "--from-diagnostics",
        type=Path,
        metavar="FILE",
        help="serve the meters of a submeter diagnostics file (as downloaded from Home Assistant) instead of "
        "simulated ones, frozen as they were read: its Modbus meters on the Modbus endpoints, its BACnet meters "
        "with --bacnet-site (on PORT+1, PORT+2, ...; PORT+1 is the BBMD), its DLMS meters with --dlms-tcp (on PORT, "
        "PORT+1, ...; IP wrapper or HDLC as the dump's bus spoke, the management client's LLS password 12345678)",
    )
    parser.add_argument(
        "--mstp-line",
        action="store_true",
        help="with --from-diagnostics: serve the dump's BACnet meters at their MACs on an MS/TP line of PTYs "
        "(prints the free station's tty, for a bus of kind BACnet MS/TP)",
    )
    parser.add_argument(
        "--dlms-hls",
        action="store_true",
        help="the DLMS meter's management client (1) uses HLS-GMAC with the DLMS Green Book's example keys "
        "(printed at start), not the LLS password",
    )
    parser.add_argument(
        "--dlms-profile-period",
        type=int,
        default=15,
        choices=range(1, 61),
        metavar="MINUTES",
        help="the DLMS meter's load profile capture period, 1-60 minutes (default 15)",
    )
    parser.add_argument("--profiles-dir", type=Path, metavar="DIR", help="folder with extra (user) profiles")
    parser.add_argument("--tick", type=float, default=1.0, metavar="SECONDS", help="update period, 0 freezes values")
    parser.add_argument("--seed", type=int, default=0, metavar="N", help="random seed (meter n uses N+n)")
    parser.add_argument(
        "--strict",
        action="store_true",
        help="answer exception 2 for every register a profile does not document, gaps in a block too",
    )
    return parser


def _profiles(folder: Path | None) -> tuple[dict[str, Profile], dict[str, Profile]]:
    """(every profile, the built-in ones); a bad user profile is reported and skipped."""
    builtin = load_builtin_profiles()
    if folder is None:
        return builtin, builtin
    user, errors = load_user_profiles(folder, frozenset(builtin))
    for error in errors:
        print(f"skipped: {error}", file=sys.stderr)
    return builtin | user, builtin


def _meters(
    specs: list[tuple[str, int | None]],
    profiles: dict[str, Profile],
    builtin: dict[str, Profile],
    seed: int,
    strict: bool = False,
) -> list[SimulatedMeter]:
    if not specs:
        specs = [(pid, None) for pid, profile in sorted(builtin.items()) if profile.protocol == "modbus"]
    unknown = [pid for pid, _ in specs if pid not in profiles]
    if unknown:
        raise ValueError(f"unknown profile {', '.join(unknown)} (known: {', '.join(sorted(profiles))})")
    taken: set[int] = set()
    for _, address in specs:
        if address is not None:
            if address in taken:
                raise ValueError(f"two meters at address {address}")
            taken.add(address)
    meters = []
    for index, (pid, wanted) in enumerate(specs):
        address = wanted
        if address is None:
            address = max(1, profiles[pid].defaults.address)
            while address in taken:
                address += 1
            if address > MAX_UNIT:
                raise ValueError(f"no free address left for {pid}")
            taken.add(address)
        meters.append(SimulatedMeter(profiles[pid], address, seed=seed + index, strict=strict))
    return meters


def _link(path: Path, target: Path) -> Path:
    """Point ``path`` at the tty behind ``target``, replacing an old symlink but never a real file."""
    if path.is_symlink():
        path.unlink()
    elif path.exists():
        raise FileExistsError(f"{path} exists and is not a symlink")
    tty = target.resolve()
    path.symlink_to(tty)
    return tty


@contextlib.asynccontextmanager
async def _bacnet_site(base: int, tick: float) -> AsyncIterator[None]:
    """The BACnet site of ``submeter_sim.bacnet``, its Leviton's energy moving every ``tick``."""
    from .bacnet import BacnetSite

    site = BacnetSite(base)
    site.start()

    async def flow() -> None:
        while tick:
            await asyncio.sleep(tick)
            for meter in (site.leviton, site.remote, site.dts):
                meter.advance(0.002 * tick)

    task = asyncio.create_task(flow())
    print(f"endpoint bacnet/ip 127.0.0.1:{base + 1} (BBMD), {base + 2}, {base + 3} (router to network 2)")
    for meter in (site.leviton, site.dts, site.remote):
        print(f"bacnet-meter {meter.instance} at {site.address_of(meter)}: {meter.vendor_name} {meter.model}")
    try:
        yield
    finally:
        task.cancel()
        site.close()


@contextlib.asynccontextmanager
async def _bacnet_replay(base: int, dump: Any) -> AsyncIterator[None]:
    """A dump's BACnet meters, frozen, on 127.0.0.1 UDP PORT+1, PORT+2, ..."""
    meters = bacnet_meters(dump)  # in the loop: bacpypes3 objects start tasks
    site = BacnetReplaySite(base, meters)
    site.start()
    print(f"endpoint bacnet/ip {site.bbmd} (BBMD)")
    for meter in meters:
        print(f"bacnet-meter {meter.instance} at {site.address_of(meter)}: replayed {meter.object_name}")
    try:
        yield
    finally:
        site.close()


@contextlib.asynccontextmanager
async def _dlms_meter(
    port: int, tick: float, seed: int, hls: bool = False, profile_minutes: int = 15
) -> AsyncIterator[None]:
    """An SM307 on the DLMS IP wrapper whose clock follows wall time, advanced every ``tick``."""
    from .dlms import DlmsSimServer
    from .dlms_objects import Sm307
    from .dlms_secure import MeterSecurity

    security = MeterSecurity() if hls else None
    meter = Sm307(
        datetime.now(UTC).replace(microsecond=0), seed=seed, profile_period=timedelta(minutes=profile_minutes)
    )
    meter.vary_load = True

    async def follow() -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while tick:
            await asyncio.sleep(tick)
            now = loop.time()
            meter.advance(timedelta(seconds=now - last))
            last = now

    async with DlmsSimServer(meter, "wrapper", port=port, security=security) as server:
        task = asyncio.create_task(follow())
        management = f"LLS password {server.password.decode()}"
        if security is not None:
            management = (
                f"HLS-GMAC, authentication key {security.authentication_key.hex().upper()}, "
                f"encryption key {security.encryption_key.hex().upper()}"
            )
        print(
            f"endpoint dlms-wrapper 127.0.0.1:{server.port}: SM307 {meter.serial}, server logical address "
            f"{server.logical_address}, client 16 (public) or 1 ({management})"
        )
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _mstp_replay(dump: Any, stack: contextlib.AsyncExitStack) -> None:
    """A dump's BACnet meters, frozen, at their MACs on an MS/TP line of PTYs."""
    line = mstp_line(dump)
    await line.start()
    stack.push_async_callback(line.close)
    print(f"endpoint bacnet/mstp {line.client_port} ({line.baudrate} baud, the client's station)")
    for meter, mac in line.meters:
        print(f"bacnet-meter {meter.instance} at MAC {mac}: replayed {meter.object_name}")


async def _dlms_replay(port: int, meters: list[Any], stack: contextlib.AsyncExitStack) -> None:
    """A dump's DLMS meters, frozen, each on its own 127.0.0.1 TCP port from ``port`` on (0: any free)."""
    from .dlms_replay import replay_server

    for index, meter in enumerate(meters):
        transport = "wrapper" if meter.wrapper else "hdlc_tcp"
        server = await stack.enter_async_context(replay_server(meter, transport, port=port + index if port else 0))
        print(
            f"endpoint dlms-{'wrapper' if meter.wrapper else 'hdlc'} 127.0.0.1:{server.port}: replayed {meter.title}, "
            f"server logical address {meter.logical}, physical address {meter.address}, client 16 (public) or 1 "
            f"(LLS password {server.password.decode()})"
        )


async def _serve(args: argparse.Namespace, meters: list[Any]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, stop.set)
    async with contextlib.AsyncExitStack() as stack:
        if _modbus_endpoints(args):
            await _serve_modbus(args, meters, stack)
        if args.dlms_tcp is not None and getattr(args, "replay_dlms", None):
            await _dlms_replay(args.dlms_tcp, args.replay_dlms, stack)
        elif args.dlms_tcp is not None:
            await stack.enter_async_context(
                _dlms_meter(args.dlms_tcp, args.tick, args.seed, args.dlms_hls, args.dlms_profile_period)
            )
        if args.mstp_line and getattr(args, "replay_bacnet", None) is not None:
            await _mstp_replay(args.replay_bacnet, stack)
        if args.bacnet_site is not None and getattr(args, "replay_bacnet", None) is not None:
            await stack.enter_async_context(_bacnet_replay(args.bacnet_site, args.replay_bacnet))
        elif args.bacnet_site is not None:
            await stack.enter_async_context(_bacnet_site(args.bacnet_site, args.tick))
        sys.stdout.flush()
        await stop.wait()


def _modbus_endpoints(args: argparse.Namespace) -> bool:
    return args.tcp is not None or args.rtu_over_tcp is not None or args.serial_link is not None


async def _serve_modbus(args: argparse.Namespace, meters: list[Any], stack: contextlib.AsyncExitStack) -> None:
    serial = client_end = None
    if args.serial_link is not None:
        pair = await stack.enter_async_context(PtyPair())
        client_end = _link(args.serial_link, pair.client_end)
        stack.callback(args.serial_link.unlink, missing_ok=True)
        serial = str(pair.meter_end)
    server = SimulatorServer(
        meters, tcp=args.tcp, rtu_over_tcp=args.rtu_over_tcp, serial=serial, tick_interval=args.tick or None
    )
    await stack.enter_async_context(server)
    for endpoint in server.endpoints:  # clients open the serial link, not the meter end
        serial_line = f"serial {args.serial_link} -> {client_end} (RTU on a pty pair)"
        print(f"endpoint {serial_line if endpoint.startswith('serial') else endpoint}")
    for meter in meters:
        if isinstance(meter, ReplayedMeter):
            print(f"meter {meter.address}: {meter.profile_id} (replayed: {meter.title})")
            continue
        profile = meter.profile
        print(f"meter {meter.address}: {profile.id} ({profile.manufacturer} {profile.model})")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulator; 0 after SIGINT/SIGTERM, 1 when an endpoint cannot be opened."""
    parser = _parser()
    args = parser.parse_args(argv)
    replaying_bacnet = args.from_diagnostics is not None and (args.bacnet_site is not None or args.mstp_line)
    if not _modbus_endpoints(args) and args.dlms_tcp is None and not replaying_bacnet:
        parser.error("give at least one endpoint: --tcp, --rtu-over-tcp, --serial-link or --dlms-tcp")
    if args.tick < 0:
        parser.error("--tick must not be negative")
    try:
        profiles, builtin = _profiles(args.profiles_dir)
        if args.from_diagnostics is not None:
            if args.meter:
                parser.error("--from-diagnostics and --meter exclude each other")
            dump = read_dump(args.from_diagnostics)
            meters: list[Any] = modbus_meters(dump)
            bacnet_wanted = args.bacnet_site is not None or args.mstp_line
            args.replay_bacnet = dump if bacnet_wanted and has_bacnet_meters(dump) else None
            args.replay_dlms = dlms_meters(dump) if args.dlms_tcp is not None else []
            if not meters and args.replay_bacnet is None and not args.replay_dlms:
                parser.error(
                    f"{args.from_diagnostics}: no Modbus meter (nor BACnet meter with --bacnet-site, nor DLMS meter "
                    "with --dlms-tcp) in it"
                )
        else:
            meters = _meters(args.meter, profiles, builtin, args.seed, args.strict)
    except (ValueError, ProfileError, DumpError) as err:
        parser.error(str(err))
    try:
        asyncio.run(_serve(args, meters))
    except (OSError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
