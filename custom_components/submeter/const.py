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
LINK_BACNET_IP: Final = "bacnet_ip"
LINK_DLMS_SERIAL: Final = "dlms_serial"
LINK_DLMS_TCP: Final = "dlms_tcp"

# Bus entry options.
CONF_TIMEOUT: Final = "timeout"
CONF_MESSAGE_SPACING: Final = "message_spacing"
DEFAULT_TIMEOUT: Final = 1.0
DEFAULT_MESSAGE_SPACING: Final = 0.0
DEFAULT_BACNET_TIMEOUT: Final = 3.0  # s; MS/TP behind a router answers slower than RS-485 Modbus
DEFAULT_DLMS_TIMEOUT: Final = 5.0  # s; meters on cellular modules answer slowly
CONF_IMPORT_LOAD_PROFILE: Final = "import_load_profile"  # DLMS: meter's intervals into statistics
CONF_SYNC_CLOCK: Final = "sync_clock"  # synchronise a meter's clock when it reports a reset

# Meter subentries.
SUBENTRY_METER: Final = "meter"
CONF_PROFILE: Final = "profile"
CONF_UNIT_ADDRESS: Final = "address"  # Modbus unit id; BACnet device instance
CONF_BACNET_ADDRESS: Final = "bacnet_address"  # where a BACnet meter answered last
DEFAULT_SCAN_INTERVAL: Final = timedelta(seconds=10)

# Folder under the Home Assistant configuration directory for user profiles.
USER_PROFILE_DIR: Final = "submeter_profiles"
