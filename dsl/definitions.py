"""Definitions: every named thing of a rule file and its imports, indexed by code.

This is the one index reference resolution uses: each kind of definition
lives in a `Table` (a dict by code), so resolving a reference is one lookup
and the whole pipeline stays linear in the size of the files.

Merging follows three rules:

* a code defined twice in one file is an error;
* a code that also comes from a plain ``import`` is an error (two files
  disagree about it);
* a code that comes from the file named by ``extends`` is replaced in place
  (override by code). Containers merge their children by code: catalogue
  items, register fields, lifecycle states and transitions, points rules.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Optional

from wangge.dsl.diagnostics import Diagnostic, at

__all__ = ["Definitions", "Table", "build", "single"]

#: Singular kind names used in messages, by table attribute.
KINDS = {
    "roles": "role", "levels": "level", "departments": "department", "channels": "channel",
    "severities": "severity", "classes": "class", "items": "item", "escalations": "escalation",
    "formulas": "formula", "services": "service", "projects": "project", "meetings": "meeting",
    "registers": "register", "states": "state", "transitions": "transition",
    "earn": "earning rule", "rewards": "reward",
}


def single(value):
    """The value of an attribute assigned inside a textX repetition (a list): the last one."""
    if isinstance(value, list):
        return value[-1] if value else None
    return value


def where(obj) -> str:
    """``file:line:col`` of a textX object, for hints that point elsewhere."""
    d = at(obj, "")
    return f"{d.file}:{d.line}:{d.col}"


@dataclass
class Entry:
    obj: Any
    overridable: bool = False  # inherited from the ruleset named by `extends`
    local: bool = False  # defined in the file being built


class Table:
    """Definitions of one kind, by code, in definition order (overrides keep their place)."""

    def __init__(self, kind: str):
        self.kind = kind
        self.entries: dict[str, Entry] = {}

    def __contains__(self, code: str) -> bool:
        return code in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, code: str):
        entry = self.entries.get(code)
        return entry.obj if entry else None

    def codes(self) -> list[str]:
        return list(self.entries)

    def items(self) -> Iterator[tuple[str, Any]]:
        return ((code, e.obj) for code, e in self.entries.items())

    def values(self) -> list:
        return [e.obj for e in self.entries.values()]

    def inherit(self, other: "Table", overridable: bool, out: list[Diagnostic]) -> None:
        """Copy ``other``'s entries; a code two imports disagree on is reported at the second."""
        for code, entry in other.entries.items():
            mine = self.entries.get(code)
            if mine is None:
                self.entries[code] = Entry(entry.obj, overridable)
            elif mine.obj is not entry.obj:
                out.append(at(entry.obj, f"{self.kind} '{code}' is defined by two imports",
                              f"the other definition is at {where(mine.obj)}; remove one of them"))

    def define(self, code: str, obj, base: Optional[str], out: list[Diagnostic]) -> None:
        """Add a local definition, overriding an inherited one when that is allowed."""
        mine = self.entries.get(code)
        if mine is None:
            self.entries[code] = Entry(obj, local=True)
        elif mine.local:
            out.append(at(obj, f"duplicate {self.kind} code '{code}'",
                          f"'{code}' is already defined at {where(mine.obj)}; choose another code"))
        elif mine.overridable:
            self.entries[code] = Entry(obj, local=True)
        else:
            how = "to replace it, write `extends` with the ruleset that defines it" if base is None \
                else f"only definitions from '{base}' (the extended ruleset) can be overridden"
            out.append(at(obj, f"{self.kind} '{code}' is already defined at {where(mine.obj)}", how))


@dataclass
class Definitions:
    """The merged definitions of one rule file and everything it imports."""

    header: Any = None  # the `ruleset` statement of the file itself
    base: Optional[str] = None  # the code of the extended ruleset
    settings: list = field(default_factory=list)  # settings blocks, base first
    routes: list = field(default_factory=list)  # local routes first: they win on first match
    local_routes: list = field(default_factory=list)  # only while building
    lifecycles: list = field(default_factory=list)  # lifecycle blocks (for locations)
    extends_ref: Any = None
    imports: dict[str, "Definitions"] = field(default_factory=dict)  # by ruleset code
    tables: dict[str, Table] = field(default_factory=dict)
    item_class: dict[str, str] = field(default_factory=dict)  # full item code -> class code
    fields: dict[str, Table] = field(default_factory=dict)  # register entity -> its fields

    def __post_init__(self):
        for attr, kind in KINDS.items():
            self.tables.setdefault(attr, Table(kind))

    def __getattr__(self, name: str) -> Table:
        tables = self.__dict__.get("tables", {})
        if name in tables:
            return tables[name]
        raise AttributeError(name)

    @property
    def code(self) -> str:
        return self.header.code if self.header is not None else ""

    def register_fields(self, entity: str) -> Table:
        return self.fields.setdefault(entity, Table("field"))


def build(model, imported: list[tuple[Any, "Definitions"]]) -> tuple[Definitions, list[Diagnostic]]:
    """Merge the imported definitions and a parsed file into one `Definitions`.

    ``imported`` pairs each `import` statement with the definitions of the
    file it names. Returns the definitions and the problems found while
    merging (duplicates, a bad `extends`); never raises for user input.
    """
    out: list[Diagnostic] = []
    defs = Definitions(header=model.header)
    for _statement, other in imported:
        if other.code:
            defs.imports[other.code] = other
    if model.header is None:
        from wangge.dsl.diagnostics import Diagnostic, source_line

        text = model._tx_parser.input
        out.append(Diagnostic(model._tx_filename or "<string>", 1, 1,
                              "a rule file must start with `ruleset CODE`",
                              'add a first line such as: ruleset 泰达 "泰达社区" / "TEDA"',
                              source_line(text, 1)))
    base = _extended(model, defs, out)
    defs.extends_ref = model.extends.base if model.extends else None
    for _statement, other in imported:
        _inherit(defs, other, overridable=other.code == base and base is not None, out=out)
    defs.base = base
    for section in model.sections:
        _DEFINE[type(section).__name__](defs, section, base, out)
    # Routes are tried in order; the file's own routes come before inherited ones.
    defs.routes = defs.local_routes + defs.routes
    defs.local_routes = []
    return defs, out


def _extended(model, defs: Definitions, out: list[Diagnostic]) -> Optional[str]:
    if model.extends is None:
        return None
    ref = model.extends.base
    if ref.code not in defs.imports:
        out.append(at(ref, f"`extends {ref.code}` names a ruleset that is not imported",
                      _import_hint(ref.code, defs.imports)))
        return None
    return ref.code


def _import_hint(code: str, imports: dict) -> str:
    from wangge.dsl.diagnostics import did_you_mean

    hint = did_you_mean(code, imports, "") if imports else ""
    return hint if hint.startswith("did you mean") else f"add `import {code}` above it"


def _inherit(defs: Definitions, other: Definitions, overridable: bool, out: list[Diagnostic]) -> None:
    for attr, table in other.tables.items():
        defs.tables[attr].inherit(table, overridable, out)
    for entity, table in other.fields.items():
        defs.register_fields(entity).inherit(table, overridable, out)
    for code, cls in other.item_class.items():
        defs.item_class.setdefault(code, cls)
    defs.settings.extend(s for s in other.settings if s not in defs.settings)
    defs.routes.extend(r for r in other.routes if r not in defs.routes)
    defs.lifecycles.extend(c for c in other.lifecycles if c not in defs.lifecycles)


def _simple(attr: str):
    def define(defs: Definitions, obj, base, out):
        defs.tables[attr].define(obj.code, obj, base, out)
    return define


def _define_class(defs: Definitions, obj, base, out) -> None:
    defs.classes.define(obj.code, obj, base, out)
    for item in obj.items:
        full = obj.code + item.code
        defs.items.define(full, item, base, out)
        defs.item_class[full] = obj.code


def _define_lifecycle(defs: Definitions, obj, base, out) -> None:
    if obj.replace:
        # `lifecycle replace` drops the extended ruleset's states and moves, so
        # a district whose workflow differs does not inherit unreachable states.
        if base is None:
            out.append(at(obj, "`lifecycle replace` replaces the extended ruleset's lifecycle, but this file extends none",
                          "add `extends BASE` above it, or write `lifecycle {` to define one"))
        for table in (defs.states, defs.transitions):
            table.entries = {code: e for code, e in table.entries.items() if e.local or not e.overridable}
        defs.lifecycles = [c for c in defs.lifecycles if not c.replace and c in _local(defs)]
    defs.lifecycles.append(obj)
    for state in obj.states:
        defs.states.define(state.code, state, base, out)
    for transition in obj.transitions:
        defs.transitions.define(transition.code, transition, base, out)


def _local(defs: Definitions) -> list:
    """Lifecycle blocks whose states are still defined (the file's own, or kept bases)."""
    kept = {id(e.obj) for e in defs.states.entries.values()} | {id(e.obj) for e in defs.transitions.entries.values()}
    return [c for c in defs.lifecycles if any(id(x) in kept for x in (*c.states, *c.transitions))]


def _define_register(defs: Definitions, obj, base, out) -> None:
    # Register blocks for one entity merge field by field: a district adds
    # fields to the baseline's and overrides some by code.
    defs.registers.entries[obj.entity] = Entry(obj, local=True)
    fields = defs.register_fields(obj.entity)
    for spec in obj.fields:
        fields.define(spec.code, spec, base, out)


def _define_points(defs: Definitions, obj, base, out) -> None:
    for rule in obj.earn:
        defs.earn.define(rule.code, rule, base, out)
    for reward in obj.rewards:
        defs.rewards.define(reward.code, reward, base, out)


def _define_settings(defs: Definitions, obj, base, out) -> None:
    defs.settings.append(obj)


def _define_route(defs: Definitions, obj, base, out) -> None:
    defs.local_routes.append(obj)


_DEFINE = {
    "Settings": _define_settings,
    "Role": _simple("roles"),
    "Level": _simple("levels"),
    "Department": _simple("departments"),
    "Channel": _simple("channels"),
    "Severity": _simple("severities"),
    "CaseClass": _define_class,
    "Lifecycle": _define_lifecycle,
    "Route": _define_route,
    "Escalation": _simple("escalations"),
    "Register": _define_register,
    "Formula": _simple("formulas"),
    "Points": _define_points,
    "Service": _simple("services"),
    "Project": _simple("projects"),
    "Meeting": _simple("meetings"),
}
