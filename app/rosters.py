"""Rosters: households, residents, workers and buildings in and out of spreadsheets.

Street offices keep their registers in Excel. An import maps the sheet's
columns to the record's fields by their label in the rule file (Chinese or
English) or their code, runs the ruleset's validators on every cell, and
reports every problem by its cell (``户籍!D17``). Nothing is written unless
the whole file passes; told to skip bad rows, it writes the good ones and
reports the rest. What it writes goes through change capture in one
transaction, so tablets receive it at their next sync.

A row whose system id (``系统编号``) names a record of the store updates it
(blank cells leave a value as it is); any other row adds a record. An
export writes the same columns, so an exported file imports back unchanged.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Callable, Iterable, Optional

from sqlalchemy import select
from sqlalchemy.engine import Connection

from wangge.app import sheets
from wangge.core.capture import Recorder, stored_json
from wangge.core.errors import ImportRefused, UsageError, ValidationFailed
from wangge.core.models import Assignment, Building, GridCell, Household, Resident, Worker
from wangge.core.ruleset import FieldSpec, FieldType, Label, Ruleset
from wangge.core.validators import field_checks, missing_message, ruleset_lang

__all__ = ["KINDS", "Imported", "Plan", "export_rows", "plan_import", "write_plan"]


@dataclass(frozen=True)
class Column:
    """One column of a roster: a typed column or district field (``spec``) or a reference."""

    code: str
    label: Label
    spec: Optional[FieldSpec] = None  # checked by the ruleset's validators
    ref: Optional[str] = None  # "grid", "building", "household", "role" or "grids": looked up in the store
    required: bool = False


def _text(code: str, zh: str, en: str, type_: FieldType = FieldType.text, **more) -> Column:
    label = Label(zh=zh, en=en)
    return Column(code, label, FieldSpec(code=code, label=label, type=type_, **more), required=more.get("required", False))


def _ref(code: str, zh: str, en: str, ref: str, required: bool = False) -> Column:
    return Column(code, Label(zh=zh, en=en), ref=ref, required=required)


_ID = _text("id", "系统编号", "System ID")
#: Per kind: the entity, its sheet's name, and the columns every district has.
_STANDARD: dict[str, tuple[str, Label, tuple[Column, ...]]] = {
    "households": ("household", Label(zh="住户", en="Households"), (
        _ID, _ref("grid", "网格", "Grid", "grid"), _ref("building", "楼栋", "Building", "building"),
        _text("address", "地址", "Address"), _text("head_name", "户主", "Head of household"),
        _text("members", "人数", "Members", FieldType.integer, min=0))),
    "residents": ("resident", Label(zh="居民", en="Residents"), (
        _ID, _ref("household", "住户", "Household", "household", required=True),
        _text("name", "姓名", "Name", required=True), _text("id_number", "身份证号", "ID number", FieldType.id_number),
        _text("phone", "电话", "Phone", FieldType.phone))),
    "workers": ("worker", Label(zh="工作人员", en="Workers"), (
        _ID, _text("name", "姓名", "Name", required=True), _ref("role", "角色", "Role", "role", required=True),
        _text("phone", "电话", "Phone", FieldType.phone), _text("department", "部门", "Department"),
        _ref("grids", "负责网格", "Grids", "grids"))),
    "buildings": ("building", Label(zh="楼栋", en="Buildings"), (
        _ID, _ref("grid", "网格", "Grid", "grid", required=True), _text("code", "楼栋编号", "Building code", required=True),
        _text("name", "名称", "Name"), _text("kind", "类型", "Kind"))),
}
KINDS = tuple(_STANDARD)
_STANDARD_COLUMNS = frozenset(c for _, _, standard in _STANDARD.values() for c in standard)
_TABLES = {"household": Household.__table__, "resident": Resident.__table__, "worker": Worker.__table__,
           "building": Building.__table__}
_grids_table, _assignments = GridCell.__table__, Assignment.__table__
#: Separators of several values in one cell: choices (车辆: 汽车、电动车) and a worker's grids.
_SEPARATORS = re.compile(r"\s*[,，、;；]\s*")
_TRUE = {"是", "有", "true", "yes", "y", "1", "√", "✓", "对"}
_FALSE = {"否", "无", "false", "no", "n", "0", "×", "✗", "不是"}
_DATE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")


def columns(ruleset: Ruleset, kind: str) -> tuple[str, tuple[Column, ...]]:
    """The entity of ``kind`` and its columns: the standard ones, then the rule file's register."""
    if kind not in _STANDARD:
        raise UsageError(f"cannot import {kind!r}: expected one of {', '.join(KINDS)}")
    entity, _, standard = _STANDARD[kind]
    register = tuple(Column(s.code, s.label, s, required=s.required) for s in ruleset.register(entity))
    return entity, standard + register


def _key(text: str) -> str:
    # Headers are typed by hand: case, blanks, full-width brackets and a required-marker star vary.
    text = text.replace("（", "(").replace("）", ")").replace("＊", "*")
    return re.sub(r"\s+", "", text).strip("*").casefold()


def _names(column: Column) -> set[str]:
    return {_key(n) for n in (column.code, column.label.zh, column.label.en) if n}


@dataclass
class Plan:
    """What an import would write, and every problem found; nothing written yet."""

    kind: str
    entity: str
    sheet: str
    inserts: list[dict] = field(default_factory=list)
    updates: list[tuple[str, dict]] = field(default_factory=list)
    assignments: list[dict] = field(default_factory=list)  # workers' grids
    problems: list[tuple[str, str]] = field(default_factory=list)  # (cell, message), in file order
    fatal: bool = False  # a problem of the whole file (a missing column): skipping rows cannot help
    rows: int = 0
    bad_rows: int = 0
    unchanged: int = 0


@dataclass(frozen=True)
class Imported:
    kind: str
    sheet: str
    inserted: int
    updated: int
    skipped: tuple[tuple[str, str], ...] = ()  # every problem of the rows left out
    skipped_rows: int = 0
    unchanged: int = 0

    def summary(self) -> str:
        count = self.skipped_rows
        skipped = f", skipped {count} bad row{'s' if count != 1 else ''}" if count else ""
        return (f"{self.kind} from {self.sheet}: added {self.inserted}, updated {self.updated}, "
                f"unchanged {self.unchanged}{skipped}")


class _Lookups:
    """What references resolve against: the store's grids, buildings, households, roles, ids."""

    def __init__(self, conn: Connection, ruleset: Ruleset, entity: str):
        g = _grids_table
        self.grids = dict(conn.execute(select(g.c.code, g.c.id).where(g.c.deleted.is_(None))).all())
        self.roles = {}
        for role in ruleset.roles:
            for name in (role.code, role.label.zh, role.label.en):
                if name:
                    self.roles.setdefault(_key(name), role.code)
        b = _TABLES["building"]
        self.buildings: dict[str, list[tuple[str, str]]] = {}  # code -> [(id, grid id)]
        if entity == "household":
            for row in conn.execute(select(b.c.id, b.c.code, b.c.grid_id).where(b.c.deleted.is_(None))):
                self.buildings.setdefault(row.code, []).append((row.id, row.grid_id))
        self.households: dict[str, str] = {}  # id -> grid id
        self.addresses: dict[str, list[str]] = {}
        if entity == "resident":
            h = _TABLES["household"]
            for row in conn.execute(select(h.c.id, h.c.grid_id, h.c.address).where(h.c.deleted.is_(None))):
                self.households[row.id] = row.grid_id
                if row.address:
                    self.addresses.setdefault(row.address, []).append(row.id)
        table = _TABLES[entity]
        self.existing: set[str] = {i for (i,) in conn.execute(select(table.c.id).where(table.c.deleted.is_(None)))}
        self.id_numbers: dict[str, str] = {}
        if entity == "resident":
            r = _TABLES["resident"]
            self.id_numbers = {n: i for i, n in conn.execute(select(r.c.id, r.c.id_number).where(
                r.c.deleted.is_(None), r.c.id_number != ""))}
        self.assigned: set[tuple[str, str]] = set()
        if entity == "worker":
            a = _assignments
            self.assigned = {(w, g) for w, g in conn.execute(select(a.c.worker_id, a.c.grid_id))}


def plan_import(conn: Connection, ruleset: Ruleset, kind: str, table: sheets.Table, *,
                lang: Optional[str] = None) -> Plan:
    """Read ``table``, check every cell and reference, and return what to write and every problem.

    Reads the store through ``conn`` (to resolve grid codes, buildings,
    households and ids) and writes nothing.
    """
    lang = lang or ruleset_lang(ruleset)
    entity, cols = columns(ruleset, kind)
    plan = Plan(kind, entity, table.name)
    rows, mapping = _header(table, cols, plan, lang)
    if mapping is None:
        return plan
    checks = field_checks(tuple(c.spec for c in cols if c.spec is not None), lang)
    look = _Lookups(conn, ruleset, entity)
    converters = [(index, column, _converter(column, checks, look, lang)) for index, column in mapping]
    seen_ids: dict[str, int] = {}
    seen_numbers: dict[str, int] = {}
    where = {column.code: index for index, column in mapping}
    for number, values in rows:
        if not any(v not in (None, "") for v in values):
            continue
        plan.rows += 1
        record, bad, failed = {}, [], set()
        for index, column, convert in converters:
            raw = values[index] if index < len(values) else None
            try:
                value = convert(raw)
            except ValidationFailed as problem:
                bad.append((sheets.cell(table.name, number, index), str(problem)))
                failed.add(column.code)
                continue
            if value is not None:
                record[column.code] = value
        row_id = record.get("id")
        new = row_id is None or row_id not in look.existing
        if row_id is not None:
            if row_id in seen_ids:
                bad.append((sheets.cell(table.name, number, where["id"]),
                            f"{_ID.label.text(lang)} {row_id} is also on row {seen_ids[row_id]}"))
            seen_ids[row_id] = number
        if new:
            bad += [(sheets.cell(table.name, number, where[c.code]), _missing(c, lang)) for c in cols
                    if c.required and c.code not in record and c.code not in failed and c.code in where]
        if not failed & {"grid", "building", "household"}:
            bad += _relations(entity, record, look, where, table.name, number, new, lang, seen_numbers)
        if bad:
            plan.problems.extend(sorted(bad, key=lambda b: _column_order(b[0])))
            plan.bad_rows += 1
            continue
        _add(plan, entity, record, new, look)
    _drop_unchanged(conn, plan)
    return plan


def _drop_unchanged(conn: Connection, plan: Plan) -> None:
    """Keep of each update only the values that differ from the store's: re-importing a file
    must not send every tablet an op per row."""
    if not plan.updates:
        return
    table = _TABLES[plan.entity]
    stored: dict[str, dict] = {}
    ids = [i for i, _ in plan.updates]
    for start in range(0, len(ids), 500):
        for row in conn.execute(select(table).where(table.c.id.in_(ids[start:start + 500]))):
            values = dict(row._mapping)
            values.update(stored_json(values.pop("fields", None)) or {})
            stored[row.id] = values
    changed = []
    for entity_id, values in plan.updates:
        old = stored.get(entity_id, {})
        diff = {k: v for k, v in values.items() if _comparable(old.get(k)) != _comparable(v)}
        if diff:
            changed.append((entity_id, diff))
        else:
            plan.unchanged += 1
    plan.updates = changed


def _comparable(value):
    return value.isoformat() if isinstance(value, date) else value


def _column_order(where: str) -> tuple[int, str]:
    letters = where.rsplit("!", 1)[-1].rstrip("0123456789")
    return len(letters), letters


def _header(table: sheets.Table, cols: tuple[Column, ...], plan: Plan, lang: str):
    """The rows after the header and ``[(column index, Column)]``, or None with the problems noted.

    The header is the first of the first rows whose labels are mostly known
    (offices put a title row above it), else the first row with any text.
    """
    by_name = _by_name(cols)
    head = list(itertools.islice(table.rows, sheets.HEADER_SEARCH))
    chosen = None
    for position, (number, values) in enumerate(head):
        texts = [str(v).strip() if v is not None else "" for v in values]
        found = sum(1 for t in texts if t and _key(t) in by_name)
        if found and found * 2 >= sum(1 for t in texts if t):
            chosen = position
            break
        if chosen is None and any(texts):
            chosen = position  # kept, and its unknown labels reported, if no better row comes
    if chosen is None:
        plan.problems.append((sheets.cell(table.name, 1), "the sheet is empty: expected a header row of column labels"))
        plan.fatal = True
        return iter(()), None
    number, values = head[chosen]
    texts = [str(v).strip() if v is not None else "" for v in values]
    mapping, taken = [], {}
    for index, text in enumerate(texts):
        if not text:
            continue
        column = by_name.get(_key(text))
        where = sheets.cell(table.name, number, index)
        if column is None:
            known = [c.label.text(lang) for c in cols]
            plan.problems.append((where, f"unknown column {text!r}: {_did_you_mean(text, known)}"))
        elif column.code in taken:
            plan.problems.append((where, f"column {text!r} repeats {taken[column.code]} "
                                         f"({column.label.text(lang)}): keep one of them"))
        else:
            taken[column.code] = where
            mapping.append((index, column))
    for column in cols:
        if column.required and column.code not in taken:
            plan.problems.append((sheets.cell(table.name, number),
                                  f"no column for {column.label.text(lang)} ({column.code}), which is required: "
                                  f"add a column headed {column.label.text(lang)!r}"))
    if plan.problems:
        plan.fatal = True
        return iter(()), None
    return itertools.chain(head[chosen + 1:], table.rows), mapping


def _by_name(cols: tuple[Column, ...]) -> dict[str, Column]:
    """Columns by every name they answer to. The rule file's fields come first: a district's
    ``户主`` is its field, and the typed column of that label answers to its other names."""
    by_name: dict[str, Column] = {}
    for column in sorted(cols, key=lambda c: c in _STANDARD_COLUMNS):
        for name in _names(column):
            by_name.setdefault(name, column)
    return by_name


def header_labels(cols: tuple[Column, ...], lang: str) -> list[str]:
    """Each column's label in ``lang``, or, where that names another column, a name that does not."""
    by_name = _by_name(cols)
    out = []
    for column in cols:
        names = (column.label.text(lang), column.label.text("en" if lang == "zh" else "zh"), column.code)
        out.append(next((n for n in names if n and by_name.get(_key(n)) is column), column.code))
    return out


def _did_you_mean(text: str, known: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(text, known, n=1, cutoff=0.5)
    if close:
        return f"did you mean {close[0]!r}?"
    return "expected one of " + ", ".join(known)


def _missing(column: Column, lang: str) -> str:
    if column.spec is not None:
        return missing_message(column.spec, lang)
    return missing_message(FieldSpec(code=column.code, label=column.label, type=FieldType.text), lang)


def _converter(column: Column, checks: dict, look: _Lookups, lang: str) -> Callable[[Any], Any]:
    """The function turning one cell of ``column`` into a stored value (None for a blank cell)."""
    if column.ref is not None:
        return _reference(column, look, lang)
    spec, check = column.spec, checks[column.code]
    kind = spec.type

    def convert(value):
        value = _cell_value(kind, value, spec, lang)
        if value is None:
            return None
        value = check(value)
        return value.isoformat() if isinstance(value, date) else value

    return convert


def _cell_value(kind: FieldType, value, spec: FieldSpec, lang: str):
    """A cell as the validators expect it: Excel's numbers, dates and text, or CSV's text, to the field's type."""
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
    if value is None:
        return None
    if kind in (FieldType.integer, FieldType.decimal):
        if isinstance(value, str):
            try:
                number = float(value.replace(",", ""))
            except ValueError:
                return value  # the validator names it
            return int(number) if kind is FieldType.integer and number.is_integer() else number
        return value
    if kind is FieldType.boolean:
        word = str(value).strip().casefold()
        return True if word in _TRUE else False if word in _FALSE else value
    if kind is FieldType.date:
        if isinstance(value, datetime):
            return value.date()
        found = _DATE.match(str(value))
        if found:
            try:
                return date(*map(int, found.groups()))
            except ValueError:
                return value
        return value
    if kind is FieldType.choices:
        return [v for v in _SEPARATORS.split(str(value)) if v] if isinstance(value, str) else value
    if kind is FieldType.id_number and isinstance(value, (int, float)):
        # Excel keeps 15 significant digits: an 18-digit number has already lost its last three.
        name = f"{spec.label.text(lang)}({spec.code})" if lang == "zh" else f"{spec.label.text(lang)} ({spec.code})"
        raise ValidationFailed(f"{name}: 身份证号被存为数字,末三位已丢失;请将该列设为文本格式后重新填写"
                               if lang == "zh" else f"{name}: the ID number is stored as a number, which loses "
                               f"its last digits; format the column as text and enter it again")
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a phone or a code Excel took for a number
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _reference(column: Column, look: _Lookups, lang: str) -> Callable[[Any], Any]:
    zh = lang == "zh"

    def text(value) -> Optional[str]:
        if value is None:
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        value = str(value).strip()
        return value or None

    def grid(value):
        code = text(value)
        if code is None or code in look.grids:
            return code
        raise ValidationFailed(f"网格 {code!r} 不存在:请先用 `wangge grid add` 或 `wangge grid import` 添加" if zh else
                               f"no grid {code!r}: add it first with `wangge grid add` or `wangge grid import`")

    def grids(value):
        codes = [c for c in _SEPARATORS.split(text(value) or "") if c]
        unknown = [c for c in codes if c not in look.grids]
        if unknown:
            raise ValidationFailed((f"网格 {', '.join(unknown)} 不存在" if zh else f"no grid {', '.join(unknown)}"))
        return codes or None

    def role(value):
        name = text(value)
        if name is None:
            return None
        if _key(name) in look.roles:
            return look.roles[_key(name)]
        defined = ", ".join(dict.fromkeys(look.roles.values()))
        raise ValidationFailed(f"角色 {name!r} 未在规则文件中定义:应为 {defined}" if zh else
                               f"role {name!r} is not defined in the rule file: expected one of {defined}")

    def household(value):
        name = text(value)
        if name is None or name in look.households:
            return name
        found = look.addresses.get(name, [])
        if len(found) == 1:
            return found[0]
        if found:
            raise ValidationFailed(f"地址 {name!r} 对应 {len(found)} 户:请填写住户的系统编号" if zh else
                                   f"{len(found)} households have the address {name!r}: give the household's system id")
        raise ValidationFailed(f"住户 {name!r} 不存在(按系统编号或地址查找)" if zh else
                               f"no household {name!r} (looked up by system id and by address)")

    return {"grid": grid, "grids": grids, "role": role, "household": household, "building": text}[column.ref]


def _relations(entity: str, record: dict, look: _Lookups, where: dict, sheet: str, number: int, new: bool,
               lang: str, seen_numbers: dict) -> list[tuple[str, str]]:
    """Problems between the cells of one row and the store: a building in another grid, a grid missing."""
    zh, bad = lang == "zh", []
    if entity == "household":
        code = record.pop("building", None)
        grid_id = look.grids.get(record.pop("grid", None)) if "grid" in record else None
        if code is not None:
            found = look.buildings.get(code, [])
            matches = [b for b in found if grid_id is None or b[1] == grid_id]
            if len(matches) == 1:
                record["building_id"], building_grid = matches[0]
                grid_id = grid_id or building_grid
            else:
                message = (f"楼栋 {code!r} 不在该网格" if zh else f"building {code!r} is not in that grid") if found \
                    else (f"楼栋 {code!r} 不存在" if zh else f"no building {code!r}")
                if len(matches) > 1:
                    message = (f"楼栋编号 {code!r} 在多个网格中:请同时填写网格" if zh else
                               f"building code {code!r} is in several grids: give the grid too")
                bad.append((sheets.cell(sheet, number, where["building"]), message))
        if grid_id is not None:
            record["grid_id"] = grid_id
        elif new and not bad:
            at = where.get("grid", where.get("building"))
            bad.append((sheets.cell(sheet, number, at) if at is not None else sheets.cell(sheet, number),
                        "网格:必填(或填写楼栋)" if zh else "grid: expected a grid code (or a building), got None"))
    elif entity == "building" and "grid" in record:
        record["grid_id"] = look.grids[record.pop("grid")]
    elif entity == "resident" and "household" in record:
        record["household_id"] = record.pop("household")
        record["grid_id"] = look.households[record["household_id"]]
    if entity == "resident" and record.get("id_number"):
        number_ = record["id_number"]
        other = look.id_numbers.get(number_)
        if number_ in seen_numbers or (other is not None and other != record.get("id")):
            at = f"row {seen_numbers[number_]}" if number_ in seen_numbers else f"resident {other}"
            bad.append((sheets.cell(sheet, number, where["id_number"]),
                        (f"身份证号 {number_} 与{at}重复" if zh else f"ID number {number_} repeats {at}")))
        seen_numbers.setdefault(number_, number)
    return bad


def _add(plan: Plan, entity: str, record: dict, new: bool, look: _Lookups) -> None:
    grids = record.pop("grids", None) if entity == "worker" else None
    if new:
        from wangge.core.ids import uuid7

        record.setdefault("id", uuid7())
        plan.inserts.append(record)
    else:
        plan.updates.append((record["id"], {k: v for k, v in record.items() if k != "id"}))
    worker_id = record["id"]
    for code in grids or ():
        grid_id = look.grids[code]
        if (worker_id, grid_id) not in look.assigned:
            look.assigned.add((worker_id, grid_id))
            plan.assignments.append({"worker_id": worker_id, "grid_id": grid_id})


def write_plan(rec: Recorder, plan: Plan) -> Imported:
    """Write what ``plan`` holds through change capture; return what was done."""
    rec.insert_many(plan.entity, plan.inserts)
    if plan.updates:
        rec.update_many(plan.entity, plan.updates)
    rec.insert_many("assignment", plan.assignments)
    return Imported(plan.kind, plan.sheet, len(plan.inserts), len(plan.updates), tuple(plan.problems), plan.bad_rows,
                    plan.unchanged)


def refuse_if_bad(plan: Plan, skip_bad: bool) -> None:
    """Raise `ImportRefused` with every problem unless the plan is clean, or bad rows may be skipped."""
    if plan.problems and (plan.fatal or not skip_bad):
        raise ImportRefused(f"{plan.kind} from {plan.sheet}", plan.problems)


# -- export -------------------------------------------------------------------------------------


def export_rows(conn: Connection, ruleset: Ruleset, kind: str, lang: Optional[str] = None
                ) -> tuple[str, list[str], Iterable[list]]:
    """The sheet's name, its header (labels in ``lang``) and its rows, as an import reads them back."""
    lang = lang or ruleset_lang(ruleset)
    entity, cols = columns(ruleset, kind)
    table = _TABLES[entity]
    grid_codes = {i: c for c, i in conn.execute(select(_grids_table.c.code, _grids_table.c.id))}
    building_codes = dict(conn.execute(select(Building.__table__.c.id, Building.__table__.c.code)).all())
    worker_grids: dict[str, list[str]] = {}
    if entity == "worker":
        for w, g in conn.execute(select(_assignments.c.worker_id, _assignments.c.grid_id)
                                 .where(_assignments.c.active, _assignments.c.deleted.is_(None))):
            worker_grids.setdefault(w, []).append(grid_codes.get(g, g))
    rows = conn.execute(select(table).where(table.c.deleted.is_(None)).order_by(table.c.id)).all()
    refs = {"grid": lambda r: grid_codes.get(r.grid_id), "building": lambda r: building_codes.get(r.building_id),
            "household": lambda r: r.household_id, "role": lambda r: r.role,
            "grids": lambda r: "、".join(sorted(worker_grids.get(r.id, [])))}
    typed = set(table.c.keys())

    def cells(row) -> list:
        custom = stored_json(row.fields) if "fields" in typed else {}
        out = []
        for column in cols:
            if column.ref is not None:
                out.append(refs[column.ref](row))
            else:
                value = getattr(row, column.code) if column.code in typed else (custom or {}).get(column.code)
                out.append(_shown(value, column.spec.type, lang))
        return out

    _, sheet_label, _ = _STANDARD[kind]
    return sheet_label.text(lang), header_labels(cols, lang), (cells(r) for r in rows)


def _shown(value, kind: FieldType, lang: str):
    if value is None or value == "":
        return None
    if kind is FieldType.boolean:
        return ("是" if value else "否") if lang == "zh" else ("yes" if value else "no")
    if kind is FieldType.choices and isinstance(value, list):
        return "、".join(value)
    return value


# -- use cases ----------------------------------------------------------------------------------


def import_file(target: str, kind: str, path: str, *, sheet: Optional[str] = None, skip_bad: bool = False,
                actor: str = "import") -> Imported:
    """Import the roster at ``path`` into the store at ``target``: all of it, or with ``skip_bad``
    its good rows.

    Raises `ImportRefused` with every problem (cell and message) and writes
    nothing if the file has problems and bad rows may not be skipped, or if
    the file itself is wrong (an unknown or missing column); `UsageError` for
    a file that cannot be read.
    """
    from wangge.app import Office

    with Office.open(target) as office:
        return office.import_roster(kind, path, sheet=sheet, skip_bad=skip_bad, actor=actor)


def export_file(target: str, kind: str, out: str, *, lang: Optional[str] = None) -> int:
    """Write the store's ``kind`` to ``out`` (.xlsx or .csv) with the columns an import reads; return
    the number of rows. Raises `UsageError` if the file cannot be written."""
    from wangge.app import Office

    with Office.open(target) as office:
        ruleset = office.ruleset  # read before the transaction below: it takes a transaction of its own
        with office.store.read() as conn:
            name, header, rows = export_rows(conn, ruleset, kind, lang)
            return sheets.write_table(out, name, header, rows)
