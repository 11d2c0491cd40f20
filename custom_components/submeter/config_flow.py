"""Config flow entry point: Home Assistant imports this module; the flows live in ``flows/``."""

from __future__ import annotations

from .flows.bus import SubmeterConfigFlow
from .flows.schemas import stable_port_path

__all__ = ["SubmeterConfigFlow", "stable_port_path"]
