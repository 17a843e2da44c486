"""Spreadsheets in and out for onboarding (onboarding.py): reading a filled-in template (.xlsx or
CSV) into rows of text, writing a kind's template, and writing the error workbook that marks each
bad cell. Nothing here knows what a column means."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from openpyxl import Workbook, load_workbook
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from services.common.errors import InvalidArgument

MAX_FILE_BYTES = 7 * 1024 * 1024
# a workbook is a zip: what it unpacks to is bounded too, so a crafted file cannot fill the memory
MAX_UNPACKED_BYTES = 200 * 1024 * 1024
MAX_ROWS = 200_000
MAX_COLUMNS = 50
XLSX_MAGIC = b"PK\x03\x04"
BAD_FILL = PatternFill("solid", start_color="FFFFC7CE", end_color="FFFFC7CE")
HEADER_FILL = PatternFill("solid", start_color="FFDDEBF7", end_color="FFDDEBF7")
ROW_NUMBER_HEADER = "原行号"
REASONS_HEADER = "错误说明"
TEMPLATE_ROWS = 5000  # rows of the template offering the choices of a column


@dataclass(frozen=True)
class Column:
    header: str
    key: str
    required: bool
    hint: str
    choices: tuple[str, ...] = ()
    text: bool = False  # digits that Excel must not turn into a number (ID, phone)


@dataclass
class SheetRow:
    number: int              # in the file; the header is row 1
    cells: dict[str, str]    # column key -> text as typed (stripped)


@dataclass
class Marked:
    """A row with errors, for the error workbook: its cells and the reason of each bad one."""

    row: SheetRow
    reasons: dict[str, str] = field(default_factory=dict)  # column key -> reason


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value).strip()


def _xlsx_rows(content: bytes) -> Iterator[list[str]]:
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            if sum(info.file_size for info in archive.infolist()) > MAX_UNPACKED_BYTES:
                raise InvalidArgument.field("file.content", "the workbook unpacks to more than 200 MB")
        book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except InvalidArgument:
        raise
    except Exception:  # openpyxl raises many kinds for a damaged or foreign file
        raise InvalidArgument.field("file.content", "is not a readable .xlsx workbook") from None
    try:
        sheet = book.worksheets[0]
        for values in sheet.iter_rows(values_only=True, max_col=MAX_COLUMNS):
            yield [_text(v) for v in values]
    finally:
        book.close()


def _csv_rows(content: bytes) -> Iterator[list[str]]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        # what Excel on a Chinese Windows saves as "CSV"
        try:
            text = content.decode("gb18030")
        except UnicodeDecodeError:
            raise InvalidArgument.field("file.content", "is neither UTF-8 nor GB18030 text") from None
    try:
        for values in csv.reader(io.StringIO(text, newline="")):
            yield [v.strip() for v in values[:MAX_COLUMNS]]
    except csv.Error:
        raise InvalidArgument.field("file.content", "is not a readable CSV file") from None


def _cell(values: list[str], at: int | None) -> str:
    return values[at] if at is not None and at < len(values) else ""


def read_rows(content: bytes, columns: Sequence[Column]) -> list[SheetRow]:
    """The data rows of a filled-in template, by column key (columns found by their header; others
    ignored). INVALID_ARGUMENT on `file.content` for an unreadable file or a missing header."""
    if not content:
        raise InvalidArgument.field("file.content", "must not be empty")
    if len(content) > MAX_FILE_BYTES:
        raise InvalidArgument.field("file.content", f"must be at most {MAX_FILE_BYTES // (1024 * 1024)} MiB "
                                                    "(split the file)")
    lines = _xlsx_rows(content) if content.startswith(XLSX_MAGIC) else _csv_rows(content)
    header = next(lines, None) or []
    # a header may carry the template's required mark
    position = {name.rstrip("*＊ "): i for i, name in enumerate(header) if name}
    missing = [c.header for c in columns if c.required and c.header not in position]
    if missing:
        raise InvalidArgument.field("file.content", f"the header row lacks the column(s) {'、'.join(missing)}")
    rows: list[SheetRow] = []
    for number, values in enumerate(lines, start=2):
        if not any(values):
            continue
        if len(rows) == MAX_ROWS:
            raise InvalidArgument.field("file.content", f"holds more than {MAX_ROWS} rows (split the file)")
        rows.append(SheetRow(number, {c.key: _cell(values, position.get(c.header)) for c in columns}))
    return rows


def _header_cells(sheet, headers: Sequence[str]) -> None:
    sheet.append(list(headers))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
        cell.fill = HEADER_FILL
    sheet.freeze_panes = "A2"


def _widths(sheet, widths: Sequence[int]) -> None:
    for i, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(i)].width = width


def template_xlsx(title: str, columns: Sequence[Column]) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = title
    _header_cells(sheet, [c.header + ("*" if c.required else "") for c in columns])
    _widths(sheet, [max(12, 2 * len(c.header) + 4) if not c.text else 22 for c in columns])
    for i, column in enumerate(columns, start=1):
        letter = get_column_letter(i)
        if column.text:
            sheet.column_dimensions[letter].number_format = "@"
        if column.choices:
            choice = DataValidation(type="list", formula1='"' + ",".join(column.choices) + '"', allow_blank=True)
            choice.add(f"{letter}2:{letter}{TEMPLATE_ROWS + 1}")
            sheet.add_data_validation(choice)
    notes = book.create_sheet("填写说明")
    _header_cells(notes, ["列名", "是否必填", "填写说明"])
    for column in columns:
        notes.append([column.header, "必填" if column.required else "选填", column.hint])
    _widths(notes, [14, 10, 80])
    for row in notes.iter_rows(min_row=2):
        row[2].alignment = Alignment(wrap_text=True)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def template_csv(columns: Sequence[Column]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerow([c.header for c in columns])
    return ("\ufeff" + out.getvalue()).encode()  # the byte order mark: Excel then reads the Chinese


def error_workbook(title: str, columns: Sequence[Column], marked: Sequence[Marked]) -> bytes:
    """The rows with errors under the template's headers, after their row number in the file;
    each bad cell filled and annotated, every reason of the row in the last column."""
    book = Workbook()
    sheet = book.active
    sheet.title = title
    _header_cells(sheet, [ROW_NUMBER_HEADER, *(c.header for c in columns), REASONS_HEADER])
    _widths(sheet, [8, *(22 if c.text else max(12, 2 * len(c.header) + 4) for c in columns), 60])
    for line, entry in enumerate(marked, start=2):
        sheet.append([entry.row.number, *(entry.row.cells.get(c.key, "") for c in columns),
                      "；".join(f"{c.header}：{entry.reasons[c.key]}" for c in columns if c.key in entry.reasons)])
        for i, column in enumerate(columns, start=2):
            cell = sheet.cell(line, i)
            cell.number_format = "@"
            if column.key in entry.reasons:
                cell.fill = BAD_FILL
                cell.comment = Comment(entry.reasons[column.key], "文明云")
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
