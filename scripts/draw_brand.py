"""Draw the brand images in custom_components/submeter/brand/ (run from the repository root with Pillow).

A meter face with its counter drums and a lightning bolt: original and simple. Home Assistant 2026
serves a custom integration's brand/ folder (icon, icon@2x, logo and their dark_ variants).
"""

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

out = Path("custom_components/submeter/brand")


def icon(size: int, dark: bool = False) -> Image.Image:
    """The square icon, drawn on a 256 grid scaled to ``size``."""
    s = size / 256
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    body = (3, 169, 244, 255)  # HA blue
    d.rounded_rectangle([16 * s, 16 * s, 240 * s, 240 * s], radius=44 * s, fill=body)
    face = (255, 255, 255, 255) if not dark else (30, 30, 30, 255)
    d.rounded_rectangle([44 * s, 52 * s, 212 * s, 148 * s], radius=14 * s, fill=face)
    ink = (3, 100, 160, 255) if not dark else (120, 200, 255, 255)
    # counter drums
    for i in range(5):
        x = 56 * s + i * 30 * s
        d.rounded_rectangle([x, 72 * s, x + 24 * s, 128 * s], radius=5 * s, outline=ink, width=max(1, round(5 * s)))
    # bolt
    bolt = [(140, 156), (96, 212), (126, 212), (112, 248), (164, 188), (132, 188), (146, 156)]
    d.polygon([(x * s, (y - 8) * s) for x, y in bolt], fill=(255, 235, 59, 255))
    return img


def logo(dark: bool = False) -> Image.Image:
    """The icon with the name beside it."""
    h = 256
    ic = icon(h, dark)
    try:
        font = ImageFont.truetype("DejaVuSans-Bold.ttf", 120)
    except OSError:
        font = ImageFont.load_default(size=120)
    text = "submeter"
    tmp = ImageDraw.Draw(Image.new("RGBA", (1, 1)))
    w = int(tmp.textlength(text, font=font))
    img = Image.new("RGBA", (h + 32 + w + 16, h), (0, 0, 0, 0))
    img.paste(ic, (0, 0), ic)
    d = ImageDraw.Draw(img)
    d.text((h + 32, h / 2), text, font=font, fill=(255, 255, 255, 255) if dark else (33, 33, 33, 255), anchor="lm")
    return img


icon(256).save(out / "icon.png", optimize=True)
icon(512).save(out / "icon@2x.png", optimize=True)
icon(256, True).save(out / "dark_icon.png", optimize=True)
icon(512, True).save(out / "dark_icon@2x.png", optimize=True)
logo().save(out / "logo.png", optimize=True)
logo(True).save(out / "dark_logo.png", optimize=True)
