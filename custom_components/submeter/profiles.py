"""Profiles the integration offers: the built-in ones and the user's own."""

from __future__ import annotations

import logging
from pathlib import Path

from homeassistant.core import HomeAssistant
from homeassistant.util.hass_dict import HassKey

from .const import DOMAIN, USER_PROFILE_DIR
from .pysubmeter import Profile, ProfileError, load_builtin_profiles, load_user_profiles

_LOGGER = logging.getLogger(__name__)

DATA_PROFILES: HassKey[dict[str, Profile]] = HassKey(f"{DOMAIN}_profiles")


def _load(folder: str) -> tuple[dict[str, Profile], list[ProfileError]]:
    """Built-ins, then the user's files; a folder that cannot be listed costs the user profiles only."""
    builtin = load_builtin_profiles()
    try:
        user, errors = load_user_profiles(Path(folder), frozenset(builtin))
    except OSError as err:
        return builtin, [ProfileError(USER_PROFILE_DIR, "", f"cannot be listed ({err.strerror or err})")]
    return {**builtin, **user}, errors


async def async_get_profiles(hass: HomeAssistant, *, reload: bool = False) -> dict[str, Profile]:
    """All profiles by id; loaded once (files are read in an executor)."""
    if not reload and (cached := hass.data.get(DATA_PROFILES)) is not None:
        return cached
    profiles, errors = await hass.async_add_executor_job(_load, hass.config.path(USER_PROFILE_DIR))
    for error in errors:
        _LOGGER.error("Ignoring meter profile %s", error)
    hass.data[DATA_PROFILES] = profiles
    return profiles
