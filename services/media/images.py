"""Images are decoded and re-encoded before they are stored: the stored file is pixels only.

Re-encoding drops every metadata block (EXIF with its GPS position — personal data —, XMP,
comments), after the EXIF orientation has been applied to the pixels so photos stay upright.
The pixel count is checked from the header before anything is decoded (decompression bombs),
and decoding runs a few at a time so concurrent uploads cannot multiply the memory it takes.
"""

from __future__ import annotations

import io
import threading
import warnings
from dataclasses import dataclass
from typing import BinaryIO

from PIL import Image, ImageOps, UnidentifiedImageError

from .content import ContentType, UploadRefused

THUMBNAIL_QUALITY = 80
QUALITY = 90


@dataclass(frozen=True)
class ImageLimits:
    max_pixels: int
    max_edge: int        # larger images are scaled down to this longest edge
    thumbnail_edge: int


@dataclass
class ProcessedImage:
    data: bytes
    width: int
    height: int
    thumbnail: bytes


class ImageProcessor:
    def __init__(self, limits: ImageLimits, concurrency: int):
        self.limits = limits
        self._slots = threading.BoundedSemaphore(concurrency)
        # Pillow's own guard, on top of the explicit check below (it refuses at twice the limit)
        Image.MAX_IMAGE_PIXELS = limits.max_pixels
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)

    def process(self, source: BinaryIO, content_type: ContentType, field: str) -> ProcessedImage:
        with self._slots:
            return self._process(source, content_type, field)

    def _process(self, source: BinaryIO, content_type: ContentType, field: str) -> ProcessedImage:
        limits = self.limits
        try:
            with Image.open(source, formats=[content_type.pillow_format]) as opened:
                width, height = opened.size
                if width * height > limits.max_pixels:
                    raise _bomb(width, height, limits.max_pixels, field)
                if content_type.pillow_format == "JPEG":
                    opened.draft("RGB", (limits.max_edge, limits.max_edge))  # decode huge JPEGs scaled down
                opened.load()
                icc_profile = opened.info.get("icc_profile")
                image = ImageOps.exif_transpose(opened)
        except Image.DecompressionBombError:
            raise _bomb(0, 0, limits.max_pixels, field) from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise UploadRefused("undecodable_image", field,
                                f"图片已损坏或不是有效的{content_type.label}，无法解码（{type(exc).__name__}）",
                                http_status=415) from None
        image.info.clear()  # nothing from the original file's metadata survives
        if max(image.size) > limits.max_edge:
            image.thumbnail((limits.max_edge, limits.max_edge), Image.Resampling.LANCZOS)
        if content_type.pillow_format == "JPEG" and image.mode not in ("RGB", "L", "CMYK"):
            image = image.convert("RGB")
        out = io.BytesIO()
        options = {"icc_profile": icc_profile} if icc_profile else {}
        if content_type.pillow_format == "JPEG":
            image.save(out, "JPEG", quality=QUALITY, **options)
        elif content_type.pillow_format == "WEBP":
            image.save(out, "WEBP", quality=QUALITY, **options)
        else:
            image.save(out, content_type.pillow_format, **options)
        return ProcessedImage(out.getvalue(), image.width, image.height, self._thumbnail(image))

    def _thumbnail(self, image: Image.Image) -> bytes:
        thumb = image.copy()
        thumb.thumbnail((self.limits.thumbnail_edge, self.limits.thumbnail_edge), Image.Resampling.LANCZOS)
        if thumb.mode in ("RGBA", "LA", "P"):
            thumb = thumb.convert("RGBA")
            background = Image.new("RGB", thumb.size, (255, 255, 255))
            background.paste(thumb, mask=thumb.getchannel("A"))
            thumb = background
        elif thumb.mode != "RGB":
            thumb = thumb.convert("RGB")
        out = io.BytesIO()
        thumb.save(out, "JPEG", quality=THUMBNAIL_QUALITY)
        return out.getvalue()


def _bomb(width: int, height: int, max_pixels: int, field: str) -> UploadRefused:
    size = f"{width}×{height}，" if width else ""
    return UploadRefused("decompression_bomb", field,
                         f"图片像素过多（{size}上限 {max_pixels:,} 像素），疑似解压炸弹，已拒绝", http_status=413)
