"""Forms made from the rule file, as ODK's are made from an XLSForm.

The ruleset's registers (household, resident, visit, case), its catalogue and
its evidence rules decide which fields a page shows, their widgets, which are
required or critical, their choices and ranges. A district changes its
screens by changing its rule file, never this module.

Pure: no store, no HTTP. `form_for` describes a form; `read_form` turns what
a browser submitted (every value a string) into typed values and per-field
messages; `place_problems` puts the ruleset validators' messages
(`wangge.core.validators`) beside the fields they name.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional

from wangge.core.ruleset import FieldSpec, FieldType, Label, Ruleset

#: A register longer than this is split into sections, so a 77-item household card
#: is filled a screenful at a time instead of as one endless page.
SECTION_AFTER = 20
SECTION_SIZE = 12

_WIDGETS = {
    FieldType.text: "text", FieldType.integer: "number", FieldType.decimal: "number",
    FieldType.boolean: "yesno", FieldType.date: "date", FieldType.choice: "select",
    FieldType.choices: "checks", FieldType.phone: "tel", FieldType.id_number: "idnumber",
}

_WORDS = {
    "zh": {"integer": "请填整数", "decimal": "请填数字", "boolean": "请选“是”或“否”", "date": "请填日期(年-月-日)",
           "choice": "请从选项中选择", "section": "第 {n} 部分", "required": "必填"},
    "en": {"integer": "enter a whole number", "decimal": "enter a number", "boolean": "choose yes or no",
           "date": "enter a date (YYYY-MM-DD)", "choice": "choose one of the options", "section": "Part {n}",
           "required": "required"},
}


@dataclass(frozen=True)
class FormField:
    """One input of a form: what the template draws and what `read_form` parses."""

    code: str
    label: Label
    type: FieldType
    widget: str
    required: bool = False
    critical: bool = False
    choices: tuple[str, ...] = ()
    min: Optional[float] = None
    max: Optional[float] = None
    pattern: Optional[str] = None

    @property
    def step(self) -> str:
        return "1" if self.type is FieldType.integer else "any"

    @classmethod
    def of(cls, spec: FieldSpec) -> "FormField":
        return cls(spec.code, spec.label, spec.type, _WIDGETS[spec.type], spec.required, spec.critical,
                   spec.choices, spec.min, spec.max, spec.pattern)


@dataclass(frozen=True)
class Section:
    title: Label
    fields: tuple[FormField, ...]


@dataclass(frozen=True)
class Form:
    """A register as a form: its fields in rule-file order, grouped into sections when long."""

    entity: str
    sections: tuple[Section, ...]

    @property
    def fields(self) -> tuple[FormField, ...]:
        return tuple(f for s in self.sections for f in s.fields)

    @property
    def required(self) -> int:
        return sum(f.required for f in self.fields)


def form_for(ruleset: Ruleset, entity: str) -> Form:
    """The form of the rule file's register for ``entity`` (an empty form if it defines none)."""
    fields = tuple(FormField.of(spec) for spec in ruleset.register(entity))
    if len(fields) <= SECTION_AFTER:
        return Form(entity, (Section(Label(), fields),) if fields else ())
    sections = []
    for n, start in enumerate(range(0, len(fields), SECTION_SIZE), 1):
        chunk = fields[start:start + SECTION_SIZE]
        first, last = chunk[0].label, chunk[-1].label
        title = Label(zh=f"{_WORDS['zh']['section'].format(n=n)}:{first.text('zh')}…{last.text('zh')}",
                      en=f"{_WORDS['en']['section'].format(n=n)}: {first.text('en')}…{last.text('en')}")
        sections.append(Section(title, chunk))
    return Form(entity, tuple(sections))


@dataclass
class Reading:
    """What `read_form` made of a submission: typed values, and a message per field it could not read."""

    values: dict = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    #: What the browser sent, per field, to fill the form again when it comes back with a message.
    raw: dict = field(default_factory=dict)


def required_word(lang: str) -> str:
    """The word shown beside a required field left empty."""
    return _WORDS.get(lang, _WORDS["zh"])["required"]


def read_form(form: Form, submitted, lang: str = "zh") -> Reading:
    """Typed values of ``form``'s fields from ``submitted`` (a multi-dict of strings, e.g. Starlette's form).

    An empty input means "not filled" and is left out of ``values``; ``None``
    is kept only for a field that had a value and was cleared (``previous``
    is the caller's business). Range, choice and required checks are the
    ruleset validators' (`place_problems`); this only reads.
    """
    words = _WORDS.get(lang, _WORDS["zh"])
    reading = Reading()
    for f in form.fields:
        if f.widget == "checks":
            picked = [v for v in _getlist(submitted, f.code) if v]
            reading.raw[f.code] = picked
            if picked:
                reading.values[f.code] = picked
            continue
        text = str(submitted.get(f.code) or "").strip()
        reading.raw[f.code] = text
        if not text:
            continue
        try:
            reading.values[f.code] = _typed(f, text)
        except ValueError:
            reading.errors[f.code] = words[_KIND.get(f.type, "choice")]
    return reading


_KIND = {FieldType.integer: "integer", FieldType.decimal: "decimal", FieldType.boolean: "boolean",
         FieldType.date: "date"}


def _typed(f: FormField, text: str):
    if f.type is FieldType.integer:
        number = float(text)
        if not number.is_integer():
            raise ValueError(text)
        return int(number)
    if f.type is FieldType.decimal:
        number = float(text)
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueError(text)
        return number
    if f.type is FieldType.boolean:
        if text not in ("yes", "no"):
            raise ValueError(text)
        return text == "yes"
    if f.type is FieldType.date:
        from datetime import date

        return date.fromisoformat(text).isoformat()
    return text


def _getlist(submitted, name: str) -> list[str]:
    getter = getattr(submitted, "getlist", None)
    if getter is not None:
        return [str(v) for v in getter(name)]
    value = submitted.get(name)
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else ([str(value)] if value else [])


def shown(f: FormField, value) -> object:
    """A stored value as its input shows it (booleans as yes/no, lists as lists)."""
    if value is None:
        return [] if f.widget == "checks" else ""
    if f.type is FieldType.boolean:
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value if f.widget == "checks" else str(value)


#: A validator's "got" for a value that was not given says nothing beside an empty field.
_NOTHING_GOT = re.compile(r"(,实际为|, got) (None|\[\]|''|\(\))$")


def place_problems(problems: Iterable[str], names: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """Each validator message beside the field it names, and the ones naming no field.

    ``names`` maps field codes to the name a validator's message starts with
    (`RecordValidator.names`). A message names its field first ("面积(建筑面积):应为…");
    beside the field that name is dropped, and so is "got None" for a field left empty.
    """
    by_name = sorted(((name, code) for code, name in names.items()), key=lambda p: -len(p[0]))
    placed: dict[str, str] = {}
    loose = []
    for problem in problems:
        for name, code in by_name:
            if problem.startswith((name + ":", name + "\uff1a")):
                placed.setdefault(code, _NOTHING_GOT.sub("", problem[len(name) + 1:].strip()))
                break
        else:
            code = problem.replace("\uff1a", ":").split(":", 1)[0].strip()
            if code in names:
                placed.setdefault(code, problem)
            else:
                loose.append(problem)
    return placed, loose
