"""The brand images Home Assistant 2026 serves from a custom integration's brand/ folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

BRAND = Path(__file__).parents[2] / "custom_components" / "submeter" / "brand"


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("icon.png", (256, 256)),
        ("icon@2x.png", (512, 512)),
        ("dark_icon.png", (256, 256)),
        ("dark_icon@2x.png", (512, 512)),
    ],
)
def test_icons_have_the_sizes_home_assistant_asks_for(name: str, size: tuple[int, int]) -> None:
    with Image.open(BRAND / name) as image:
        assert image.format == "PNG"
        assert image.size == size
        assert image.mode == "RGBA"  # transparent corners on either theme


@pytest.mark.parametrize("name", ["logo.png", "dark_logo.png"])
def test_logos_are_wide_and_256_high(name: str) -> None:
    with Image.open(BRAND / name) as image:
        width, height = image.size
        assert height == 256
        assert width > height
