"""Images are stored re-encoded: EXIF (with its GPS position) is gone, the orientation is applied
to the pixels, a thumbnail exists, and the same photo twice is stored once."""

from __future__ import annotations

import io

from PIL import Image

from wenming.media.v1 import media_pb2 as pb

from .helpers import chunk_docs, jpeg

GPS_IFD = 0x8825
ORIENTATION = 0x0112
LATITUDE = (37.0, 55.0, 42.6)  # 凉州区, to the tenth of an arcsecond: a home address


def photo_with_gps() -> bytes:
    image = Image.new("RGB", (640, 480), (30, 140, 90))
    image.paste((230, 200, 20), (0, 0, 320, 60))  # a marker in the top-left corner
    exif = Image.Exif()
    exif[0x010F] = "WenmingCam"
    exif[ORIENTATION] = 6  # taken with the phone turned: the viewer must rotate 90° clockwise
    exif[GPS_IFD] = {1: "N", 2: LATITUDE, 3: "E", 4: (102.0, 38.0, 5.1)}
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, quality=95, comment=b"shot at home")
    return out.getvalue()


def test_gps_and_all_metadata_are_gone_and_orientation_is_applied(media_client, world, media_db):
    source = photo_with_gps()
    with Image.open(io.BytesIO(source)) as original:  # the test photo really carries a position
        assert original.getexif().get_ifd(GPS_IFD)[2] == LATITUDE

    uploaded = media_client.upload(world.volunteer_token, source, "服务现场.jpg").asset
    assert (uploaded.kind, uploaded.content_type) == (pb.ASSET_KIND_IMAGE, "image/jpeg")
    assert (uploaded.width, uploaded.height) == (480, 640)  # rotated upright
    meta, stored = media_client.download(world.volunteer_token, uploaded.asset_id)
    assert meta.sha256 == uploaded.sha256 and len(stored) == uploaded.size_bytes
    assert b"Exif" not in stored and b"WenmingCam" not in stored and b"shot at home" not in stored
    with Image.open(io.BytesIO(stored)) as image:
        assert not image.getexif() and not image.getexif().get_ifd(GPS_IFD)
        assert image.size == (480, 640)
        red, green, _ = image.convert("RGB").getpixel((470, 10))  # the marker is now top-right
        assert red > 180 and green > 150

    # the raw chunks in the database hold no position either
    blob_id = media_db.assets.find_one({"_id": uploaded.asset_id})["blob_id"]
    assert b"".join(bytes(c["data"]) for c in chunk_docs(media_db, blob_id)) == stored

    _, thumbnail = media_client.download(world.volunteer_token, uploaded.asset_id,
                                         variant=pb.ASSET_VARIANT_THUMBNAIL)
    with Image.open(io.BytesIO(thumbnail)) as thumb:
        assert thumb.format == "JPEG" and max(thumb.size) == 320 and thumb.size[1] > thumb.size[0]
    status, headers, body = media_client.http("GET", uploaded.thumbnail_path, world.volunteer_token)
    assert status == 200 and body == thumbnail and headers["Content-Type"] == "image/jpeg"


def test_the_same_photo_twice_is_stored_once(media_client, world, media_db):
    data = jpeg(300, 200, (12, 34, 56))
    first = media_client.upload(world.volunteer_token, data, "a.jpg")
    second = media_client.upload(world.other_volunteer_token, data, "b.jpg")
    assert not first.deduplicated and second.deduplicated
    assert first.asset.sha256 == second.asset.sha256 and first.asset.asset_id != second.asset.asset_id
    assert media_db.blobs.count_documents({"district_id": world.district.id, "sha256": first.asset.sha256}) == 1
    # each uploader owns their own asset record
    assert second.asset.uploaded_by != first.asset.uploaded_by


def test_png_with_transparency_keeps_its_format_and_gets_a_flat_thumbnail(media_client, world):
    image = Image.new("RGBA", (200, 100), (255, 0, 0, 0))
    image.paste((0, 0, 255, 255), (50, 25, 150, 75))
    out = io.BytesIO()
    image.save(out, "PNG")
    uploaded = media_client.upload(world.volunteer_token, out.getvalue(), "logo.png",
                                   declared_content_type="image/png").asset
    assert uploaded.content_type == "image/png"
    _, stored = media_client.download(world.volunteer_token, uploaded.asset_id)
    with Image.open(io.BytesIO(stored)) as png:
        assert png.mode == "RGBA" and png.getpixel((0, 0))[3] == 0
    _, thumbnail = media_client.download(world.volunteer_token, uploaded.asset_id,
                                         variant=pb.ASSET_VARIANT_THUMBNAIL)
    with Image.open(io.BytesIO(thumbnail)) as thumb:
        assert thumb.mode == "RGB" and min(thumb.getpixel((0, 0))) > 245  # transparent → white
