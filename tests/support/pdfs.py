"""PDF files as a reader sees them (services/common/pdf.py): their text, the files of a zip, and the
QR code's modules read back from its image."""

from __future__ import annotations

import io
import zipfile

from pypdf import PdfReader

from services.common.pdf import QR_BORDER, QR_SCALE


def pdf_text(content: bytes) -> str:
    """Every page's text. pypdf reads each code of the two-byte CMap fpdf2 writes for CFF fonts
    as a NUL plus the character (viewers read the codespace right): the NULs are dropped."""
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages).replace("\x00", "")


def pdf_pages(content: bytes) -> int:
    return len(PdfReader(io.BytesIO(content)).pages)


def zip_files(content: bytes) -> dict[str, bytes]:
    """The zip's files by name."""
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def qr_modules_in(content: bytes) -> list[list[bool]]:
    """The dark modules of the first page's (only) image, read at each module's centre, without the
    quiet zone: what a scanner reads, to compare with the code of the expected text."""
    images = PdfReader(io.BytesIO(content)).pages[0].images
    assert len(images) == 1, f"{len(images)} images on the first page"
    image = images[0].image.convert("L")
    side = image.width // QR_SCALE - 2 * QR_BORDER
    return [[image.getpixel(((QR_BORDER + col) * QR_SCALE + QR_SCALE // 2,
                              (QR_BORDER + row) * QR_SCALE + QR_SCALE // 2)) < 128 for col in range(side)]
            for row in range(side)]


def flat(text: str) -> str:
    """The text without spaces and line breaks: where a wrapped line breaks depends on the glyphs' widths."""
    return "".join(text.split())
