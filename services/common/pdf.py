"""PDF documents in Chinese for any service (certificates, scorecards): fpdf2 drawing with a CJK
font embedded as a subset — only the glyphs a document uses travel in it, so a one-page certificate
stays a few kilobytes although the font file holds 65,000 glyphs — and QR codes (segno).

The font comes from fonts.py (CJK_FONT_PATH, checked at start). fpdf2 and fontTools take about half
a second of CPU to import: a module that renders imports this one where it renders, so a process
pays for them when it first draws a PDF, not at every start.

A QR code is embedded as a PNG of whole pixels per module (QR_SCALE), so it prints sharp and a test
reads the modules back from the image exactly.
"""

from __future__ import annotations

import io
import logging

import segno
from fpdf import FPDF, FontFace

from .fonts import CjkFont

FONT = "cjk"
QR_SCALE = 8   # pixels per module of the embedded image
QR_BORDER = 4  # the quiet zone the QR standard asks for, in modules
QR_ERROR = "m"  # recovers 15% of the modules: a stamp or a fold over the code still reads
HEADING_FILL = (221, 235, 247)  # the exports' header colour (exports.HEADER_FILL)

# fpdf2 warns about characters the font lacks by quoting them; a certificate's are a person's name
logging.getLogger("fpdf.output").setLevel(logging.ERROR)


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
