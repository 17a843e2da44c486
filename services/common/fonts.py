"""The CJK font PDF documents embed (pdf.py), as a setting checked at start.

The font is a file on the host, named by CJK_FONT_PATH (default: Debian's fonts-noto-cjk, which the
image installs). A service that renders PDFs reads it with `cjk_font(env)` among its settings, so a
missing font stops it at start with the setting's name rather than failing the first export. In a
collection (.ttc) the Simplified Chinese face is taken: the CJK faces share code points, and the
Japanese or Traditional face would draw several characters in their forms.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fontTools.ttLib import TTCollection, TTLibError

from .config import Env

FONT_SETTING = "CJK_FONT_PATH"
DEFAULT_FONT_PATH = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"  # Debian's fonts-noto-cjk


@dataclass(frozen=True)
class CjkFont:
    """The font file and, in a collection, the index of its Simplified Chinese face."""

    path: str
    face: int = 0


def simplified_face(path: str) -> int:
    """In a .ttc, the index of the face whose family is the Simplified Chinese one (Noto's and Source
    Han's name it `… SC`); 0 for a single font or a collection without one."""
    if not path.lower().endswith((".ttc", ".otc")):
        return 0
    faces = TTCollection(path, lazy=True).fonts
    names = [str(face["name"].getDebugName(1) or "") for face in faces]
    return next((i for i, name in enumerate(names) if name.endswith(" SC")), 0)


def cjk_font(env: Env) -> CjkFont:
    """The font of CJK_FONT_PATH, checked at start: a missing or unreadable file is a problem of
    the settings (the process does not start)."""
    path = env.str(FONT_SETTING, DEFAULT_FONT_PATH)
    if not Path(path).is_file():
        env.problems.append(f"{FONT_SETTING}={path}: no such font file (install Debian's fonts-noto-cjk, or "
                            "name a .ttf, .otf or .ttc with Chinese glyphs)")
        return CjkFont(path)
    try:
        return CjkFont(path, simplified_face(path))
    except (OSError, TTLibError) as exc:
        env.problems.append(f"{FONT_SETTING}={path}: not a readable font ({type(exc).__name__})")
        return CjkFont(path)
