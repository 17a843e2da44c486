"""PDF documents in Chinese for any service (certificates, scorecards): fpdf2 drawing with a CJK
font embedded as a subset — only the glyphs a document uses travel in it, so a one-page certificate
stays a few kilobytes although the font file holds 65,000 glyphs — and QR codes (segno).

The font is a file on the host, named by CJK_FONT_PATH (default: Debian's fonts-noto-cjk, which the
image installs). A service that renders PDFs reads it with `cjk_font(env)` among its settings, so a
missing font stops it at start with the setting's name rather than failing the first export. In a
collection (.ttc) the Simplified Chinese face is taken: the CJK faces share code points, and the
Japanese or Traditional face would draw several characters in their forms.

A QR code is embedded as a PNG of whole pixels per module (QR_SCALE), so it prints sharp and a test
reads the modules back from the image exactly.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path

import segno
from fontTools.ttLib import TTCollection, TTLibError
from fpdf import FPDF, FontFace

from .config import Env

FONT_SETTING = "CJK_FONT_PATH"
DEFAULT_FONT_PATH = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"  # Debian's fonts-noto-cjk
FONT = "cjk"
QR_SCALE = 8   # pixels per module of the embedded image
QR_BORDER = 4  # the quiet zone the QR standard asks for, in modules
QR_ERROR = "m"  # recovers 15% of the modules: a stamp or a fold over the code still reads
HEADING_FILL = (221, 235, 247)  # the exports' header colour (exports.HEADER_FILL)

# fpdf2 warns about characters the font lacks by quoting them; a certificate's are a person's name
logging.getLogger("fpdf.output").setLevel(logging.ERROR)


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


def qr_png(text: str) -> bytes:
    """The QR code of `text` as a black-and-white PNG, QR_SCALE pixels a module, with its quiet zone."""
    out = io.BytesIO()
    segno.make(text, error=QR_ERROR, micro=False).save(out, kind="png", scale=QR_SCALE, border=QR_BORDER)
    return out.getvalue()


def qr_modules(text: str) -> list[list[bool]]:
    """The dark modules of the QR code `qr_png` draws for `text`, row by row (without the quiet zone)."""
    return [[bool(module) for module in row] for row in segno.make(text, error=QR_ERROR, micro=False).matrix]


class Document(FPDF):
    """An A4 document whose text is set in the CJK font (regular face; headings by size and fill)."""

    def __init__(self, font: CjkFont, title: str, *, landscape: bool = False):
        super().__init__(orientation="L" if landscape else "P", unit="mm", format="A4")
        self.add_font(FONT, "", font.path, collection_font_number=font.face)
        self.set_font(FONT, size=11)
        self.set_title(title)
        self.set_creator("文明云")
        self.set_auto_page_break(auto=True, margin=15)
        self.add_page()

    def heading(self, text: str, size: float = 20) -> None:
        """A centred title line."""
        self.set_font(FONT, size=size)
        self.cell(w=0, h=size * 0.6, text=text, align="C", new_x="LMARGIN", new_y="NEXT")
        self.set_font(FONT, size=11)
        self.ln(4)

    def paragraph(self, text: str, size: float = 12, align: str = "L") -> None:
        """Wrapped text across the page."""
        self.set_font(FONT, size=size)
        self.multi_cell(w=0, h=size * 0.6, text=text, align=align, new_x="LMARGIN", new_y="NEXT")
        self.set_font(FONT, size=11)

    def grid(self, headers: tuple[str, ...], rows: list[list[str]], widths: tuple[float, ...],
             size: float = 10) -> None:
        """A bordered table with a filled header row, repeated on each page it runs over."""
        self.set_font(FONT, size=size)
        with self.table(col_widths=widths, text_align="CENTER", line_height=size * 0.6,
                        headings_style=FontFace(fill_color=HEADING_FILL), repeat_headings=1) as table:
            for cells in (list(headers), *rows):
                row = table.row()
                for cell in cells:
                    row.cell(cell)
        self.set_font(FONT, size=11)
        self.ln(3)

    def qr(self, text: str, x: float, y: float, size: float) -> None:
        """The QR code of `text` at (x, y), `size` millimetres square."""
        self.image(io.BytesIO(qr_png(text)), x=x, y=y, w=size, h=size)

    def content(self) -> bytes:
        return bytes(self.output())
