"""IEC 62056-21 sign-on that switches an optical port (or RS-485 port) to HDLC: mode E.

The probe opens at 300 baud 7E1, asks ``/?!``, reads the identification
``/XXXZ<ident>`` whose Z announces the speed, acknowledges with protocol
"2" (HDLC) and both sides switch to 8N1 at that speed.

7E1 is sent as 8N1 with the even-parity bit in bit 7: the same ten bits on
the wire, and it works on adapters and pseudo-terminals that refuse a
7-bit character size.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Final

from ..exceptions import LinkError, MeterTimeoutError
from .streams import SerialStream

SIGN_ON_BAUD: Final = 300
BAUD_CHARACTERS: Final = {"0": 300, "1": 600, "2": 1200, "3": 2400, "4": 4800, "5": 9600, "6": 19200}
IDENT_TIMEOUT: Final = 2.0  # s; 62056-21 allows the meter 1.5 s, plus the reply's own time at 300 baud
SETTLE: Final = 0.3  # s the meter needs to change speed after the acknowledgement
# "/XXXZ" + at most 16 identification characters + CR LF is 23; room for enhanced marks and echo.
MAX_IDENT_LINE: Final = 128


@dataclass(frozen=True, slots=True)
class Identification:
    """The meter's answer to the sign-on: maker flag, speed and identification text."""

    manufacturer: str
    baudrate: int
    baud_character: str
    ident: str


def even_parity(text: bytes) -> bytes:
    """7-bit characters with their even-parity bit in bit 7 (7E1 carried as 8N1)."""
    return bytes(byte | (0x80 if (byte & 0x7F).bit_count() % 2 else 0) for byte in text)


def strip_parity(data: bytes) -> bytes:
    """The 7-bit characters of 7E1 data read as 8N1."""
    return bytes(byte & 0x7F for byte in data)


def request(device_address: str = "") -> bytes:
    """The sign-on request, optionally to one meter on a shared line."""
    return f"/?{device_address}!\r\n".encode("ascii")


def parse_identification(line: bytes) -> Identification:
    """Read ``/XXXZ<ident>``; ``LinkError("no_sign_on")`` for anything else."""
    text = line.strip(b"\r\n\x00").decode("ascii", errors="replace")
    if len(text) > MAX_IDENT_LINE:
        raise LinkError("no_sign_on", f"identification of {len(text)} characters is too long")
    if len(text) < 5 or not text.startswith("/"):
        raise LinkError("no_sign_on", f"unexpected identification {text!r}")
    character = text[4]
    if character not in BAUD_CHARACTERS:
        raise LinkError("no_sign_on", f"identification {text!r} announces no mode E speed")
    ident = text[5:]
    while ident.startswith("\\") and len(ident) >= 2:  # enhanced capability marks such as \\2
        ident = ident[2:]
    return Identification(text[1:4], BAUD_CHARACTERS[character], character, ident)


def acknowledgement(identification: Identification) -> bytes:
    """ACK choosing protocol mode E (HDLC) at the announced speed."""
    return b"\x06" + f"2{identification.baud_character}2".encode("ascii") + b"\r\n"


async def async_sign_on(
    stream: SerialStream, device_address: str = "", max_baudrate: int | None = None
) -> Identification:
    """Run the sign-on and leave ``stream`` in HDLC at the agreed speed."""
    stream.configure(SIGN_ON_BAUD)
    await stream.write(even_parity(request(device_address)))
    line = bytearray()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + IDENT_TIMEOUT
    while not line.endswith(b"\r\n"):
        left = deadline - loop.time()
        if left <= 0 or len(line) > MAX_IDENT_LINE:  # a line that chatters on is no identification
            raise LinkError("no_sign_on", f"no identification line within {IDENT_TIMEOUT} s: {bytes(line[:40])!r}")
        try:
            line += strip_parity(await stream.read(left))
        except MeterTimeoutError as err:
            raise LinkError("no_sign_on", "the meter did not answer the optical sign-on") from err
        start = line.find(b"/")
        if start > 0:
            del line[:start]
    identification = parse_identification(bytes(line))
    if max_baudrate is not None and identification.baudrate > max_baudrate:
        character = max(c for c, b in BAUD_CHARACTERS.items() if b <= max_baudrate)
        identification = Identification(
            identification.manufacturer, BAUD_CHARACTERS[character], character, identification.ident
        )
    await stream.write(even_parity(acknowledgement(identification)))
    await asyncio.sleep(SETTLE)
    stream.configure(identification.baudrate)
    return identification
