"""Pure library behind the submeter integration: no Home Assistant imports.

Holds the measurement vocabulary, meter profiles (data files) and their loader,
the protocol client interface and its implementations, and the energy guard.
It can be used and tested without Home Assistant.
"""

from .client import BusClient, MeterClient, MeterInfo, Reading
from .exceptions import LinkError, MeterResponseError, MeterTimeoutError, ProfileError, SubmeterError
from .guard import EnergyGuard
from .measurements import ALERTS, EXPORTING, MEASUREMENTS, Alert, Kind, Measurement, Quantity
from .profile import Profile
from .profile_loader import load_builtin_profiles, load_profile, load_user_profiles, parse_profile

__all__ = [
    "ALERTS",
    "EXPORTING",
    "MEASUREMENTS",
    "Alert",
    "BusClient",
    "EnergyGuard",
    "Kind",
    "LinkError",
    "Measurement",
    "MeterClient",
    "MeterInfo",
    "MeterResponseError",
    "MeterTimeoutError",
    "Profile",
    "ProfileError",
    "Quantity",
    "Reading",
    "SubmeterError",
    "load_builtin_profiles",
    "load_profile",
    "load_user_profiles",
    "parse_profile",
]
