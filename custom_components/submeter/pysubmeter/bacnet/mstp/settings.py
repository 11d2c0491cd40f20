"""Settings of a BACnet MS/TP line on a local RS-485 adapter, as stored in a bus entry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Final

from .master import MasterSettings

BACNET_MSTP: Final = "bacnet_mstp"
DEFAULT_BAUDRATE: Final = 38400  # the DTS 307's factory rate; a Leviton 4100 ships at 76800
BAUDRATES: Final = (9600, 19200, 38400, 57600, 76800, 115200)
DEFAULT_MAC: Final = 0  # below every meter's default (1): the ring passes the token upward
DEFAULT_MAX_MASTER: Final = 127


@dataclass(frozen=True, slots=True)
class BacnetMstpLink:
    """Be master ``mac`` on the MS/TP line of serial ``port`` at ``baudrate``."""

    port: str
    baudrate: int = DEFAULT_BAUDRATE
    mac: int = DEFAULT_MAC
    max_master: int = DEFAULT_MAX_MASTER
    max_info_frames: int = 1

    kind: ClassVar[str] = BACNET_MSTP
    networks: ClassVar[tuple[int, ...]] = ()  # no routers searched behind an MS/TP line

    def __post_init__(self) -> None:
        """Refuse an impossible baud rate when the settings are built."""
        if self.baudrate <= 0:
            raise ValueError(f"baud rate {self.baudrate}")
        self.master_settings()  # ValueError on a MAC, Max_Master or Max_Info_Frames out of range

    @property
    def name(self) -> str:
        """The title of a bus entry: port, speed and our MAC."""
        return f"BACnet MS/TP {self.port} @ {self.baudrate} (MAC {self.mac})"

    def master_settings(self, **timers: float) -> MasterSettings:
        """The master node's settings of this line; ``timers`` override the standard timings."""
        return MasterSettings(mac=self.mac, max_master=self.max_master, max_info_frames=self.max_info_frames, **timers)

    def as_dict(self) -> dict[str, Any]:
        """The entry data of this line."""
        return {
            "link": self.kind,
            "port": self.port,
            "baudrate": self.baudrate,
            "mac": self.mac,
            "max_master": self.max_master,
            "max_info_frames": self.max_info_frames,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BacnetMstpLink:
        """The line of stored entry data, with defaults for keys older entries lack."""
        return cls(
            port=str(data["port"]),
            baudrate=int(data.get("baudrate", DEFAULT_BAUDRATE)),
            mac=int(data.get("mac", DEFAULT_MAC)),
            max_master=int(data.get("max_master", DEFAULT_MAX_MASTER)),
            max_info_frames=int(data.get("max_info_frames", 1)),
        )
