"""A service record certificate (志愿服务记录证明) as a printable A4 PDF: what the HTML page says
(certificates.certificate_view), with the volunteer's name as the issuing unit's admins see it, and
a QR code of the public verification page (证明核验), which shows the facts without the name."""

from __future__ import annotations

from services.common.pdf import CjkFont, Document

LINE_HEADERS = ("服务内容", "类别", "次数", "时长（小时）", "时间")
COMMENDATION_HEADERS = ("年度", "级别", "表彰称号", "授予单位")
QR_MILLIMETRES = 32


def verification_url(app_url: str, number: str) -> str:
    """The app's 证明核验 page of the certificate (web/src/router.js: /verify/:number)."""
    return f"{app_url.rstrip('/')}/verify/{number}"


def statement(view: dict, name: str) -> str:
    """The certificate's sentence, as the HTML page words it."""
    who = f"志愿者 {name}（志愿者编号 {view['volunteer_number']}）" if name else \
        f"志愿者（志愿者编号 {view['volunteer_number']}）"
    during = f"于 {view['period']} 期间" if view["period"] else ""
    return (f"兹证明{who}{during}在 {view['issuer']} 参加志愿服务，经本单位记录并审核，累计服务时长 "
            f"{view['total_hours']} 小时（其中实时记录 {view['verified_hours']} 小时，补录 {view['manual_hours']} 小时）。")


def certificate_pdf(font: CjkFont, view: dict, name: str, verify_url: str) -> bytes:
    """The certificate of `view` (certificate_view) for the volunteer `name`."""
    doc = Document(font, f"志愿服务记录证明 {view['number']}")
    doc.ln(10)
    doc.heading("志愿服务记录证明", size=24)
    doc.paragraph(f"证明编号：{view['number']}", size=11, align="R")
    doc.ln(4)
    doc.paragraph(statement(view, name), size=13)
    doc.ln(4)
    doc.grid(LINE_HEADERS, [[line["title"], line["category"], str(line["times"]), line["hours"], line["span"]]
                            for line in view["lines"]], widths=(34, 12, 8, 14, 32))
    if view["commendations"]:
        doc.paragraph("获得表彰：")
        doc.grid(COMMENDATION_HEADERS, [[str(item["year"]), item["level_label"], item["title"], item["issuer"]]
                                        for item in view["commendations"]], widths=(10, 12, 40, 38))
    doc.paragraph("特此证明。", size=13)
    doc.ln(12)
    doc.paragraph(f"出具单位：{view['issuer']}（盖章）\n出具日期：{view['issued_on']}", size=13, align="R")
    # the code and its words at the foot of the page, where a stamp does not cover them
    top = doc.h - doc.b_margin - QR_MILLIMETRES - 10
    if doc.get_y() > top:
        doc.add_page()
    doc.qr(verify_url, x=doc.l_margin, y=top, size=QR_MILLIMETRES)
    doc.set_xy(doc.l_margin + QR_MILLIMETRES + 4, top + 8)
    doc.multi_cell(w=0, h=6, text=f"扫码或凭编号在文明云查验真伪：\n{verify_url}", new_x="LMARGIN", new_y="NEXT")
    return doc.content()
