"""A readable summary of a compiled ruleset: the text of `wangge rules show`."""
from __future__ import annotations

from wangge.core.ruleset import Ruleset
from wangge.dsl.units import text as duration_text

__all__ = ["summary"]


def summary(ruleset: Ruleset, lang: str = "zh") -> str:
    """Levels, catalogue size, lifecycle, escalation and scoring of ``ruleset``, one block each."""
    blocks = [
        _header(ruleset, lang), _levels(ruleset, lang), _catalogue(ruleset, lang),
        _lifecycle(ruleset, lang), _escalation(ruleset, lang), _scoring(ruleset, lang),
        _other(ruleset),
    ]
    return "\n\n".join(b for b in blocks if b)


def _name(code: str, label, lang: str) -> str:
    shown = label.text(lang)
    return f"{code} ({shown})" if shown and shown != code else code


def _header(r: Ruleset, lang: str) -> str:
    base = f", extends {r.base}" if r.base else ""
    return f"ruleset {_name(r.name, r.label, lang)}{base}\nversion {r.version[:16]}"


def _levels(r: Ruleset, lang: str) -> str:
    if not r.levels:
        return ""
    lines = ["levels:"]
    for level in r.levels:
        sizing = level.sizing
        facts = [f"{sizing.households_per_grid} households/grid" if sizing.households_per_grid else "",
                 f"merge below {sizing.merge_below}" if sizing.merge_below else "",
                 "buildings %d-%d" % sizing.buildings_per_grid if sizing.buildings_per_grid else "",
                 f"classes {', '.join(c.code for c in level.classes)}" if level.classes else ""]
        extra = "; ".join(f for f in facts if f)
        lines.append(f"  {level.rank}. {_name(level.code, level.label, lang)}" + (f": {extra}" if extra else ""))
    return "\n".join(lines)


def _catalogue(r: Ruleset, lang: str) -> str:
    if not r.catalogue:
        return ""
    lines = [f"catalogue: {len(r.catalogue)} classes, {len(r.items)} items"]
    for cls in r.catalogue:
        lines.append(f"  {_name(cls.code, cls.label, lang)} [{cls.kind}]: {len(cls.items)} items")
    return "\n".join(lines)


def _lifecycle(r: Ruleset, lang: str) -> str:
    if r.lifecycle is None:
        return ""
    states = " → ".join(s.code + ("*" if s.final else "") for s in r.lifecycle.states)
    lines = [f"lifecycle: {states}   (* final)"]
    for t in r.lifecycle.transitions:
        needs = f" requires {', '.join(t.requires)}" if t.requires else ""
        office = " (office)" if t.office else ""
        lines.append(f"  {t.code}: {', '.join(t.sources)} -> {t.target} by {', '.join(t.roles)}{office}{needs}")
    return "\n".join(lines)


def _escalation(r: Ruleset, lang: str) -> str:
    if not r.escalations:
        return ""
    lines = ["escalation:"]
    for path in r.escalations:
        steps = " → ".join(f"{s.level} ({duration_text(s.within)})" if s.within else s.level for s in path.steps)
        ceiling = f", ceiling {path.ceiling}" if path.ceiling else ""
        then = f", then {path.next}" if path.next else ""
        lines.append(f"  {_name(path.code, path.label, lang)}: {steps}{ceiling}{then}")
    return "\n".join(lines)


def _scoring(r: Ruleset, lang: str) -> str:
    if not r.formulas:
        return ""
    lines = ["scoring:"]
    for f in r.formulas:
        who = " ".join(x for x in (f.subject, f.role or "", f.level or "", f.grade or "") if x)
        weights = ", ".join(f"{i.code} {i.weight:g}" for i in f.indicators)
        tiers = ", ".join(t.code for t in f.tiers)
        lines.append(f"  {_name(f.code, f.label, lang)} per {f.period} for {who}: {weights} / {f.total:g}"
                     + (f"; tiers {tiers}" if tiers else "")
                     + (f"; {len(f.vetoes)} veto rules" if f.vetoes else ""))
    return "\n".join(lines)


def _other(r: Ruleset) -> str:
    counts = [("roles", len(r.roles)), ("channels", len(r.channels)), ("routes", len(r.routes)),
              ("register fields", sum(len(g.fields) for g in r.registers)),
              ("earning rules", len(r.points.earn)), ("rewards", len(r.points.rewards)),
              ("services", len(r.services)), ("projects", len(r.projects)), ("meetings", len(r.meetings))]
    return "also: " + ", ".join(f"{n} {what}" for what, n in counts if n) if any(n for _, n in counts) else ""
