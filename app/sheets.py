"""Spreadsheets as offices keep them: Excel workbooks (.xlsx) and CSV files.

Reading gives the rows of one sheet with their row numbers, so every problem
can be named by its cell (``户籍!D17``). CSV files come from Excel on Chinese
Windows as GB18030 as often as UTF-8 (with or without a byte-order mark):
the encoding is detected, never asked for.
"""
from __future__ import annotations

import csv
import io
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

from wangge.core.errors import UsageError

#: Suffixes read and written as Excel workbooks.
WORKBOOK = (".xlsx", ".xlsm")
#: Rows searched for the header (offices put a title row or two above it).
HEADER_SEARCH = 10


@dataclass
class Table:
    """One sheet: its name as cell references show it, and its rows as ``(row number, values)``."""

    name: str
    rows: Iterator[tuple[int, tuple]]


def column_letter(index: int) -> str:
    """The spreadsheet letters of 0-based column ``index``: 0 → A, 26 → AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def cell(sheet: str, row: int, column: Optional[int] = None) -> str:
    """``sheet!D17`` for row 17, column index 3; ``sheet!17`` for a whole row."""
    return f"{sheet}!{column_letter(column) if column is not None else ''}{row}"


@contextmanager
def open_table(path: str | os.PathLike, sheet: Optional[str] = None) -> Iterator[Table]:
    """The rows of ``sheet`` (default: the first) of a workbook, or of a CSV file.

    Raises `UsageError` for a missing or unreadable file, an unknown sheet,
    an old .xls workbook or text in no encoding Excel writes.
    """
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"no file {file}: give the path of an .xlsx workbook or a .csv file")
    suffix = file.suffix.lower()
    if suffix == ".xls":
        raise UsageError(f"{file} is an old Excel 97-2003 workbook: save it as .xlsx (Excel Workbook) and import that")
    if suffix in WORKBOOK:
        with _workbook_table(file, sheet) as table:
            yield table
    elif suffix in (".csv", ".txt", ".tsv"):
        if sheet is not None:
            raise UsageError(f"{file} is a CSV file, which has no sheets: leave out --sheet")
        yield Table(file.name, _csv_rows(decode_text(file.read_bytes(), file.name)))
    else:
        raise UsageError(f"cannot read {file}: expected an .xlsx workbook or a .csv file, got {suffix or 'no suffix'}")


@contextmanager
def _workbook_table(file: Path, sheet: Optional[str]) -> Iterator[Table]:
    from zipfile import BadZipFile

    import openpyxl

    try:
        # read_only streams the sheet's XML: a district's roster need not fit in memory twice.
        book = openpyxl.load_workbook(file, read_only=True, data_only=True)
    except (BadZipFile, KeyError, OSError, ValueError) as exc:
        raise UsageError(f"cannot read {file} as an Excel workbook ({exc}): is it really an .xlsx file?") from None
    try:
        if sheet is None:
            chosen = book.worksheets[0]
        elif sheet in book.sheetnames:
            chosen = book[sheet]
        else:
            raise UsageError(f"{file} has no sheet {sheet!r}: it has {', '.join(book.sheetnames)}")
        rows = ((number, values) for number, values in enumerate(chosen.iter_rows(values_only=True), start=1))
        yield Table(chosen.title, rows)
    finally:
        book.close()


def decode_text(data: bytes, name: str) -> str:
    """Text of a CSV file in UTF-8 (with or without BOM) or GB18030, whichever it is.

    UTF-8 is tried first: GB18030 decodes almost any bytes, so it can only be
    the fallback. Raises `UsageError` naming the first bad byte's line.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UsageError(f"{name}: line {line} is neither UTF-8 nor GB18030 text: save the file as "
                         f"CSV UTF-8 from Excel") from None


def _csv_rows(text: str) -> Iterator[tuple[int, tuple]]:
    first = text.split("\n", 1)[0]
    # Excel's "Unicode text" and many exports are tab-separated.
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    for values in reader:
        # csv counts physical lines: a quoted cell may span several.
        yield reader.line_num, tuple(v if v != "" else None for v in values)


def write_table(path: str | os.PathLike, sheet: str, header: list[str], rows: Iterable[list[Any]]) -> int:
    """Write ``header`` and ``rows`` to an .xlsx workbook or a CSV file (UTF-8 with BOM, which
    Excel opens right); return the number of rows. Written to a temporary file and moved into
    place, so a failure leaves no half file. Raises `UsageError` if it cannot be written."""
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix not in WORKBOOK + (".csv",):
        raise UsageError(f"cannot write {file}: expected a name ending in .xlsx or .csv")
    _check_folder(file)
    temporary = file.with_name(f".{file.name}.part")
    count = 0
    try:
        if suffix in WORKBOOK:
            import openpyxl

            book = openpyxl.Workbook(write_only=True)
            out = book.create_sheet(sheet)
            out.append(header)
            for row in rows:
                out.append(row)
                count += 1
            book.save(temporary)
        else:
            with open(temporary, "w", encoding="utf-8-sig", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(header)
                for row in rows:
                    writer.writerow(["" if v is None else v for v in row])
                    count += 1
        os.replace(temporary, file)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise UsageError(f"cannot write {file}: {exc.strerror}") from None
    return count


def write_atomic_text(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` through a temporary file; raises `UsageError` if it cannot."""
    file = Path(path)
    _check_folder(file)
    temporary = file.with_name(f".{file.name}.part")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, file)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise UsageError(f"cannot write {file}: {exc.strerror}") from None


def _check_folder(file: Path) -> None:
    # Said before writing starts: a writer stopped half-way leaves its own noise behind.
    folder = file.parent
    if not folder.is_dir():
        raise UsageError(f"cannot write {file}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (file.exists() and not os.access(file, os.W_OK)):
        raise UsageError(f"cannot write {file}: permission denied; choose a writable path")
