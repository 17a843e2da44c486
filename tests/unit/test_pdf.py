"""The kit's PDF documents (services/common/pdf.py): Chinese text embedded in a font subset and read
back, the QR code's modules as segno encodes the text, the font setting checked at start."""

from __future__ import annotations

from pathlib import Path

from fontTools.ttLib import TTCollection

from services.common.config import Env
from services.common.pdf import DEFAULT_FONT_PATH, CjkFont, Document, cjk_font, qr_modules, simplified_face
from tests.support.pdfs import pdf_text, qr_modules_in

URL = "https://wenming.example.gov.cn/app/verify/ZM-2026-000123-K7QX"


def test_the_simplified_chinese_face_of_the_collection_is_taken():
    face = simplified_face(DEFAULT_FONT_PATH)
    assert TTCollection(DEFAULT_FONT_PATH, lazy=True).fonts[face]["name"].getDebugName(1).endswith(" SC")
    assert cjk_font(Env({})) == CjkFont(DEFAULT_FONT_PATH, face)


def test_a_missing_or_unreadable_font_is_a_problem_of_the_settings(tmp_path: Path):
    env = Env({"CJK_FONT_PATH": str(tmp_path / "none.ttc")})
    cjk_font(env)
    assert env.problems and env.problems[0].startswith(f"CJK_FONT_PATH={tmp_path / 'none.ttc'}: no such font file")
    junk = tmp_path / "junk.ttc"
    junk.write_bytes(b"not a font")
    env = Env({"CJK_FONT_PATH": str(junk)})
    cjk_font(env)
    assert env.problems and "not a readable font" in env.problems[0]


def test_chinese_text_and_tables_read_back_and_only_a_subset_of_the_font_travels():
    doc = Document(cjk_font(Env({})), "测试")
    doc.heading("志愿服务记录证明")
    doc.paragraph("兹证明志愿者 王小明（志愿者编号 V2026000001）累计服务时长 12.5 小时。")
    doc.grid(("服务内容", "时长（小时）"), [["助老送餐", "2.0"], ["垃圾分类宣传", "10.5"]], widths=(3, 1))
    content = doc.content()
    text = pdf_text(content)
    for expected in ("志愿服务记录证明", "王小明", "V2026000001", "12.5", "助老送餐", "垃圾分类宣传", "10.5"):
        assert expected in text
    assert len(content) < 100_000  # the font file is 20 MB: a subset of the glyphs used


def test_the_qr_code_holds_the_modules_segno_encodes_for_the_url():
    doc = Document(cjk_font(Env({})), "测试")
    doc.qr(URL, x=20, y=20, size=30)
    modules = qr_modules_in(doc.content())
    assert modules == qr_modules(URL)
    assert modules != qr_modules(URL.replace("K7QX", "K7QY"))
