"""Helper of ``scripts/demo --browser``: the first five minutes of a new user, in headless Chromium.

Drives Home Assistant's real frontend with Playwright (Debian's Chromium, no browser download)
against the demo: logs in, adds each bus kind the demo simulates through the add-integration
dialog (with the scan's progress), checks the meters listed, opens a device page, picks energy
sensors in the Energy configuration, presses a reset, changes the tariff, opens the options and
a reconfigure, adds a meter through the add-meter flow and deletes one.

It fails on a raw translation key on screen, an error of the integration in the browser console
or in Home Assistant's log, or an expected label that is missing. Runs with its own small
virtualenv (playwright only); Home Assistant runs in the demo's.

    demo_browser.py --url URL --tcp-port N --serial-port PATH --bacnet-port N --dlms-port N
                    --hass-log FILE [--shots DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
import time
import urllib.parse
from pathlib import Path

from playwright.sync_api import ConsoleMessage, Locator, Page, sync_playwright
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeout

USER, PASSWORD = "demo", "demo-submeter"
CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps dialing out, which this machine refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
TIMEOUT_MS = 30_000
SCAN_TIMEOUT_MS = 60_000

# Every text node on the page, shadow roots included (Home Assistant's frontend is web components).
VISIBLE_TEXT = """() => {
  const out = [];
  const walk = (node) => {
    if (node.nodeType === Node.TEXT_NODE) {
      const text = node.textContent.trim();
      if (text) out.push(text);
      return;
    }
    if (node.nodeType === Node.ELEMENT_NODE) {
      if (["STYLE", "SCRIPT", "TEMPLATE"].includes(node.tagName)) return;
      const style = getComputedStyle(node);
      if (style.display === "none" || style.visibility === "hidden") return;
      if (node.shadowRoot) walk(node.shadowRoot);
      for (const attribute of ["label", "aria-label", "placeholder", "helper"]) {
        const value = node.getAttribute(attribute);
        if (value) out.push(value);
      }
    } else if (node.nodeType !== Node.DOCUMENT_FRAGMENT_NODE) {
      return;
    }
    for (const child of node.childNodes) walk(child);
  };
  walk(document.body);
  return out.join("\\n");
}"""
# A translation the frontend could not find shows as its key.
RAW_KEY = re.compile(
    r"\b(?:component\.[a-z_]+\.|ui\.(?:panel|dialogs|components|common)\.)[a-z0-9_.]+"
    r"|\[%key:[^\]]+\]"
    r"|\{[a-z_]+\}"  # a placeholder left unfilled
)
# In the integration's own dialogs a snake_case word alone is an untranslated key (already_in_progress).
RAW_WORD = re.compile(r"^[a-z]+(?:_[a-z0-9]+)+$", re.MULTILINE)


class BrowserTestError(Exception):
    """What the new user would have seen go wrong."""


class Run:
    """One browser session against the demo, with what it collected on the way."""

    def __init__(self, page: Page, url: str, shots: Path | None) -> None:
        self.page = page
        self.url = url.rstrip("/")
        self.shots = shots
        self.console: list[str] = []
        self.started = time.monotonic()
        self.shot_number = 0
        self.expected_page_errors = False
        self.watch(page)

    def watch(self, page: Page) -> None:
        """Collect ``page``'s console errors and uncaught exceptions."""
        page.on("console", self._on_console)
        page.on("pageerror", self._on_page_error)

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        location = message.location.get("url", "") if message.location else ""
        host = urllib.parse.urlsplit(location).netloc
        # Brand images come from the internet, which this machine does not reach; Home Assistant
        # 2026 proxies them (a 404 for core integrations here) and serves ours from brand/.
        if host and host != urllib.parse.urlsplit(self.url).netloc:
            return
        if "/api/brands/" in location and "/submeter/" not in location:
            return
        self.console.append(f"{message.text} ({location})")

    def _on_page_error(self, error: PlaywrightError) -> None:
        text = f"page error: {error.name}: {error.message} {error.stack or ''}"[:600]
        if self.expected_page_errors and "submeter" not in text.lower():
            self.log(f"frontend {text} (while its entry was being deleted; the frontend's, not ours)")
            return
        self.console.append(text)

    def log(self, what: str) -> None:
        print(f"browser: {time.monotonic() - self.started:6.1f}s {what}", flush=True)

    def shot(self, name: str) -> None:
        if self.shots is None:
            return
        self.shot_number += 1
        self.page.screenshot(path=str(self.shots / f"{self.shot_number:02d}-{name}.png"))

    def text(self) -> str:
        return str(self.page.evaluate(VISIBLE_TEXT))

    def check_screen(self, where: str, *expected: str, dialog: bool = False) -> str:
        """The labels the user must see are there (given 5 s to render), and nothing on screen is a raw key."""
        end = time.monotonic() + 5
        text = self.text()
        while any(label not in text for label in expected) and time.monotonic() < end:
            self.page.wait_for_timeout(250)
            text = self.text()
        raw = sorted(set(RAW_KEY.findall(text)))
        if dialog:
            raw += sorted(set(RAW_WORD.findall(self.dialog_text())))
        if raw:
            self.shot(f"raw-key-{where}")
            raise BrowserTestError(f"{where}: raw translation keys on screen: {raw}")
        missing = [label for label in expected if label not in text]
        if missing:
            self.shot(f"missing-{where}")
            raise BrowserTestError(f"{where}: expected {missing} on screen; it shows:\n{text[-2500:]}")
        if self.console:
            raise BrowserTestError(f"{where}: errors in the browser console: {self.console}")
        return text

    def goto(self, path: str) -> None:
        self.page.goto(self.url + path)
        self.page.wait_for_load_state("networkidle")

    def entry_row(self, title: str) -> Locator:
        """An entry's row on the integration page (2025.4: a list item; 2025.5+: ha-config-entry-row)."""
        return self.page.locator("ha-config-entry-row, ha-md-list-item").filter(has_text=title).first

    # --- the add-integration / flow dialog ---------------------------------------

    @property
    def dialog(self) -> Locator:
        return self.page.locator("dialog-data-entry-flow")

    def dialog_text(self) -> str:
        return str(
            self.dialog.evaluate(
                "(el) => { const f = " + VISIBLE_TEXT.replace("document.body", "el") + "; return f(); }"
            )
        )

    def submit(self) -> None:
        self.dialog.get_by_role("button", name=re.compile(r"^(submit|next|ok)$", re.IGNORECASE)).click()

    def field(self, label: str) -> Locator:
        """The text or number box labelled ``label`` (a required one has a star)."""
        name = re.compile("^" + re.escape(label) + r" ?\*?$")
        boxes = [self.dialog.get_by_role(role, name=name) for role in ("textbox", "spinbutton", "combobox")]
        return boxes[0].or_(boxes[1]).or_(boxes[2]).first

    def fill(self, label: str, value: str) -> None:
        self.field(label).fill(value)

    def picker(self, label: str) -> Locator:
        """Home Assistant 2026's list field: a button that opens a search box over the list."""
        return self.dialog.locator(f'ha-picker-field[aria-label="{label}"]')

    def value_of(self, label: str) -> str:
        """What the field labelled ``label`` holds now."""
        picker, field = self.picker(label), self.field(label)
        picker.or_(field).first.wait_for()
        if picker.count():
            return picker.locator('span[slot="headline"]').inner_text().strip()
        return field.input_value()

    def enter(self, label: str, value: str) -> None:
        """Type ``value`` into a field key by key, as a user does (a list filters as one types).

        A list field takes a value it does not offer: 2026's picker as "Add custom item", 2025.4's
        combo box when it is left with Tab.
        """
        picker, field = self.picker(label), self.field(label)
        picker.or_(field).first.wait_for()
        if picker.count():
            picker.click()
            self.dialog.locator("ha-picker-combo-box input").first.press_sequentially(value)
            self.dialog.locator("ha-picker-combo-box ha-combo-box-item").filter(has_text=value).first.click()
            headline = picker.locator('span[slot="headline"]')
            with contextlib.suppress(PlaywrightTimeout):
                headline.filter(has_text=value).wait_for(timeout=5_000)  # the form redraws
        else:
            field.fill("")
            field.press_sequentially(value)
            self.page.wait_for_timeout(200)
            self.page.keyboard.press("Tab")
        if (kept := self.value_of(label)) != value:
            raise BrowserTestError(f"{label}: typed {value!r}, the field kept {kept!r}")

    def choose(self, label: str, text: str) -> None:
        """Pick the entry of the list field ``label`` that contains ``text``: 2026's picker or 2025.4's menu."""
        picker = self.picker(label)
        picker.or_(self.dialog.get_by_label(label, exact=True)).first.wait_for()
        if picker.count():
            picker.click()
            self.page.wait_for_timeout(300)
            search = self.dialog.locator("ha-picker-combo-box input")
            if search.count():  # long lists have a search box
                search.first.press_sequentially(text)
            name = re.compile(re.escape(text))
            items = self.page.locator("ha-combo-box-item").filter(has_text=text)
            items = items.or_(self.page.get_by_role("option", name=name))
            items = items.or_(self.page.get_by_role("menuitem", name=name))
            items.filter(visible=True).first.click()
        else:
            self.dialog.get_by_label(label, exact=True).click()
            self.page.get_by_role("option", name=re.compile(re.escape(text))).first.click()

    def wait_for_step(self, label: str, timeout: float = SCAN_TIMEOUT_MS) -> None:
        """Until the dialog shows ``label``; an abort is checked for raw keys and fails."""
        step = self.dialog.get_by_text(label).filter(visible=True).first
        aborted = self.dialog.locator("step-flow-abort")
        step.or_(aborted).first.wait_for(timeout=timeout)
        if not step.is_visible():
            self.check_screen(f"waiting for {label!r}", dialog=True)
            raise BrowserTestError(f"the flow ended instead of showing {label!r}: {self.dialog_text()}")

    def watch_progress(self, where: str, label: str, *expected: str) -> None:
        """What the progress dialog says while it is up (it may be too quick to see): ``expected`` patterns."""
        progress = self.dialog.get_by_text(label).filter(visible=True).first
        try:
            progress.wait_for(timeout=5_000)
            text = self.dialog_text()
        except (PlaywrightTimeout, PlaywrightError):
            text = ""
        if label not in text:
            self.log(f"{where}: over before its progress showed")
            return
        self.shot(f"progress-{where}")
        self.log(f"{where} progress: {' / '.join(text.splitlines()[2:])!r}")
        raw = sorted(set(RAW_KEY.findall(text)) | set(RAW_WORD.findall(text)))
        missing = [pattern for pattern in expected if not re.search(pattern, text, re.MULTILINE)]
        if raw or missing:
            raise BrowserTestError(f"{where} progress: raw keys {raw}, missing {missing} in:\n{text}")

    def finish(self) -> None:
        """The success step of a new entry: its devices are listed, then the dialog is closed."""
        self.dialog.get_by_role("button", name=re.compile(r"^(skip and )?finish$", re.IGNORECASE)).click()
        self.dialog.locator("step-flow-create-entry").wait_for(state="detached")

    def start_bus_flow(self) -> None:
        self.goto("/config/integrations/dashboard/add?domain=submeter")
        confirm = self.page.get_by_role("button", name="OK")
        with contextlib.suppress(PlaywrightTimeout):
            confirm.click(timeout=5_000)  # 2025.4 asks "Do you want to set up Submeter?"
        self.wait_for_step("Add a meter bus", TIMEOUT_MS)
        self.check_screen("bus menu", "Modbus TCP gateway", "Serial port (USB RS-485 adapter)", dialog=True)


def login(run: Run) -> None:
    """Log in as the demo user; the first page must load (it stayed at Loading... on 2026.10)."""
    run.page.goto(run.url + "/")
    run.page.locator("input[name=username]").fill(USER)
    run.page.locator("input[name=password]").fill(PASSWORD)
    run.page.get_by_role("button", name="Log in").click()
    run.page.wait_for_url(re.compile(r"/lovelace|/home"), timeout=TIMEOUT_MS)
    run.page.locator("ha-sidebar").get_by_text("Settings").wait_for()
    run.check_screen("first page", "Overview", "Settings")
    run.log("logged in; the frontend loaded")


def open_bus_form(
    run: Run, option: str, fields: dict[str, str], *labels: str, presets: tuple[str, ...] = ()
) -> dict[str, str]:
    """Add integration -> Submeter -> the bus kind ``option``; its form is filled in and submitted.

    ``labels`` must be on the form. Returns what the fields named in ``presets`` held before they
    were filled in. A list field (the serial port, BACnet's interface) is typed key by key: the
    user picks from it or types their own value.
    """
    run.start_bus_flow()
    run.dialog.get_by_text(re.compile("^" + re.escape(option))).first.click()
    before = {label: run.value_of(label) for label in presets}
    for label, value in fields.items():
        run.enter(label, value)
    run.check_screen(f"{option} form", *labels, dialog=True)
    run.submit()
    return before


def meter_list(run: Run, where: str, *meters: str) -> str:
    """The scan's result: the list of meters to tick, with ``meters`` on it; returns the dialog's text."""
    run.wait_for_step("Meters to add")
    run.shot(where)
    return run.check_screen(where, *meters, dialog=True)


def create_bus(run: Run, where: str, *devices: str) -> None:
    """The success step names the new devices; the dialog is closed with Finish."""
    run.wait_for_step("Finish", TIMEOUT_MS)
    run.shot(f"created-{where}")
    run.check_screen(f"{where} created", *devices, dialog=True)
    run.finish()


def add_tcp_bus(run: Run, port: int) -> None:
    """The quick scan finds the Leviton, a typed range the Socomec; both are added."""
    link = f"Modbus TCP 127.0.0.1:{port}"
    open_bus_form(run, "Modbus TCP gateway", {"Host": "127.0.0.1", "Port": str(port)}, "IP address or host name")
    text = meter_list(run, "Modbus TCP quick scan", "Leviton", "Scan all addresses (1–247)")
    # One meter is one meter, on the link scanned, and no "(0 not recognised...)".
    expect_in("Modbus TCP quick scan", text, f"1 meter answered on {link}.", absent=("1 meters", "0 not recognised"))
    run.log(f"Modbus TCP quick scan: {first_line(text, 'answered')!r}")
    second_flow_refused(run, port)
    # A range rather than all 247 addresses: each silent address costs the scan its timeout.
    run.fill("Also try these addresses", "2-12")
    run.submit()
    # The quick scan found the Leviton: the count goes on from there, in the right plural.
    run.watch_progress("Modbus TCP scan", "Probing address", "^Scanning the bus$", r"; (1 meter|2 meters) found so far")
    text = meter_list(run, "Modbus TCP scan result", "Leviton", "Socomec")
    expect_in("Modbus TCP scan result", text, f"2 meters answered on {link}.", absent=("not recognised",))
    run.log(f"Modbus TCP scan of 2-12: {first_line(text, 'answered')!r}")
    run.submit()  # both are recognised, so both come ticked
    create_bus(run, "Modbus TCP", "Leviton", "Socomec")
    run.log("Modbus TCP bus added with two meters")


def second_flow_refused(run: Run, port: int) -> None:
    """A second add-bus dialog for the gateway whose first one is still open says so, in words."""
    first = run.page
    run.page = first.context.new_page()
    run.watch(run.page)
    try:
        open_bus_form(run, "Modbus TCP gateway", {"Host": "127.0.0.1", "Port": str(port)})
        run.dialog.locator("step-flow-abort").wait_for(timeout=TIMEOUT_MS)
        text = run.check_screen("second flow for the same gateway", dialog=True)
        if "already" not in run.dialog_text():
            raise BrowserTestError(f"a second flow for the same gateway ended with:\n{text[-800:]}")
        run.log(f"a second flow for the same gateway: {first_line(run.dialog_text(), 'already')!r}")
    finally:
        run.page.close()
        run.page = first


def add_serial_bus(run: Run, port: str) -> None:
    """The quick scan finds the Leviton; the Socomec is added later through the add-meter flow."""
    form = "Serial port (USB RS-485 adapter)"
    preset = open_bus_form(run, form, {"Serial port": port}, "Baud rate", "Parity", presets=("Serial port",))
    text = meter_list(run, "serial quick scan", "Leviton")
    # The result names the port that was scanned.
    expect_in("serial quick scan", text, "1 meter answered on Modbus RTU ttySUBMETER0", absent=("1 meters",))
    run.submit()
    create_bus(run, "serial", "Leviton")
    run.log(f"serial bus added with the Leviton (the port field held {preset['Serial port']!r})")


def add_bacnet_bus(run: Run, port: int) -> None:
    """Who-Is through the simulated BBMD and to network 2 finds the three BACnet meters."""
    interface = "This host's address on the network"
    fields = {
        interface: "127.0.0.1/32",
        "UDP port": str(port),
        "BBMD to register with (optional)": f"127.0.0.1:{port + 1}",
        "Remote networks to search (optional)": "2",
    }
    preset = open_bus_form(run, "BACnet/IP network", fields, presets=(interface,))[interface]
    if not preset:
        raise BrowserTestError("the BACnet/IP form does not prefill this host's address")
    run.watch_progress(
        "BACnet search", "identifying what answers", "^Searching the network$", r"(1 device|\d+ devices) so far"
    )
    meter_list(run, "BACnet meters found", "Leviton", "DTS 307")
    run.submit()
    create_bus(run, "BACnet", "Leviton")
    run.log(f"BACnet/IP bus added with three meters (the address field held {preset!r})")


def add_dlms_bus(run: Run, port: int) -> None:
    """The meter describes itself in one association; no list to tick."""
    open_bus_form(
        run, "DLMS/COSEM meter over TCP", {"Host": "127.0.0.1", "TCP port": str(port)}, "Framing", "Client address"
    )
    create_bus(run, "DLMS", "SM307")
    run.log("DLMS/COSEM meter added")


def expect_in(where: str, text: str, *expected: str, absent: tuple[str, ...] = ()) -> None:
    """``expected`` are in ``text`` and ``absent`` are not (wording the issue found wrong)."""
    missing = [part for part in expected if part not in text]
    wrong = [part for part in absent if part in text]
    if missing or wrong:
        raise BrowserTestError(f"{where}: missing {missing}, should not show {wrong}, in:\n{text[-2000:]}")


def first_line(text: str, word: str) -> str:
    """The first line of ``text`` with ``word`` in it: what the report quotes."""
    return next((line for line in text.splitlines() if word in line), "")


def open_device(run: Run, name: str) -> None:
    """A device's page, from the device list."""
    run.goto("/config/devices/dashboard")
    run.page.get_by_text(re.compile(name)).filter(visible=True).first.click()
    run.page.wait_for_url(re.compile(r"/config/devices/device/"))
    run.page.get_by_text("Energy import").filter(visible=True).first.wait_for()


# Built-in profile ids: internal, never on screen (the model line showed "(leviton_4100_modbus)").
PROFILE_IDS = ("leviton_4100_modbus", "socomec_countis_e4x", "sunspec_meter", "leviton_4100_bacnet", "bacnet_generic")
# Alerts that are diagnostics: the device page leads with measurements (phase loss, exporting stay).
DIAGNOSTIC_ALERTS = ("Current out of range L1", "Voltage out of range L1", "Low power factor L1", "Pulse output")


def card(text: str, heading: str) -> str:
    """The part of a device page's text under the card ``heading``, up to the card's end."""
    lines = text.splitlines()
    if heading not in lines:
        return ""
    rest = lines[lines.index(heading) + 1 :]
    end = next((i for i, line in enumerate(rest) if line == "Add to dashboard"), len(rest))
    return "\n".join(rest[:end])


def device_page(run: Run) -> None:
    """The Leviton's page leads with its measurements, alerts in Diagnostic; Reset energy is pressed."""
    open_device(run, "Leviton Series 4100 Modbus")
    run.page.wait_for_timeout(500)
    run.shot("device-leviton")
    text = run.check_screen("Leviton device page", "Energy import", "Power", "Reset energy", "Diagnostic")
    sensors, diagnostic = card(text, "Sensors"), card(text, "Diagnostic")
    expect_in(
        "Leviton's Sensors card", sensors, "Energy import", "Voltage L1-N", "Phase loss L1", absent=DIAGNOSTIC_ALERTS
    )
    expect_in("Leviton's Diagnostic card", diagnostic, *DIAGNOSTIC_ALERTS)
    expect_in("Leviton device page", text, absent=PROFILE_IDS)
    model = text.splitlines()[text.splitlines().index("Device info") + 1]
    run.log(f"device page: Sensors card {' / '.join(sensors.splitlines()[:6])!r}..., model line {model!r}")
    row = run.page.locator("hui-button-entity-row, hui-generic-entity-row").filter(has_text="Reset energy").first
    row.get_by_role("button", name=re.compile(r"^press$", re.IGNORECASE)).click()
    run.page.wait_for_timeout(500)
    run.check_screen("after Reset energy")
    run.log("device page: Reset energy pressed")


def change_tariff(run: Run) -> None:
    """The Socomec's tariff select is set to another tariff; its partial reset is off with its sensors."""
    open_device(run, "Socomec")
    text = run.check_screen("Socomec device page", "Tariff", "Energy import")
    # Every partial-energy sensor is disabled by default, so is the button that resets them.
    expect_in("Socomec device page", text, absent=("Reset partial energy", *PROFILE_IDS))
    row = run.page.locator("hui-select-entity-row").filter(has_text="Tariff").first
    row.locator("ha-select").click()
    try:  # 2025.4 lists options
        run.page.get_by_role("option", name=re.compile("2")).first.click(timeout=3_000)
    except PlaywrightTimeout:  # 2026's menu items have no such role: the next one is tariff 2
        run.page.keyboard.press("ArrowDown")
        run.page.keyboard.press("Enter")
    run.page.wait_for_timeout(500)
    run.shot("tariff")
    run.check_screen("after the tariff change", "Tariff 2")
    run.log("Socomec tariff changed; no enabled 'Reset partial energy'")


def energy_config(run: Run) -> None:
    """The Leviton's energy import is picked as grid consumption in the Energy configuration.

    The picker lists the SM307's import once as its sensor and at most once as its load profile,
    named after the meter and the value as the sensor is.
    """
    run.goto("/config/energy")
    run.check_screen("Energy configuration", "Electricity grid")
    # 2025.4: "Add consumption"; 2026: "Add grid connection".
    run.page.get_by_role("button", name=re.compile(r"add (consumption|grid connection)", re.IGNORECASE)).click()
    dialog = run.page.locator("dialog-energy-grid-flow-settings, dialog-energy-grid-settings")
    dialog.locator("ha-statistic-picker").first.click()
    run.page.wait_for_timeout(300)
    run.page.keyboard.type("SM307")
    run.page.wait_for_timeout(500)
    run.shot("energy-picker")
    run.check_screen("Energy picker", "Energy import")
    # 2025.4 draws the list as options in an overlay of the page, 2026 as picker items (name, then the device).
    options = run.page.get_by_role("option").or_(dialog.locator("ha-statistic-picker ha-combo-box-item[type=button]"))
    rows = [" ".join(row.split()) for row in options.filter(visible=True).all_inner_texts()]
    rows = [row for row in rows if "SM307" in row and "Energy import" in row and "tariff" not in row]
    # The load profile's statistics appear once its first day is imported, which may be later.
    profile = [row for row in rows if "load profile" in row]
    named = all(re.search(r"SM307.* Energy import \(load profile\)", row) for row in profile)
    twice = sorted({row for row in rows if rows.count(row) > 1})
    if twice or len(rows) - len(profile) != 1 or len(profile) > 1 or not named:
        raise BrowserTestError(f"Energy picker: SM307 rows {rows} (listed twice: {twice}, load profile: {profile})")
    run.page.keyboard.press("Control+A")
    run.page.keyboard.type("Leviton Series 4100 Modbus")
    run.page.wait_for_timeout(500)
    leviton = options.filter(has_text="Leviton Series 4100 Modbus").filter(has_text="Energy import")
    # The same product at address 1 on the TCP and the serial bus: two names, one carrying its bus.
    names = [" ".join(row.split()) for row in leviton.filter(visible=True).all_inner_texts()]
    if len(names) != len(set(names)) or [name for name in names if re.search(r" @ \d", name)]:
        raise BrowserTestError(f"Energy picker: the Levitons are not told apart: {names}")
    leviton.first.click()
    dialog.get_by_role("button", name=re.compile(r"^save$", re.IGNORECASE)).click()
    run.page.wait_for_timeout(500)
    run.check_screen("Energy configuration saved", "Energy import")
    run.log(f"Energy picker: the SM307's import listed once as its sensor, its load profile as {profile} (rows {rows})")


# Each entry's title carries its bus kind (one was a bare "127.0.0.1:18120", one a PTY path).
ENTRY_TITLE = re.compile(r"^(Modbus TCP|Modbus RTU|RTU over TCP|BACnet/IP|BACnet MS/TP|DLMS/COSEM) ")


def integration_page(run: Run, *titles: str) -> str:
    """The integration's page, with every bus entry (``titles``) and its meters."""
    run.goto("/config/integrations/integration/submeter")
    run.shot("integration-page")
    return run.check_screen("integration page", "Submeter", *titles)


def entry_titles(run: Run, *titles: str) -> None:
    """Every bus entry is listed under a title that names its kind; the brand icon loads (2026)."""
    integration_page(run, *titles)
    if wrong := [title for title in titles if not ENTRY_TITLE.match(title) or "via BBMD" in title]:
        raise BrowserTestError(f"entry titles without their bus kind: {wrong}")
    if at := re.findall(r"^.* @ \d+$", run.page.inner_text("body"), re.MULTILINE):
        raise BrowserTestError(f"meters named with '@ address': {at}")
    icons = run.page.locator('img[src*="/submeter/"]')
    served = [src for src in icons.evaluate_all("(imgs) => imgs.map((i) => i.src)") if "/api/brands/" in src]
    broken = icons.evaluate_all(
        "(imgs) => imgs.filter((i) => i.src.includes('/api/brands/') && i.complete && !i.naturalWidth).length"
    )
    if broken:
        raise BrowserTestError(f"the integration's brand icon does not load: {served}")
    run.log(f"entries: {list(titles)}; brand icon served by Home Assistant: {bool(served)}")


def entry_menu(run: Run, title: str, item: str) -> None:
    """An item of a bus entry's three-dot menu."""
    integration_page(run)
    entry = run.entry_row(title)
    menu = entry.locator("ha-button-menu, ha-md-button-menu").or_(entry.get_by_role("button", name="Menu", exact=True))
    menu.first.click()  # 2026 draws it as a plain button
    run.page.get_by_role("menuitem", name=re.compile(item, re.IGNORECASE)).first.click()


def options(run: Run, tcp_title: str) -> None:
    """The Modbus TCP bus' options (bus timing) are opened and saved unchanged."""
    integration_page(run)
    entry = run.entry_row(tcp_title)
    entry.get_by_role("button", name=re.compile(r"^configure$", re.IGNORECASE)).first.click()
    run.wait_for_step("Bus timing", TIMEOUT_MS)
    run.check_screen("options", "Bus timing", "Message spacing", dialog=True)
    run.submit()
    run.dialog.locator("step-flow-create-entry, step-flow-abort").first.wait_for()
    run.check_screen("options saved", dialog=True)
    run.page.keyboard.press("Escape")
    run.log("options opened and saved")


def reconfigure(run: Run, title: str, heading: str, expected: tuple[str, ...], absent: tuple[str, ...]) -> None:
    """A bus' reconfigure form shows the labels of its own kind and saves unchanged."""
    entry_menu(run, title, "reconfigure")
    run.wait_for_step(heading, TIMEOUT_MS)
    run.shot(f"reconfigure-{title[:12]}")
    text = run.check_screen(f"reconfigure {title}", *expected, dialog=True)
    if wrong := [label for label in absent if label in run.dialog_text()]:
        raise BrowserTestError(f"reconfigure {title}: another bus kind's wording {wrong} in:\n{text[-1500:]}")
    run.submit()
    # 2025.4 shows the reconfigure_successful abort; 2026 closes the dialog itself once it is saved.
    abort = run.dialog.locator("step-flow-abort")
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while not abort.is_visible() and run.dialog.is_visible():
        if time.monotonic() > deadline:
            raise BrowserTestError(f"reconfigure {title}: neither saved nor closed:\n{run.dialog_text()[-1500:]}")
        run.page.wait_for_timeout(200)
    said = abort.is_visible() and "The bus link was changed." in run.dialog_text()
    if abort.is_visible() and not said:  # 2026 shows the abort only for a moment before it closes
        run.page.wait_for_timeout(1_500)
        if run.dialog.is_visible():
            raise BrowserTestError(f"reconfigure {title}: saved without its message:\n{run.dialog_text()[-1500:]}")
    if run.dialog.is_visible():
        run.page.keyboard.press("Escape")
    run.check_screen(f"reconfigured {title}")
    saved = "the dialog said so" if said else "the dialog closed itself"
    run.log(f"reconfigured {title} ({saved})")


BACNET = ("UDP port", "47808", "BACnet")
MODBUS = ("Baud rate", "Modbus", "gateway")


def start_add_meters(run: Run, title: str) -> None:
    """The add-meter flow of a bus entry: a button on newer releases, an item of the entry's menu on 2025.4."""
    integration_page(run)
    button = run.entry_row(title).get_by_role("button", name=re.compile(r"^add meters$", re.IGNORECASE))
    try:
        button.first.click(timeout=3_000)
    except PlaywrightTimeout:
        entry_menu(run, title, "add meters")


def no_new_meters(run: Run, title: str) -> None:
    """Add meters -> Scan on a bus whose meters are all added says so, and how to look further."""
    start_add_meters(run, title)
    run.wait_for_step("Scan the bus", TIMEOUT_MS)
    run.dialog.get_by_text("Scan the bus", exact=True).click()
    run.wait_for_step("No new meters found")
    run.shot("no-new-meters")
    run.check_screen("no new meters", "127.0.0.1", "Scan all addresses (1–247)", dialog=True)
    run.submit()
    run.dialog.locator("step-flow-abort").wait_for()
    run.check_screen("no new meters, left", "No meter answered that is not set up already.", dialog=True)
    run.page.keyboard.press("Escape")
    run.log("Add meters -> Scan on a bus with every meter added: 'No new meters found'")


def add_meter(run: Run, title: str) -> None:
    """The Socomec at address 2 on the serial bus, by its address."""
    start_add_meters(run, title)
    run.wait_for_step("Enter an address", TIMEOUT_MS)
    run.check_screen("add-meter menu", "Scan the bus", dialog=True)
    run.dialog.get_by_text("Enter an address", exact=True).click()
    run.fill("Address", "2")
    run.choose("Meter model", "Socomec")
    run.submit()
    run.dialog.locator("step-flow-create-entry, step-flow-abort").first.wait_for(timeout=TIMEOUT_MS)
    run.shot("meter-added")
    run.check_screen("meter added", dialog=True)
    run.page.keyboard.press("Escape")
    run.log("Socomec added to the serial bus through the add-meter flow")


def delete_entry(run: Run, title: str) -> None:
    """A bus entry is deleted from its menu."""
    entry_menu(run, title, "delete")
    # 2025.4's frontend rejects two promises with a bare Object when an entry it shows goes away.
    run.expected_page_errors = True
    run.page.get_by_role("button", name=re.compile(r"^delete$", re.IGNORECASE)).last.click()
    run.page.wait_for_timeout(1000)
    run.expected_page_errors = False
    run.check_screen("after deleting")
    run.log(f"deleted {title}")


def main() -> int:
    """Run every step in one browser; 0 when all passed."""
    parser = argparse.ArgumentParser(prog="demo_browser.py")
    parser.add_argument("--url", required=True)
    parser.add_argument("--tcp-port", type=int, required=True)
    parser.add_argument("--serial-port", required=True)
    parser.add_argument("--bacnet-port", type=int, required=True)
    parser.add_argument("--dlms-port", type=int, required=True)
    parser.add_argument("--hass-log", type=Path, required=True)
    parser.add_argument("--shots", type=Path)
    args = parser.parse_args()
    if args.shots:
        args.shots.mkdir(parents=True, exist_ok=True)
    log_start = args.hass_log.stat().st_size if args.hass_log.exists() else 0
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
        context.set_default_timeout(TIMEOUT_MS)
        run = Run(context.new_page(), args.url, args.shots)
        try:
            login(run)
            add_tcp_bus(run, args.tcp_port)
            add_serial_bus(run, args.serial_port)
            add_bacnet_bus(run, args.bacnet_port)
            add_dlms_bus(run, args.dlms_port)
            device_page(run)
            change_tariff(run)
            energy_config(run)
            tcp, serial = f"Modbus TCP 127.0.0.1:{args.tcp_port}", "Modbus RTU ttySUBMETER0"
            bacnet, dlms = f"BACnet/IP 127.0.0.1:{args.bacnet_port}", f"DLMS/COSEM 127.0.0.1:{args.dlms_port}"
            entry_titles(run, tcp, serial, bacnet, dlms)
            options(run, tcp)
            reconfigure(run, tcp, "Change the Modbus TCP gateway", ("Host", "Port"), BACNET)
            reconfigure(run, serial, "Change the serial port", ("Baud rate",), BACNET)
            reconfigure(run, bacnet, "Change the BACnet/IP network", ("UDP port", "BBMD"), MODBUS)
            reconfigure(run, dlms, "Change the DLMS/COSEM TCP link", ("TCP port", "Framing"), BACNET)
            no_new_meters(run, tcp)
            add_meter(run, serial)
            delete_entry(run, dlms)
            problems = hass_log_problems(args.hass_log, log_start)
            if problems:
                raise BrowserTestError("Home Assistant logged errors of the integration:\n" + "\n".join(problems))
        except (BrowserTestError, PlaywrightError) as err:
            run.shot("failure")
            print(f"browser: FAILED after {time.monotonic() - run.started:.1f}s: {err}", file=sys.stderr)
            return 1
        finally:
            browser.close()
    run.log("passed")
    return 0


def hass_log_problems(log: Path, start: int) -> list[str]:
    """Errors of the integration, and errors of the websocket API or the frontend, logged since ``start``.

    Warnings of the integration are not failures: pressing "Reset energy" makes the meter's
    counters drop, which the total's guard logs as a warning when it keeps the total.
    """
    with log.open("rb") as file:
        file.seek(start)
        lines = file.read().decode(errors="replace").splitlines()
    return [
        line
        for line in lines
        if re.match(r"^\d{4}-\d\d-\d\d \S+ (ERROR|CRITICAL) ", line)
        and ("submeter" in line or "websocket_api" in line or "frontend" in line)
    ]


if __name__ == "__main__":
    sys.exit(main())
