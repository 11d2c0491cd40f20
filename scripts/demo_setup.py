"""Helper of scripts/demo: free ports, onboarding, readiness and the end-to-end check.

Runs with the demo virtualenv's Python and needs only the standard library, so
it works before and after Home Assistant's own packages are importable.

    demo_setup.py free-port START [--strict]
    demo_setup.py requirements | requirements-key
    demo_setup.py ready --url URL --token-file FILE --deadline EPOCH --onboarded-marker FILE
                        [--watch NAME=PID ...]
    demo_setup.py tidy --url URL --token-file FILE
    demo_setup.py check --url URL --token-file FILE --deadline EPOCH --tcp-port N
                        --serial-port PATH --baudrate N [--watch NAME=PID ...]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
USER = {"name": "Demo", "username": "demo", "password": "demo-submeter", "language": "en"}
# Onboarding's core_config step starts flows for these; they need the internet
# (and packages the demo does not install), so their entries only show errors.
ONLINE_ONBOARDING_DOMAINS = ("google_translate", "radio_browser", "met")
METERS = {"leviton": ("leviton_4100_modbus", 1), "socomec": ("socomec_countis_e4x", 2)}
BACNET_METERS = 3  # the BACnet site's two Levitons and its DTS-like meter
DLMS_METERS = 1  # the SM307 on the IP wrapper


SCAN_TIMEOUT = 60  # s; a full scan takes seconds


class DemoError(Exception):
    """Something the person running the demo has to look at."""


class DemoTimeoutError(DemoError):
    """The deadline passed."""


class HttpError(DemoError):
    """Home Assistant answered with an HTTP error."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


# --- small HTTP client -------------------------------------------------------


class Api:
    """JSON over HTTP against one Home Assistant, with a per-call timeout."""

    def __init__(self, url: str, token: str | None = None, deadline: float | None = None) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.deadline = deadline

    def _timeout(self, what: str) -> float:
        if self.deadline is None:
            return 30.0
        left = self.deadline - time.time()
        if left <= 0:
            raise DemoTimeoutError(f"timed out before {what}")
        return min(30.0, left)

    def call(self, method: str, path: str, body: Any = None, *, form: bool = False) -> Any:
        headers = {}
        data = None
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if body is not None:
            if form:
                data = urllib.parse.urlencode(body).encode()
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            else:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout(f"{method} {path}")) as response:
                raw = response.read()
                is_json = response.headers.get_content_type() == "application/json"
        except urllib.error.HTTPError as err:
            detail = err.read().decode(errors="replace")[:500]
            raise HttpError(f"{method} {path}: HTTP {err.code} {detail}", err.code) from None
        except TimeoutError:
            raise DemoTimeoutError(f"{method} {path}: no answer in time") from None
        if not is_json:  # /api/template answers with text
            return raw.decode()
        return json.loads(raw) if raw else None

    def get(self, path: str) -> Any:
        return self.call("GET", path)

    def post(self, path: str, body: Any = None, *, form: bool = False) -> Any:
        return self.call("POST", path, {} if body is None else body, form=form)


def _client_id(url: str) -> str:
    return url.rstrip("/") + "/"


def _token(api: Api, code: str) -> str:
    reply = api.post(
        "/auth/token",
        {"grant_type": "authorization_code", "code": code, "client_id": _client_id(api.url)},
        form=True,
    )
    return str(reply["access_token"])


def _login(api: Api) -> str:
    """A token for the demo user through the login flow the UI uses."""
    client_id = _client_id(api.url)
    flow = api.post(
        "/auth/login_flow",
        {"client_id": client_id, "handler": ["homeassistant", None], "redirect_uri": client_id},
    )
    result = api.post(
        f"/auth/login_flow/{flow['flow_id']}",
        {"client_id": client_id, "username": USER["username"], "password": USER["password"]},
    )
    if result.get("type") != "create_entry":
        raise DemoError(f"login as {USER['username']!r} failed: {result.get('errors')}")
    return _token(api, str(result["result"]))


# --- process watching ----------------------------------------------------------


def _watch(specs: list[str]) -> dict[str, int]:
    pids = {}
    for spec in specs:
        name, _, pid = spec.partition("=")
        pids[name] = int(pid)
    return pids


def _check_alive(pids: dict[str, int]) -> None:
    for name, pid in pids.items():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            raise DemoError(f"{name} (pid {pid}) exited") from None


def _sleep(deadline: float, pids: dict[str, int], what: str, seconds: float = 0.5) -> None:
    _check_alive(pids)
    if time.time() + seconds > deadline:
        raise DemoTimeoutError(f"timed out waiting for {what}")
    time.sleep(seconds)


# --- commands ------------------------------------------------------------------


def free_port(start: int, strict: bool) -> int:
    """``start`` if nothing listens there on loopback, else (unless strict) the next free one."""
    for port in range(start, start + (1 if strict else 100)):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise DemoError(f"port {start} is in use" if strict else f"no free port in {start}-{start + 99}")


# Integrations configuration.yaml (written by scripts/demo) names, besides the ones Home Assistant
# always sets up (bootstrap's DEFAULT_INTEGRATIONS: on 2026 releases conversation, tts, camera ...).
CONFIGURED_DOMAINS = ("frontend", "config", "history", "energy", "http", "logger")


def _distribution(requirement: str) -> str:
    """The distribution name of a requirement line, normalised as pip compares names."""
    name = re.split(r"[\[<>=!~;\s]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements_key() -> str:
    """What ``requirements`` depends on, hashed: Home Assistant's bootstrap, our manifest, this file."""
    spec = importlib.util.find_spec("homeassistant")  # located, not imported: that is slow
    if spec is None or not spec.submodule_search_locations:
        raise DemoError("Home Assistant is not installed in this Python")
    package = Path(spec.submodule_search_locations[0])
    digest = hashlib.sha256()
    for path in (package / "const.py", package / "bootstrap.py", ROOT / "custom_components/submeter/manifest.json"):
        digest.update(path.read_bytes())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()[:16]


def requirements() -> list[str]:
    """Packages Home Assistant would pip-install at run time, which the demo installs up front.

    Those of every integration the demo's Home Assistant sets up (with their dependencies), so
    that the frontend loads: on Home Assistant 2026 a default integration that failed to import
    (conversation without hassil) makes the frontend's get_services call fail, and the page
    stays at "Loading..." for ever. A package already installed is left as it is: the test
    stack in the same virtualenv pins its own versions.
    """
    try:
        from homeassistant import bootstrap  # slow: only when the stamp changed
    except ImportError:
        raise DemoError("Home Assistant is not installed in this Python") from None
    components = Path(bootstrap.__file__).parent / "components"
    todo = sorted({*bootstrap.CORE_INTEGRATIONS, *bootstrap.DEFAULT_INTEGRATIONS, *CONFIGURED_DOMAINS})
    seen: set[str] = set()
    needed: list[str] = []
    while todo:
        domain = todo.pop()
        manifest_file = components / domain / "manifest.json"
        if domain in seen or not manifest_file.exists():
            continue
        seen.add(domain)
        manifest = json.loads(manifest_file.read_text())
        todo += manifest.get("dependencies", [])
        needed += manifest.get("requirements", [])
    needed += json.loads((ROOT / "custom_components" / "submeter" / "manifest.json").read_text()).get(
        "requirements", []
    )
    installed = {_distribution(dist.metadata["Name"]) for dist in metadata.distributions()}
    missing = {_distribution(line): line for line in needed if _distribution(line) not in installed}
    return sorted(missing.values())


def ready(api: Api, token_file: Path, marker: Path, deadline: float, pids: dict[str, int]) -> None:
    """Wait for the HTTP API, onboard on the first run, then wait for the RUNNING state.

    ``marker`` is created when this run finished onboarding's core_config step (see ``tidy``).
    """
    steps: list[dict[str, Any]] = []
    while True:
        try:
            steps = api.get("/api/onboarding")
            break
        except HttpError as err:
            # HTTP starts once the frontend, and so onboarding, is set up; and
            # onboarding serves no views at all once every step is done.
            if err.status == 404:
                break
            _sleep(deadline, pids, f"Home Assistant to answer on {api.url} ({err})")
        except DemoTimeoutError:
            raise
        except OSError:  # not listening yet
            _sleep(deadline, pids, f"Home Assistant to answer on {api.url}")
    todo = [step["step"] for step in steps if not step["done"]]
    if "user" in todo:
        print(f"onboarding: creating user {USER['username']!r}", flush=True)
        reply = api.post("/api/onboarding/users", {"client_id": _client_id(api.url), **USER})
        api.token = _token(api, reply["auth_code"])
    else:
        api.token = _login(api)
    for step in todo:
        if step == "user":
            continue
        body: dict[str, str] = {}
        if step == "integration":
            body = {"client_id": _client_id(api.url), "redirect_uri": _client_id(api.url) + "?auth_callback=1"}
        api.post(f"/api/onboarding/{step}", body)
        if step == "core_config":
            marker.touch()
        print(f"onboarding: {step} done", flush=True)
    token_file.write_text(api.token)
    token_file.chmod(0o600)
    while (state := api.get("/api/config").get("state")) != "RUNNING":
        _sleep(deadline, pids, f"Home Assistant to finish starting (state {state})")
    confirm_http_config(api)


def confirm_http_config(api: Api) -> None:
    """Confirm the demo's ``http:`` settings where Home Assistant asks for it (2026.10+).

    Those releases take ``http:`` from YAML once, as a pending configuration that the user must
    confirm (a dialog over every page) within five minutes; unconfirmed, Home Assistant restarts
    on its default one, listening on every interface. The demo's settings are the ones it runs
    on, so they are confirmed here. Older releases have no such command.
    """
    import asyncio

    async def promote(url: str, token: str) -> str:
        import aiohttp  # Home Assistant's; the rest needs only the stdlib

        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.ws_connect(url + "/api/websocket") as ws:
            await ws.receive_json()  # auth_required
            await ws.send_json({"type": "auth", "access_token": token})
            if (reply := await ws.receive_json())["type"] != "auth_ok":
                return f"websocket auth: {reply}"
            await ws.send_json({"id": 1, "type": "http/config"})
            reply = await ws.receive_json()
            if not reply.get("success"):  # unknown_command before 2026.10
                return ""
            if not reply["result"].get("pending") or reply["result"].get("active_config_type") != "pending":
                return ""
            await ws.send_json({"id": 2, "type": "http/config/promote"})
            if not (reply := await ws.receive_json()).get("success"):
                return f"http/config/promote: {reply.get('error')}"
            print("confirmed the demo's HTTP settings (Home Assistant asks for it)", flush=True)
            return ""

    assert api.token
    if problem := asyncio.run(promote(api.url, api.token)):
        raise DemoError(f"could not confirm the demo's HTTP settings: {problem}")


def tidy(api: Api, wait: float) -> None:
    """Remove the entries onboarding made for internet services (they can only fail here)."""
    end = time.time() + wait
    while True:
        entries = api.get("/api/config/config_entries/entry")
        doomed = [e for e in entries if e["domain"] in ONLINE_ONBOARDING_DOMAINS]
        for entry in doomed:
            api.call("DELETE", f"/api/config/config_entries/entry/{entry['entry_id']}")
            print(f"removed onboarding's {entry['title']!r} entry (needs the internet)", flush=True)
        # google_translate always gets an entry; once it is gone the others are settled too.
        if any(e["domain"] == "google_translate" for e in doomed) or time.time() > end:
            return
        time.sleep(0.25)


def _settle(api: Api, base: str, result: dict[str, Any]) -> dict[str, Any]:
    """Wait out a progress step (the bus scan) the way the dialog does: reload the flow until it moves on."""
    end = time.time() + SCAN_TIMEOUT
    while result.get("type") == "progress":
        if time.time() > end:
            raise DemoError(f"the scan did not finish in {SCAN_TIMEOUT} s")
        time.sleep(0.25)
        result = api.get(f"{base}/{result['flow_id']}")
    return result


def _flow(api: Api, base: str, handler: Any, *steps: dict[str, Any]) -> dict[str, Any]:
    """Run a config (or subentry) flow through ``steps``; the final result must create an entry."""
    result: dict[str, Any] = api.post(base, {"handler": handler})
    for answer in steps:
        result = _settle(api, base, result)
        if result.get("type") not in ("form", "menu"):
            break
        result = api.post(f"{base}/{result['flow_id']}", answer)
        if result.get("errors"):
            raise DemoError(f"flow {handler} step {result.get('step_id')}: errors {result['errors']}")
    result = _settle(api, base, result)
    if result.get("type") != "create_entry":
        raise DemoError(f"flow {handler} ended with {json.dumps(result)[:400]}")
    return result


ROWS = (
    "{% set ns = namespace(rows=[]) %}"
    "{% for e in integration_entities('submeter') %}"
    "{% set ns.rows = ns.rows + [[e, device_attr(device_id(e), 'name'), states(e),"
    " state_attr(e, 'unit_of_measurement')]] %}"
    "{% endfor %}{{ ns.rows | tojson }}"
)


def _numeric(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def check(
    api: Api,
    deadline: float,
    pids: dict[str, int],
    tcp_port: int,
    serial_port: str,
    baudrate: int,
    bacnet_port: int,
    dlms_port: int,
) -> None:
    """Add both buses and both meters through the REST API and wait for energy readings."""
    config = api.get("/api/config")
    print(f"check: Home Assistant {config['version']} is {config['state']}", flush=True)

    menu = api.post("/api/config/config_entries/flow", {"handler": "submeter"})
    if menu.get("type") != "menu" or not {"serial", "tcp"} <= set(menu.get("menu_options", [])):
        raise DemoError(f"submeter config flow did not start with the bus menu: {menu}")
    api.call("DELETE", f"/api/config/config_entries/flow/{menu['flow_id']}")
    print("check: the submeter config flow offers " + ", ".join(menu["menu_options"]), flush=True)

    # Leviton behind the gateway (the quick scan finds it at its factory address), Socomec on the
    # serial line (at address 2, which the user asks the scan to try): both paths get exercised.
    buses = {
        "tcp": _flow(
            api,
            "/api/config/config_entries/flow",
            "submeter",
            {"next_step_id": "tcp"},
            {"host": "127.0.0.1", "port": tcp_port},
            {"meters": [str(METERS["leviton"][1])]},
        ),
        "serial": _flow(
            api,
            "/api/config/config_entries/flow",
            "submeter",
            {"next_step_id": "serial"},
            {"port": serial_port, "baudrate": str(baudrate), "parity": "N", "stopbits": "1"},
            {"addresses": str(METERS["socomec"][1])},
            {"meters": [str(METERS["socomec"][1])]},
        ),
        # Who-Is through the simulated BBMD and to network 2; the recognised meters come ticked.
        "bacnet_ip": _flow(
            api,
            "/api/config/config_entries/flow",
            "submeter",
            {"next_step_id": "bacnet_ip"},
            {
                "interface": "127.0.0.1/32",
                "port": bacnet_port,
                "bbmd": f"127.0.0.1:{bacnet_port + 1}",
                "ttl": 300,
                "networks": "2",
            },
            {},
        ),
        # The meter describes itself: one association reads its name, serial and object list.
        "dlms_tcp": _flow(
            api,
            "/api/config/config_entries/flow",
            "submeter",
            {"next_step_id": "dlms_tcp"},
            {
                "host": "127.0.0.1",
                "port": dlms_port,
                "framing": "wrapper",
                "address": 17,  # the form's default; the IP wrapper does not use it
                # The association, in the form's collapsed section.
                "advanced": {"client": 16, "logical": 1, "security": "none", "password": ""},
            },
        ),
    }
    for kind, result in buses.items():
        print(f"check: bus entry {result['title']!r} created ({kind}) with the meters its scan found", flush=True)

    # The entry reloads with its new meter; wait until each meter reports its import counter.
    readings: dict[str, tuple[str, str, str]] = {}
    while True:
        rows = json.loads(api.post("/api/template", {"template": ROWS}) or "[]")
        readings = {
            device: (entity, state, unit)
            for entity, device, state, unit in rows
            if entity.startswith("sensor.") and entity.endswith("energy_import") and _numeric(state)
        }
        wanted = len(METERS) + BACNET_METERS + DLMS_METERS
        if len(readings) >= wanted:
            break
        _sleep(deadline, pids, f"energy_import sensors of {wanted} meters (have {sorted(readings)})", 1.0)
    for device, (entity, state, unit) in sorted(readings.items()):
        print(f"check: {entity} = {state} {unit or ''} ({device})", flush=True)
    print(f"check: {len(rows)} submeter entities", flush=True)
    frontend(api)


# What the frontend asks over the websocket before it draws its first page; any error here
# leaves the browser at "Loading..." (get_services did, on Home Assistant 2026 without hassil).
FRONTEND_COMMANDS: tuple[dict[str, Any], ...] = (
    {"type": "auth/current_user"},
    {"type": "get_config"},
    {"type": "get_services"},
    {"type": "get_panels"},
    {"type": "get_states"},
    {"type": "frontend/get_themes"},
    {"type": "frontend/get_translations", "language": "en", "category": "entity", "integration": ["submeter"]},
    {"type": "frontend/get_translations", "language": "en", "category": "services", "integration": ["submeter"]},
    {"type": "config/entity_registry/list_for_display"},
    {"type": "config/device_registry/list"},
    {"type": "config/area_registry/list"},
    {"type": "manifest/list"},
)


async def _frontend(url: str, token: str) -> list[str]:
    import aiohttp  # Home Assistant's; the rest needs only the stdlib

    problems: list[str] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        async with session.get(url + "/") as response:
            page = await response.text()
        scripts = re.findall(r'src="(/frontend_latest/[^"]+\.js)"', page) + re.findall(
            r'import\("(/frontend_latest/[^"]+\.js)"\)', page
        )
        if response.status != 200 or not scripts:
            problems.append(f"/ answered {response.status} without the frontend's scripts")
        for script in sorted(set(scripts)):
            async with session.get(url + script) as response:
                if response.status != 200:
                    problems.append(f"{script}: HTTP {response.status}")
        async with session.ws_connect(url + "/api/websocket") as ws:
            await ws.receive_json()  # auth_required
            await ws.send_json({"type": "auth", "access_token": token})
            if (reply := await ws.receive_json())["type"] != "auth_ok":
                return [*problems, f"websocket auth: {reply}"]
            for number, command in enumerate(FRONTEND_COMMANDS, start=1):
                await ws.send_json({"id": number, **command})
                while (reply := await ws.receive_json()).get("id") != number:
                    pass
                if not reply.get("success"):
                    problems.append(f"{command['type']}: {reply.get('error')}")
    return problems


def frontend(api: Api) -> None:
    """Load the frontend as a browser does on its first page: the page, its scripts, its websocket calls."""
    import asyncio

    assert api.token
    if problems := asyncio.run(_frontend(api.url, api.token)):
        raise DemoError("the frontend does not load: " + "; ".join(problems))
    print(f"check: the frontend loads (page, scripts, {len(FRONTEND_COMMANDS)} websocket calls)", flush=True)


def main() -> int:
    """Run one command; 0 on success, 1 with a message on stderr otherwise."""
    parser = argparse.ArgumentParser(prog="demo_setup.py")
    commands = parser.add_subparsers(dest="command", required=True)
    port = commands.add_parser("free-port")
    port.add_argument("start", type=int)
    port.add_argument("--strict", action="store_true")
    commands.add_parser("requirements")
    commands.add_parser("requirements-key")
    for name in ("ready", "tidy", "check"):
        sub = commands.add_parser(name)
        sub.add_argument("--url", required=True)
        sub.add_argument("--token-file", type=Path, required=True)
        sub.add_argument("--deadline", type=float, default=time.time() + 300)
        sub.add_argument("--watch", action="append", default=[], metavar="NAME=PID")
        if name == "ready":
            sub.add_argument("--onboarded-marker", type=Path, required=True)
        if name == "check":
            sub.add_argument("--tcp-port", type=int, required=True)
            sub.add_argument("--serial-port", required=True)
            sub.add_argument("--baudrate", type=int, required=True)
            sub.add_argument("--bacnet-port", type=int, required=True)
            sub.add_argument("--dlms-port", type=int, required=True)
    args = parser.parse_args()
    try:
        if args.command == "free-port":
            print(free_port(args.start, args.strict))
        elif args.command == "requirements":
            print("\n".join(requirements()))
        elif args.command == "requirements-key":
            print(requirements_key())
        else:
            pids = _watch(args.watch)
            api = Api(args.url, deadline=args.deadline)
            if args.command == "ready":
                ready(api, args.token_file, args.onboarded_marker, args.deadline, pids)
            else:
                api.token = args.token_file.read_text().strip()
                if args.command == "tidy":
                    tidy(api, wait=8.0)
                else:
                    check(
                        api,
                        args.deadline,
                        pids,
                        args.tcp_port,
                        args.serial_port,
                        args.baudrate,
                        args.bacnet_port,
                        args.dlms_port,
                    )
    except DemoError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except (OSError, ValueError, KeyError) as err:
        print(f"error: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C while scripts/demo waits: it stops everything
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
