"""Constants of the submeter integration."""

from __future__ import annotations

from datetime import timedelta
from typing import Final

DOMAIN: Final = "submeter"

# Bus entry data.
CONF_LINK: Final = "link"
CONF_BAUDRATE: Final = "baudrate"
CONF_PARITY: Final = "parity"
CONF_STOPBITS: Final = "stopbits"
LINK_SERIAL: Final = "serial"
LINK_TCP: Final = "tcp"
LINK_RTU_OVER_TCP: Final = "rtu_over_tcp"

# Bus entry options.
CONF_TIMEOUT: Final = "timeout"
CONF_MESSAGE_SPACING: Final = "message_spacing"
DEFAULT_TIMEOUT: Final = 1.0
DEFAULT_MESSAGE_SPACING: Final = 0.0

# Meter subentries.
SUBENTRY_METER: Final = "meter"
CONF_PROFILE: Final = "profile"
CONF_UNIT_ADDRESS: Final = "address"
DEFAULT_SCAN_INTERVAL: Final = timedelta(seconds=10)

# Folder under the Home Assistant configuration directory for user profiles.
USER_PROFILE_DIR: Final = "submeter_profiles"
