"""Helper of scripts/real-ha: core's pins, the Modbus TCP bus over REST, and the package check.

Runs with the Python of the Home Assistant install under test (packaging comes
with it). Onboarding, the REST client and the config-flow driver are
scripts/demo_setup.py's.

    real_ha.py modbus-requirements
    real_ha.py check --url URL --token-file FILE --deadline EPOCH --tcp-port N --save FILE [--watch NAME=PID ...]
    real_ha.py restarted --url URL --token-file FILE --deadline EPOCH --before FILE [--watch NAME=PID ...]
    real_ha.py compare BEFORE AFTER [--manifest FILE --hass-log FILE]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
from pathlib import Path
from typing import Any

from demo_setup import ROWS, Api, DemoError, _flow, _numeric, _sleep, _watch
from packaging.requirements import InvalidRequirement, Requirement

LEVITON = ("leviton_4100_modbus", 1)  # the quick scan finds it at its factory address


def _ha_dir() -> Path:
    spec = importlib.util.find_spec("homeassistant")  # located, not imported: that is slow
    if spec is None or not spec.submodule_search_locations:
        raise DemoError("Home Assistant is not installed in this Python")
    return Path(spec.submodule_search_locations[0])


def _name(text: str) -> str:
    """PEP 503 normalised name."""
    return re.sub(r"[-_.]+", "-", text).lower()


def _requirement(line: str) -> Requirement | None:
    line = line.split("#", 1)[0].strip()
    if not line or line.startswith("-"):
        return None
    try:
        return Requirement(line)
    except InvalidRequirement:
        return None


def core_pins(ha_dir: Path) -> dict[str, set[str]]:
    """Every package a core manifest requires or package_constraints.txt constrains, with its specifiers."""
    pins: dict[str, set[str]] = {}
    lines = (ha_dir / "package_constraints.txt").read_text().splitlines()
    for manifest in sorted((ha_dir / "components").glob("*/manifest.json")):
        lines += json.loads(manifest.read_text()).get("requirements", [])
    for line in lines:
        if (req := _requirement(line)) is not None:
            pins.setdefault(_name(req.name), set()).add(str(req.specifier))
    return pins


def _freeze(path: Path) -> dict[str, str]:
    """``pip freeze`` output as normalised name -> version (or the direct reference)."""
    packages = {}
    for line in path.read_text().splitlines():
        if "==" in line:
            name, _, version = line.partition("==")
        elif " @ " in line:
            name, _, version = line.partition(" @ ")
        else:
            continue
        packages[_name(name.strip())] = version.strip()
    return packages


def compare(before_file: Path, after_file: Path, manifest: Path | None = None, hass_log: Path | None = None) -> int:
    """0 when no core-pinned package changed version or went away; the list otherwise.

    A package first installed while Home Assistant ran (the frontend, our BACnet
    stack) is new, not changed: it passes when every core specifier admits it.
    """
    pins = core_pins(_ha_dir())
    before, after = _freeze(before_file), _freeze(after_file)
    changed = []
    for name in sorted(pins):
        old, new = before.get(name), after.get(name)
        if old is not None and old != new:
            changed.append(f"{name} {old} -> {new or 'removed'}")
        elif old is None and new is not None:
            refused = [spec for spec in pins[name] if spec and not Requirement(f"{name}{spec}").specifier.contains(new)]
            if refused:
                changed.append(f"{name} {new} installed, core wants {', '.join(sorted(refused))}")
    if manifest is not None and hass_log is not None:
        attempts = hass_log.read_text(errors="replace")
        ours = json.loads(manifest.read_text()).get("requirements", [])
        fetched = [req for req in ours if f"Attempting install of {req}" in attempts]
        kept = [req for req in ours if req not in fetched]
        print(f"our requirements installed by Home Assistant: {', '.join(fetched) or 'none'}; ", end="")
        print(f"already satisfied: {', '.join(kept) or 'none'}")
        # Core's own requirements may put the version back afterwards (modbus is an after
        # dependency), so the end state alone would hide a downgrade-and-restore on every start.
        for req in fetched:
            if (parsed := _requirement(req)) is not None and (name := _name(parsed.name)) in pins and name in before:
                changed.append(f"{req} reinstalled {name} {before[name]}, which core had installed")
    added = sorted(set(after) - set(before))
    print(f"packages Home Assistant installed while it ran: {len(added)} ({', '.join(added) or 'none'})")
    print(f"core-pinned packages checked: {len(pins)}; changed: {'; '.join(changed) or 'none'}")
    return 1 if changed else 0


def modbus_requirements() -> list[str]:
    """Core Modbus' requirements, which Home Assistant's container image has installed."""
    manifest = _ha_dir() / "components" / "modbus" / "manifest.json"
    return list(json.loads(manifest.read_text()).get("requirements", []))


def check(api: Api, deadline: float, pids: dict[str, int], tcp_port: int) -> dict[str, float]:
    """Add a Modbus TCP bus with the Leviton; wait until it loads and reads energy."""
    config = api.get("/api/config")
    print(f"check: Home Assistant {config['version']} is {config['state']}", flush=True)
    # The first flow makes Home Assistant install the integration's requirements.
    result = _flow(
        api,
        "/api/config/config_entries/flow",
        "submeter",
        {"next_step_id": "tcp"},
        {"host": "127.0.0.1", "port": tcp_port},
        {"meters": [str(LEVITON[1])]},
    )
    print(f"check: bus entry {result['title']!r} created", flush=True)
    return _energy_when_loaded(api, deadline, pids, "check")


def _energy_when_loaded(api: Api, deadline: float, pids: dict[str, int], stage: str) -> dict[str, float]:
    """Wait until the bus entry is loaded and energy_import is numeric; the energy readings."""
    state: Any = None
    while True:
        entries = [e for e in api.get("/api/config/config_entries/entry") if e["domain"] == "submeter"]
        state = entries[0]["state"] if entries else None
        if state == "loaded":
            break
        if state in ("setup_error", "migration_error", "failed_unload"):
            raise DemoError(f"the bus entry did not load: {state} ({entries[0].get('reason')})")
        _sleep(deadline, pids, f"the bus entry to load (state {state})")
    print(f"{stage}: the bus entry is loaded", flush=True)
    while True:
        rows = json.loads(api.post("/api/template", {"template": ROWS}) or "[]")
        energy = [
            (entity, value, unit)
            for entity, _device, value, unit in rows
            if entity.startswith("sensor.") and "energy" in entity and _numeric(value)
        ]
        if any(entity.endswith("energy_import") for entity, _, _ in energy):
            break
        _sleep(deadline, pids, f"a numeric energy_import reading (have {sorted(e for e, _, _ in energy)})", 1.0)
    for entity, value, unit in sorted(energy):
        print(f"{stage}: {entity} = {value} {unit or ''}", flush=True)
    print(f"{stage}: {len(rows)} submeter entities, {len(energy)} numeric energy readings", flush=True)
    return {entity: float(value) for entity, value, _unit in energy}


def restarted(api: Api, deadline: float, pids: dict[str, int], before: dict[str, float]) -> None:
    """After a restart every energy reading is back and none is below what was shown before it."""
    after = _energy_when_loaded(api, deadline, pids, "restart")
    missing = sorted(set(before) - set(after))
    lower = [
        f"{entity} {before[entity]} -> {after[entity]}"
        for entity in sorted(before)
        if entity in after and after[entity] < before[entity]
    ]
    if missing or lower:
        raise DemoError(f"energy after the restart: missing {missing or 'none'}, lower {lower or 'none'}")
    print(f"restart: {len(after)} energy readings, none lower than before the restart", flush=True)


def main() -> int:
    """Run one command; 0 on success, 1 with a message on stderr otherwise."""
    parser = argparse.ArgumentParser(prog="real_ha.py")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("modbus-requirements")
    sub = commands.add_parser("check")
    sub.add_argument("--url", required=True)
    sub.add_argument("--token-file", type=Path, required=True)
    sub.add_argument("--deadline", type=float, required=True)
    sub.add_argument("--tcp-port", type=int, required=True)
    sub.add_argument("--save", type=Path, required=True, help="where the energy readings are written")
    sub.add_argument("--watch", action="append", default=[], metavar="NAME=PID")
    sub = commands.add_parser("restarted")
    for flag, kind in (("--url", str), ("--token-file", Path), ("--deadline", float), ("--before", Path)):
        sub.add_argument(flag, type=kind, required=True)
    sub.add_argument("--watch", action="append", default=[], metavar="NAME=PID")
    sub = commands.add_parser("compare")
    sub.add_argument("before", type=Path)
    sub.add_argument("after", type=Path)
    sub.add_argument("--manifest", type=Path, help="our manifest.json, to say which requirements were installed")
    sub.add_argument("--hass-log", type=Path, help="the log with Home Assistant's install attempts")
    args = parser.parse_args()
    try:
        if args.command == "modbus-requirements":
            print("\n".join(modbus_requirements()))
        elif args.command == "compare":
            return compare(args.before, args.after, args.manifest, args.hass_log)
        else:
            api = Api(args.url, token=args.token_file.read_text().strip(), deadline=args.deadline)
            if args.command == "check":
                energy = check(api, args.deadline, _watch(args.watch), args.tcp_port)
                args.save.write_text(json.dumps(energy))
            else:
                restarted(api, args.deadline, _watch(args.watch), json.loads(args.before.read_text()))
    except DemoError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except (OSError, ValueError, KeyError) as err:
        print(f"error: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
