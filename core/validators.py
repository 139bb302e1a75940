"""Validators generated from a compiled `Ruleset`: case reports, household records, visit logs.

The same validators run on the tablet before saving and on the master before
merging. Each is a pydantic model built from the ruleset's register fields
(plus the fields every record of that kind has); pydantic gathers every
failure, and `RecordValidator.validate` raises one `ValidationFailed` naming
each field, what was expected and what came, in the rule file's language.
"""
from __future__ import annotations

import functools
import re
from datetime import date, datetime
from typing import Any, Annotated, Callable, Optional

from pydantic import BeforeValidator, ConfigDict, ValidationError, create_model
from pydantic_core import PydanticCustomError
from sqlalchemy import JSON, Boolean, DateTime, Integer, String, TypeDecorator

from wangge.core.errors import ValidationFailed
from wangge.core.models import ENTITIES
from wangge.core.ruleset import FieldSpec, FieldType, Label, Ruleset

__all__ = ["RecordValidator", "column_problems", "field_problems", "validators"]

_TEXT = {
    "zh": {"expected": "{field}:应为{want},实际为 {got}", "missing": "必填", "unknown": "未定义的字段",
           "integer": "整数", "decimal": "数字", "boolean": "是/否", "date": "日期(YYYY-MM-DD)",
           "text": "文本", "one of": "以下之一:{values}", "some of": "以下若干:{values}",
           "phone": "11位手机号或带区号的电话", "id_number": "18位身份证号", "at least": "不小于 {n}",
           "at most": "不大于 {n}", "pattern": "匹配 {p}", "item": "事项目录中的编码",
           "channel": "该事项允许的渠道:{values}", "photo": "至少一张照片", "minutes": "正整数分钟"},
    "en": {"expected": "{field}: expected {want}, got {got}", "missing": "a value", "unknown": "no such field",
           "integer": "a whole number", "decimal": "a number", "boolean": "yes/no", "date": "a date (YYYY-MM-DD)",
           "text": "text", "one of": "one of: {values}", "some of": "some of: {values}",
           "phone": "an 11-digit mobile or a landline with area code", "id_number": "an 18-character ID number",
           "at least": "at least {n}", "at most": "at most {n}", "pattern": "text matching {p}",
           "item": "a code from the case catalogue", "channel": "a channel allowed for the item: {values}",
           "photo": "at least one photo", "minutes": "a positive number of minutes"},
}
_PHONE = re.compile(r"^(1\d{10}|0\d{2,3}-?\d{7,8})$")
_ID = re.compile(r"^\d{17}[\dXx]$")


class _Fail(Exception):
    """What a field wanted, raised by a check and turned into a message."""

    def __init__(self, want: str):
        self.want = want


def _field_name(code: str, label: Label, lang: str) -> str:
    shown = label.text(lang)
    return f"{shown}({code})" if lang == "zh" and shown and shown != code else \
        f"{shown} ({code})" if shown and shown != code else code


def _as_number(value, integer: bool, words: dict):
    if isinstance(value, bool):
        raise _Fail(words["integer" if integer else "decimal"])
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer past a float's range
        raise _Fail(words["integer" if integer else "decimal"]) from None
    if integer and not number.is_integer():
        raise _Fail(words["integer"])
    return int(number) if integer else number


def _check_for(spec: FieldSpec, words: dict) -> Callable[[Any], Any]:
    """The function that checks and normalises one value of ``spec``."""

    def check(value):
        if spec.type in (FieldType.integer, FieldType.decimal):
            value = _as_number(value, spec.type is FieldType.integer, words)
            if spec.min is not None and value < spec.min:
                raise _Fail(words["at least"].format(n=f"{spec.min:g}"))
            if spec.max is not None and value > spec.max:
                raise _Fail(words["at most"].format(n=f"{spec.max:g}"))
        elif spec.type is FieldType.boolean:
            if not isinstance(value, bool):
                raise _Fail(words["boolean"])
        elif spec.type is FieldType.date:
            try:
                value = value if isinstance(value, date) else date.fromisoformat(str(value))
            except ValueError:
                raise _Fail(words["date"]) from None
        elif spec.type is FieldType.choice:
            if value not in spec.choices:
                raise _Fail(words["one of"].format(values=", ".join(spec.choices)))
        elif spec.type is FieldType.choices:
            if not isinstance(value, (list, tuple)) or any(v not in spec.choices for v in value):
                raise _Fail(words["some of"].format(values=", ".join(spec.choices)))
            value = list(value)
        else:
            value = _check_text(spec, value, words)
        return value

    return check


def _check_text(spec: FieldSpec, value, words: dict) -> str:
    if not isinstance(value, str):
        raise _Fail(words["text"])
    if spec.type is FieldType.phone and not _PHONE.match(value):
        raise _Fail(words["phone"])
    if spec.type is FieldType.id_number and not _ID.match(value):
        raise _Fail(words["id_number"])
    if spec.pattern and not re.search(spec.pattern, value):
        raise _Fail(words["pattern"].format(p=spec.pattern))
    return value


def _wrap(name: str, check: Callable, words: dict) -> BeforeValidator:
    def run(value):
        if value is None:
            return None
        try:
            return check(value)
        except _Fail as fail:
            message = words["expected"].format(field=name, want=fail.want, got=repr(value))
            raise PydanticCustomError("wangge", "{message}", {"message": message}) from None

    return BeforeValidator(run)


class RecordValidator:
    """Validates one kind of record (``case``, ``household``, ``visit``) against a ruleset."""

    def __init__(self, ruleset: Ruleset, entity: str, specs: tuple[FieldSpec, ...], lang: str,
                 record_check: Optional[Callable[[dict], list[str]]] = None,
                 passthrough: tuple[str, ...] = ()):
        self.entity, self.lang, self.words = entity, lang, _TEXT[lang]
        self.names = {s.code: _field_name(s.code, s.label, lang) for s in specs}
        fields = {}
        for spec in specs:
            annotated = Annotated[Any, _wrap(self.names[spec.code], _check_for(spec, self.words), self.words)]
            fields[spec.code] = (annotated, ... if spec.required else None)
        self.model = create_model(f"{entity.title()}Record", __config__=ConfigDict(extra="forbid"), **fields)
        self.record_check = record_check
        self.passthrough = passthrough  # kept as given; checked by record_check (e.g. photos)

    def validate(self, data: dict) -> dict:
        """The record, normalised. Raises `ValidationFailed` with ``.problems``, one line per field."""
        problems: list[str] = []
        fields = {k: v for k, v in data.items() if k not in self.passthrough}
        try:
            record = self.model.model_validate(fields).model_dump(exclude_none=True)
        except ValidationError as error:
            problems = [self._message(e) for e in error.errors()]
            record = {}
        if self.record_check is not None:
            problems += self.record_check(data)
        if problems:
            failed = ValidationFailed(f"{self.entity}: " + "; ".join(problems))
            failed.problems = problems
            raise failed
        return record | {k: data[k] for k in self.passthrough if k in data}

    def _message(self, error: dict) -> str:
        code = str(error["loc"][0]) if error["loc"] else ""
        name = self.names.get(code, code)
        if error["type"] == "missing":
            return self.words["expected"].format(field=name, want=self.words["missing"], got="None")
        if error["type"] == "extra_forbidden":
            return f"{code}: {self.words['unknown']}"
        return error["msg"]


def _standard(ruleset: Ruleset, entity: str) -> tuple[FieldSpec, ...]:
    """Fields every record of ``entity`` has, whatever the district adds."""
    if entity == "case":
        return (FieldSpec(code="item", label=Label(zh="事项", en="Item"), type=FieldType.choice,
                          required=True, choices=tuple(ruleset.items)),
                FieldSpec(code="channel", label=Label(zh="渠道", en="Channel"), type=FieldType.text),
                FieldSpec(code="description", label=Label(zh="描述", en="Description"), type=FieldType.text),
                FieldSpec(code="photos", label=Label(zh="照片", en="Photos"), type=FieldType.text))
    if entity == "visit":
        return (FieldSpec(code="household", label=Label(zh="住户", en="Household"), type=FieldType.text,
                          required=True),
                FieldSpec(code="minutes", label=Label(zh="时长(分钟)", en="Minutes"), type=FieldType.integer,
                          min=1))
    return ()


def _case_check(ruleset: Ruleset, lang: str) -> Callable[[dict], list[str]]:
    words = _TEXT[lang]

    def check(data: dict) -> list[str]:
        item = ruleset.items.get(data.get("item"))
        if item is None:
            return []
        found = []
        channel = data.get("channel")
        if channel is not None and item.channels and channel not in item.channels:
            want = words["channel"].format(values=", ".join(item.channels))
            found.append(words["expected"].format(field=_field_name("channel", Label(zh="渠道", en="Channel"),
                                                                   lang), want=want, got=repr(channel)))
        if "photo" in item.evidence_for(channel, data.get("severity") or item.severity) and not data.get("photos"):
            found.append(words["expected"].format(field=_field_name("photos", Label(zh="照片", en="Photos"), lang),
                                                  want=words["photo"], got=repr(data.get("photos"))))
        return found

    return check


def _photos_spec(specs):
    # Photos are a list of references, not text: check the list in the record check instead.
    return tuple(s for s in specs if s.code != "photos")


def validators(ruleset: Ruleset, lang: Optional[str] = None) -> dict[str, RecordValidator]:
    """Validators for ``case``, ``household`` and ``visit`` records of ``ruleset``.

    ``lang`` defaults to the rule file's label language: Chinese if its labels
    have Chinese text, else English.
    """
    lang = lang or ("zh" if ruleset.label.zh or not ruleset.label.en else "en")
    result = {}
    for entity in ("case", "household", "visit"):
        specs = _photos_spec(_standard(ruleset, entity)) + ruleset.register(entity)
        if entity == "case":
            result[entity] = RecordValidator(ruleset, entity, specs, lang, _case_check(ruleset, lang),
                                             passthrough=("photos",))
        else:
            result[entity] = RecordValidator(ruleset, entity, specs, lang)
    return result


def field_problems(ruleset: Ruleset, entity: str, values: dict, *, new: bool,
                   lang: Optional[str] = None) -> list[str]:
    """What is wrong with the district's own fields of ``entity`` among ``values``, one line each.

    For records as they are stored and synced (flat fields, typed columns
    among them), not as a form submits them: every field the rule file
    defines that ``values`` carries is checked, and a ``new`` record must
    carry each required one. Other names are the store's business. An edit
    is checked on the fields it sets only: a field changed elsewhere meanwhile
    is not its problem.
    """
    specs = ruleset.register(entity)
    if not specs:
        return []
    lang = lang or ("zh" if ruleset.label.zh or not ruleset.label.en else "en")
    words = _TEXT[lang]
    problems = []
    for spec in specs:
        name = _field_name(spec.code, spec.label, lang)
        value = values.get(spec.code)
        if value is not None:
            try:
                _check_for(spec, words)(value)
            except _Fail as fail:
                problems.append(words["expected"].format(field=name, want=fail.want, got=repr(value)))
        elif spec.required and (new or spec.code in values):  # missing, or cleared by an edit
            problems.append(words["expected"].format(field=name, want=words["missing"], got="None"))
    return problems


#: The largest and smallest integers a signed 64-bit column (SQLite INTEGER, PostgreSQL BIGINT) holds.
MAX_INT, MIN_INT = 2**63 - 1, -(2**63)


def column_problems(entity: str, values: dict, *, new: bool) -> list[str]:
    """What is wrong with the values ``values`` gives the typed columns of ``entity``, one line each.

    Each column takes what the model declares, on every database alike (SQLite would keep
    ``"3"`` in an integer column, PostgreSQL refuses it deep in a transaction): text, a whole
    number that fits 64 bits, true/false, an ISO 8601 date-time, and null only where the column
    allows it; a ``new`` row must give each column that has no default. The JSON ``fields``
    column is never given as such: district fields travel flat beside the columns. Names that
    are no column are not looked at (the district's fields).
    """
    kinds = _column_kinds(entity)
    problems = [f"{entity}.{name}: expected a value, got none (it has no default)"
                for name in _required(entity) if name not in values] if new else []
    for name, value in values.items():
        kind = kinds.get(name)
        if kind is None:
            continue
        want, nullable = kind
        if want == "json":
            problems.append(f"{entity}.{name}: district fields travel flat beside the columns, never as one "
                            f"value named {name}")
        elif value is None:
            if not nullable:
                problems.append(f"{entity}.{name}: expected {_WANTS[want]}, got null (it may not be empty)")
        elif not _CHECKS[want](value):
            problems.append(f"{entity}.{name}: expected {_WANTS[want]}, got {_shown(value)}")
    return problems


@functools.cache
def _required(entity: str) -> tuple[str, ...]:
    return tuple(name for name, spec in ENTITIES[entity].model_fields.items() if spec.is_required() and name != "id")


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_moment(value) -> bool:
    if type(value) is not str:
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


_WANTS = {"text": "text", "integer": f"a whole number in {MIN_INT}..{MAX_INT}", "boolean": "true or false",
          "moment": "an ISO 8601 date-time"}
_CHECKS = {
    "text": lambda value: type(value) is str,  # a NUL in it is refused with the op (`wangge.sync.log.ops`)
    "integer": lambda value: type(value) is int and MIN_INT <= value <= MAX_INT,
    "boolean": lambda value: type(value) is bool,
    "moment": _is_moment,
}


_KINDS = ((JSON, "json"), (Boolean, "boolean"), (DateTime, "moment"), (Integer, "integer"), (String, "text"))


@functools.cache
def _column_kinds(entity: str) -> dict[str, tuple[str, bool]]:
    """Per column of ``entity`` but the replication ones: (kind of value, whether null is allowed)."""
    kinds = {}
    for column in ENTITIES[entity].__table__.columns:
        if column.name in ("hlc", "origin", "stamps", "deleted"):
            continue
        declared = column.type.impl_instance if isinstance(column.type, TypeDecorator) else column.type
        kind = next((kind for sqltype, kind in _KINDS if isinstance(declared, sqltype)), None)
        if kind is None:  # pragma: no cover - a new column type needs its check here
            raise TypeError(f"{entity}.{column.name}: no check for {column.type!r}")
        kinds[column.name] = (kind, bool(column.nullable))
    return kinds


def ruleset_lang(ruleset: Ruleset) -> str:
    """The rule file's label language: Chinese if its labels have Chinese text, else English."""
    return "zh" if ruleset.label.zh or not ruleset.label.en else "en"


def field_checks(specs: tuple[FieldSpec, ...], lang: str) -> dict[str, Callable[[Any], Any]]:
    """Per field code of ``specs``, a function checking one value the way the validators do.

    Each returns the value normalised (a date as a `date`, a number as int or
    float) or raises `ValidationFailed` whose message names the field, what
    was expected and what came. For callers that locate each problem
    themselves, such as an import naming the spreadsheet cell; a missing
    required value is the caller's to report (`missing_message`).
    """
    words = _TEXT[lang]
    result = {}
    for spec in specs:
        result[spec.code] = _located(_field_name(spec.code, spec.label, lang), _check_for(spec, words), words)
    return result


def _located(name: str, check: Callable[[Any], Any], words: dict) -> Callable[[Any], Any]:
    def run(value):
        try:
            return check(value)
        except _Fail as fail:
            raise ValidationFailed(words["expected"].format(field=name, want=fail.want, got=repr(value))) from None

    return run


def missing_message(spec: FieldSpec, lang: str) -> str:
    """The validators' message for a required field with no value."""
    words = _TEXT[lang]
    return words["expected"].format(field=_field_name(spec.code, spec.label, lang), want=words["missing"], got="None")
