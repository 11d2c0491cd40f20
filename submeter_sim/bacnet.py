"""Simulated BACnet/IP meters, built directly on bacpypes3 (not on BAC0, which the integration uses).

``BacnetSite`` starts a small network on loopback: a Leviton 4100 BACnet and
a DTS-like meter as BBMD peers (the integration joins as a foreign device;
bacpypes3 treats any 127.x peer on its own UDP port as itself, so every
station here has its own port), and a router whose remote network 2 stands
for an MS/TP trunk with a second Leviton at MAC 7.

The Leviton serves the object table of its install guide with moving values,
Reliability faults, settable alert BIs, the AV1 command register and a clock
set by TimeSynchronization; answers over 480 bytes are aborted, as the real
meter (no segmentation) does.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from dataclasses import dataclass, field
from typing import Any

from bacpypes3.apdu import AbortPDU, AbortReason, ErrorRejectAbortNack
from bacpypes3.app import Application
from bacpypes3.basetypes import BDTEntry, IPMode, NetworkType, ProtocolLevel
from bacpypes3.local.analog import AnalogInputObject, AnalogValueObject
from bacpypes3.local.binary import BinaryInputObject
from bacpypes3.local.device import DeviceObject
from bacpypes3.local.networkport import NetworkPortObject
from bacpypes3.primitivedata import ObjectIdentifier
from bacpypes3.vlan import VirtualNetwork

LEVITON_APDU = 480
E, KW, KVAR, KVA, V, A, HZ, NONE = (
    "kilowatt-hours",
    "kilowatts",
    "kilovolt-amperes-reactive",
    "kilovolt-amperes",
    "volts",
    "amperes",
    "hertz",
    "no-units",
)

# AI number -> (Object_Name, Units, starting value), from the install guide's table.
LEVITON_AI: dict[int, tuple[str, str, float]] = {
    1: ("KWh_Net", E, 1200.0), 2: ("KWh_Import", E, 1500.0), 3: ("KWh_Export", E, 300.0),
    4: ("KVARh_Q1", E, 40.0), 5: ("KVARh_Q2", E, 4.0), 6: ("KVARh_Q3", E, 3.0), 7: ("KVARh_Q4", E, 30.0),
    8: ("Net_KVAh", E, 1300.0), 9: ("KVAh_Import", E, 1600.0), 10: ("KVAh_Export", E, 300.0),
    11: ("KW_Total", KW, 4.2), 12: ("KVAR_Total", KVAR, 0.8), 13: ("KVA_Total", KVA, 4.3), 14: ("PF_Total", NONE, 0.97),
    15: ("Volts_LL_Avg", V, 400.0), 16: ("Volts_LN_Avg", V, 231.0), 17: ("Current Average", A, 6.1),
    18: ("Frequency", HZ, 50.0),
    19: ("KW_Present_Demand", KW, 4.0), 20: ("KVAR_Present_Demand", KVAR, 0.7), 21: ("KVA_Present_Demand", KVA, 4.1),
    22: ("KW_Max_Demand_Import", KW, 9.5), 23: ("KVAR_Max_Demand_Import", KVAR, 1.5),
    24: ("KVA_Max_Demand_Import", KVA, 9.8), 25: ("KW_Max_Demand_Export", KW, 2.0),
    26: ("KVAR_Max_Demand_Export", KVAR, 0.3), 27: ("KVA_Max_Demand_Export", KVA, 2.1),
    28: ("Reserved_AI28", NONE, math.nan), 29: ("Pulse Count", NONE, 17.0), 30: ("Reserved", NONE, 0.0),
    **{31 + i: (f"KWh_Import_{p}", E, 500.0) for i, p in enumerate("ABC")},
    **{34 + i: (f"KWh_Export_{p}", E, 100.0) for i, p in enumerate("ABC")},
    **{37 + 3 * q + i: (f"KVARh_Q{q + 1}_{p}", E, 10.0) for q in range(4) for i, p in enumerate("ABC")},
    **{49 + i: (f"KVAh_Import_{p}", E, 530.0) for i, p in enumerate("ABC")},
    **{52 + i: (f"KVAh_Export_{p}", E, 100.0) for i, p in enumerate("ABC")},
    **{55 + i: (f"KW_{p}", KW, 1.4) for i, p in enumerate("ABC")},
    **{58 + i: (f"KVAR_{p}", KVAR, 0.27) for i, p in enumerate("ABC")},
    **{61 + i: (f"KVA_{p}", KVA, 1.43) for i, p in enumerate("ABC")},
    **{64 + i: (f"PF_{p}", NONE, 0.97) for i, p in enumerate("ABC")},
    67: ("Volts_AB", V, 400.0), 68: ("Volts_BC", V, 401.0), 69: ("Volts_AC", V, 399.0),
    70: ("Volts_AN", V, 231.0), 71: ("Volts_BN", V, 232.0), 72: ("Volts_CN", V, 230.0),
    73: ("Current_A", A, 6.0), 74: ("Current_B", A, 6.2), 75: ("Current_C", A, 6.1),
    76: ("Max_Power", KW, 103.92), 77: ("Reserved_AI77", NONE, math.nan), 78: ("Energy_Resets", NONE, 2.0),
    79: ("Reserved_AI79", NONE, math.nan), 80: ("Reserved_AI80", NONE, math.nan), 81: ("Power_Up_Count", NONE, 12.0),
    82: ("Output_Config", NONE, 11.0), 83: ("Alarm_Bitmap", NONE, 0.0),
}  # fmt: skip
LEVITON_AV: dict[int, tuple[str, str, float]] = {
    1: ("Config", NONE, 0.0), 2: ("System_Type", NONE, 40.0), 3: ("CT_Ratio_Primary", A, 100.0),
    4: ("CT_Ratio_Secondary", NONE, 1.0), 5: ("PT_Ratio", NONE, 1.0), 6: ("System_Voltage", V, 600.0),
    7: ("Display_Units", NONE, 1.0), 8: ("Phase_Loss_Voltage_Threshold", "percent", 10.0),
    9: ("Phase_Loss_Imbalance_Threshold", "percent", 25.0), 10: ("Subintervals", NONE, 1.0),
    11: ("Subinterval_Length", NONE, 90000.0),
}  # fmt: skip
LEVITON_BI = [
    "Volts_Error_A",
    "Volts_Error_B",
    "Volts_Error_C",
    "Current_Error_A",
    "Current_Error_B",
    "Current_Error_C",
    "Frequency_Error",
    "Reserved_BI8",
    "Phase_Loss_A",
    "Phase_Loss_B",
    "Phase_Loss_C",
    "Power_Factor_A",
    "Power_Factor_B",
    "Power_Factor_C",
    "RTC_Reset",
]
ENERGY_AIS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, *range(31, 55))
DEMAND_MAX = {22: 19, 23: 20, 24: 21}

# A DTS-like meter: a plausible object list (the real one is not public) with the
# names and units a generic BACnet client has to make sense of.
DTS_AI: dict[int, tuple[str, str, float]] = {
    1: ("kWh Delivered", E, 812.0), 2: ("kWh Received", E, 12.0), 3: ("kW Total", KW, 2.5),
    4: ("kVAR Total", KVAR, 0.4), 5: ("PF Total", "power-factor", 0.95), 6: ("Volts L1-N", V, 229.0),
    7: ("Volts L2-N", V, 230.0), 8: ("Volts L3-N", V, 231.0), 9: ("Amps L1", A, 3.9), 10: ("Amps L2", A, 3.5),
    11: ("Amps L3", A, 3.6), 12: ("Frequency", HZ, 50.01), 13: ("Meter Temperature", "degrees-celsius", 31.5),
}  # fmt: skip
DTS_BI = ("Phase Loss L1", "Phase Loss L2", "Phase Loss L3", "Reverse Rotation")


def _analog(cls: type, kind: str, number: int, name: str, units: str, value: float) -> Any:
    return cls(
        objectIdentifier=(kind, number),
        objectName=name,
        presentValue=value,
        units=units,
        statusFlags=[0, 0, 0, 0],
        eventState="normal",
        outOfService=False,
        reliability="no-fault-detected",
        description=name.replace("_", " "),
    )


def _binary(number: int, name: str) -> Any:
    return BinaryInputObject(
        objectIdentifier=("binary-input", number),
        objectName=name,
        presentValue="inactive",
        polarity="normal",
        statusFlags=[0, 0, 0, 0],
        eventState="normal",
        outOfService=False,
        reliability="no-fault-detected",
    )


class MeterApplication(Application):
    """A bacpypes3 device that behaves like a small meter: no segmentation, commands, clock."""

    meter: SimulatedBacnetMeter

    async def response(self, apdu: Any) -> None:
        if self.meter.silent:
            return
        limit = self.meter.max_apdu
        if limit and not isinstance(apdu, ErrorRejectAbortNack) and len(apdu.encode().pduData) > limit:
            self.meter.oversized += 1
            abort = AbortPDU(srv=True, reason=AbortReason.segmentationNotSupported, context=apdu)
            abort.pduDestination = apdu.pduDestination
            await super().response(abort)
            return
        await super().response(apdu)

    async def indication(self, apdu: Any) -> None:
        if self.meter.silent:
            return
        await super().indication(apdu)

    async def do_WritePropertyRequest(self, apdu: Any) -> None:
        command = self.meter.command_object
        await super().do_WritePropertyRequest(apdu)
        if command is not None and apdu.objectIdentifier == command:
            self.meter.run_command()

    async def do_TimeSynchronizationRequest(self, apdu: Any) -> None:
        self.meter.synchronised.append(apdu.time)
        self.meter.set_alert(15, False)


@dataclass
class SimulatedBacnetMeter:
    """One simulated BACnet meter: its objects and the knobs tests turn."""

    instance: int
    vendor_id: int
    vendor_name: str
    model: str
    object_name: str
    analog_inputs: dict[int, tuple[str, str, float]]
    analog_values: dict[int, tuple[str, str, float]] = field(default_factory=dict)
    binary_inputs: tuple[str, ...] = ()
    max_apdu: int | None = None
    command_object: ObjectIdentifier | None = None
    silent: bool = False
    oversized: int = 0
    commands: list[int] = field(default_factory=list)
    synchronised: list[Any] = field(default_factory=list)
    objects: dict[tuple[str, int], Any] = field(default_factory=dict)

    def build(self, ports: list[Any]) -> MeterApplication:
        device = DeviceObject(
            objectIdentifier=("device", self.instance),
            objectName=self.object_name,
            vendorIdentifier=self.vendor_id,
            vendorName=self.vendor_name,
            modelName=self.model,
            firmwareRevision="1.023",
            maxApduLengthAccepted=self.max_apdu or 1476,
            segmentationSupported="no-segmentation" if self.max_apdu else "segmented-both",
        )
        for number, (name, units, value) in self.analog_inputs.items():
            self.objects[("analog-input", number)] = _analog(
                AnalogInputObject, "analog-input", number, name, units, value
            )
        for number, (name, units, value) in self.analog_values.items():
            self.objects[("analog-value", number)] = _analog(
                AnalogValueObject, "analog-value", number, name, units, value
            )
        for number, name in enumerate(self.binary_inputs, 1):
            self.objects[("binary-input", number)] = _binary(number, name)
        app = MeterApplication.from_object_list([device, *ports, *self.objects.values()])
        app.meter = self
        return app

    def value(self, kind: str, number: int) -> Any:
        return self.objects[(kind, number)].presentValue

    def set_value(self, kind: str, number: int, value: float) -> None:
        self.objects[(kind, number)].presentValue = value

    def set_reliability(self, kind: str, number: int, reliability: str) -> None:
        self.objects[(kind, number)].reliability = reliability

    def set_alert(self, number: int, active: bool) -> None:
        self.objects[("binary-input", number)].presentValue = "active" if active else "inactive"

    def advance(self, kwh: float) -> None:
        """Energy flows: import totals grow by ``kwh`` (net too), as a running meter's do."""
        for number, (name, _units, _start) in self.analog_inputs.items():
            if "wh" in name.lower():
                if "Export" in name or "Received" in name:
                    continue
                obj = self.objects[("analog-input", number)]
                obj.presentValue = float(obj.presentValue) + kwh

    def run_command(self) -> None:
        """Act on AV1, as the Leviton does, and read back 0."""
        obj = self.objects[("analog-value", 1)]
        code = round(float(obj.presentValue))
        self.commands.append(code)
        if code == 30078:
            for number in ENERGY_AIS:
                self.set_value("analog-input", number, 0.0)
            self.set_value("analog-input", 78, float(self.value("analog-input", 78)) + 1)
        elif code == 21212:
            for peak, present in DEMAND_MAX.items():
                self.set_value("analog-input", peak, float(self.value("analog-input", present)))
        elif code == 16498:
            self.set_value("analog-input", 29, 0.0)
        obj.presentValue = 0.0


def leviton(instance: int) -> SimulatedBacnetMeter:
    """A Leviton 4100 BACnet (4DUBM) with the object table of its install guide."""
    return SimulatedBacnetMeter(
        instance=instance,
        vendor_id=133,
        vendor_name="Leviton Mfg.",
        model="S4100 Energy Meter",
        object_name=f"Leviton S4100 Series Energy Meter - S/N: 4DU{instance:07d}",
        analog_inputs=LEVITON_AI,
        analog_values=LEVITON_AV,
        binary_inputs=tuple(LEVITON_BI),
        max_apdu=LEVITON_APDU,
        command_object=ObjectIdentifier(("analog-value", 1)),
    )


def dts(instance: int = 473001) -> SimulatedBacnetMeter:
    """A DTS 307-like meter, for the generic profile."""
    return SimulatedBacnetMeter(
        instance=instance,
        vendor_id=473,
        vendor_name="Measurlogic Inc.",
        model="DTS 307/1",
        object_name="DTS 307 SN: ML307-0042",
        analog_inputs=DTS_AI,
        analog_values={1: ("CT Ratio", NONE, 200.0)},
        binary_inputs=DTS_BI,
    )


def _ip_port(port: int, peers: list[int], network: int | None = None) -> Any:
    obj = NetworkPortObject(f"127.0.0.1/32:{port}", objectIdentifier=("network-port", 1), objectName="IP")
    obj.bacnetIPMode = IPMode.bbmd
    obj.bbmdAcceptFDRegistrations = True
    obj.bbmdForeignDeviceTable = []
    obj.bbmdBroadcastDistributionTable = [BDTEntry(f"127.0.0.1/32:{p}") for p in peers if p != port]
    if network is not None:
        obj.networkNumber = network
        obj.networkNumberQuality = "configured"
    return obj


def _virtual_port(mac: int, vlan: str, number: int, network: int = 0) -> Any:
    return NetworkPortObject(
        objectIdentifier=("network-port", number),
        objectName=vlan,
        networkType=NetworkType.virtual,
        protocolLevel=ProtocolLevel.bacnetApplication,
        macAddress=bytes([mac]),
        networkInterfaceName=vlan,
        networkNumber=network,
        networkNumberQuality="configured" if network else "unknown",
        statusFlags=[0, 0, 0, 0],
        reliability="no-fault-detected",
        outOfService=False,
        changesPending=False,
    )


_VLANS = itertools.count()  # bacpypes3 keeps every virtual network by name for the life of the process


class BacnetSite:
    """Meters on loopback UDP ports next to ``base``, where the integration's own station belongs.

    ``base+1`` is the Leviton (and the BBMD to register with), ``base+2`` the
    DTS, ``base+3`` a router to network 2, whose MAC 7 is another Leviton.
    The integration's own station belongs on ``base``.
    """

    REMOTE_NETWORK = 2
    REMOTE_MAC = 7

    def __init__(self, base: int, leviton_instance: int = 1734211, remote_instance: int = 2093007) -> None:
        self.base = base
        self.leviton = leviton(leviton_instance)
        self.dts = dts()
        self.remote = leviton(remote_instance)
        self._apps: list[Application] = []

    @property
    def bbmd(self) -> str:
        return f"127.0.0.1:{self.base + 1}"

    def address_of(self, meter: SimulatedBacnetMeter) -> str:
        if meter is self.remote:
            return f"{self.REMOTE_NETWORK}:{self.REMOTE_MAC}"
        return f"127.0.0.1:{self.base + (1 if meter is self.leviton else 2)}"

    def start(self) -> None:
        peers = [self.base + 1, self.base + 2, self.base + 3]
        vlan = f"mstp{self.base}-{next(_VLANS)}"  # a later site may reuse this base port
        VirtualNetwork(vlan)
        self._apps.append(self.leviton.build([_ip_port(self.base + 1, peers)]))
        self._apps.append(self.dts.build([_ip_port(self.base + 2, peers)]))
        router = DeviceObject(
            objectIdentifier=("device", 4000000 + self.base), objectName="router", vendorIdentifier=15
        )
        self._apps.append(
            Application.from_object_list(
                [router, _ip_port(self.base + 3, peers, network=1), _virtual_port(1, vlan, 2, self.REMOTE_NETWORK)]
            )
        )
        self._apps.append(self.remote.build([_virtual_port(self.REMOTE_MAC, vlan, 1)]))

    def close(self) -> None:
        for app in self._apps:
            for layer in app.link_layers.values():
                if (clock := getattr(layer, "_fdt_clock_handle", None)) is not None:
                    clock.cancel()  # bacpypes3's BBMD does not stop its table clock on close
            for transaction in [*app.asap.clientTransactions, *app.asap.serverTransactions]:
                transaction.stop_timer()
            app.close()
        self._apps.clear()


# --- one station of a plain BACnet/IP LAN -------------------------------------------------------------
#
# Most sites have no BBMD: every station sits on the same IP subnet at UDP 47808 and Who-Is is a
# broadcast. bacpypes3 takes a peer on its own port at any 127.x address for itself, so such a LAN
# needs one network namespace per station; each runs one of these roles in its own process.

LAN_ROLES = ("leviton", "dts", "router")


def lan_station(role: str, interface: str, instance: int = 1734211) -> list[Application]:
    """The ``role`` station in normal BACnet/IP mode on ``interface`` (``ip/prefix``), UDP 47808.

    ``router`` routes to network 2, where a second Leviton (instance 2093007) sits at MAC 7.
    """
    ip_port = NetworkPortObject(f"{interface}:47808", objectIdentifier=("network-port", 1), objectName="IP")
    if role == "leviton":
        return [leviton(instance).build([ip_port])]
    if role == "dts":
        return [dts().build([ip_port])]
    if role != "router":
        raise ValueError(f"role {role!r} is not one of {LAN_ROLES}")
    ip_port.networkNumber = 1
    ip_port.networkNumberQuality = "configured"
    vlan = "mstp-lan"
    VirtualNetwork(vlan)
    router = DeviceObject(objectIdentifier=("device", 4000001), objectName="router", vendorIdentifier=15)
    return [
        Application.from_object_list([router, ip_port, _virtual_port(1, vlan, 2, BacnetSite.REMOTE_NETWORK)]),
        leviton(2093007).build([_virtual_port(BacnetSite.REMOTE_MAC, vlan, 1)]),
    ]


async def _serve_lan_station(role: str, interface: str) -> None:
    apps = lan_station(role, interface)
    for app in apps:
        for layer in app.link_layers.values():
            if (server := getattr(layer, "server", None)) is not None:
                await asyncio.wait_for(server._local_transport_ready.wait(), 5)
    print(f"ready {role} {interface}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="One station of a BACnet/IP LAN without BBMD (UDP 47808).")
    parser.add_argument("role", choices=LAN_ROLES)
    parser.add_argument("interface", help="this station's ip/prefix, as the kernel has it")
    args = parser.parse_args()
    asyncio.run(_serve_lan_station(args.role, args.interface))  # until the test stops the process
