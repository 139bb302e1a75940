"""Grid maps: boundaries drawn in GIS tools, imported and exported as GeoJSON, and the grid of a point.

An import checks the whole file before writing anything: each feature's
grid (code, level, parent, grade) against the rule file and the store, each
polygon's validity, siblings that overlap, and parents their children do not
tile (a gap) or overrun. Every problem names its feature (``feature 3
(TF.03)``); with any problem, nothing is written. Grids are added or updated
through change capture (they sync to tablets); their boundaries are kept on
the master (`wangge.core.boundaries`). PostGIS is not needed and not used.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from sqlalchemy import select
from sqlalchemy.engine import Connection

from wangge.core import geometry
from wangge.core.boundaries import GridBoundary
from wangge.core.capture import Recorder
from wangge.core.errors import ImportRefused, UsageError
from wangge.core.geometry import Feature
from wangge.core.models import GridCell
from wangge.core.ruleset import Ruleset

__all__ = ["Located", "check_map", "export_map", "import_map", "locate", "write_map"]

_grids, _bounds = GridCell.__table__, GridBoundary.__table__


@dataclass(frozen=True)
class Stored:
    """A grid of the store as the map checks see it."""

    id: str
    code: str
    level: str
    parent: Optional[str]
    shape: object  # None if it has no boundary


def _stored(conn: Connection) -> dict[str, Stored]:
    rows = conn.execute(select(_grids.c.id, _grids.c.code, _grids.c.level, _grids.c.upper_id)
                        .where(_grids.c.deleted.is_(None))).all()
    codes = {r.id: r.code for r in rows}
    shapes = {g: geometry.from_geojson(json.loads(text)) for g, text in conn.execute(
        select(_bounds.c.grid_id, _bounds.c.geojson))}
    return {r.code: Stored(r.id, r.code, r.level, codes.get(r.upper_id), shapes.get(r.id)) for r in rows}


def check_map(conn: Connection, ruleset: Ruleset, collection) -> tuple[list[Feature], list[tuple[str, str]]]:
    """The features of a GeoJSON map, parents first, and every problem with it (none: it may be written)."""
    features, problems = geometry.parse_features(collection)
    stored = _stored(conn)
    levels = {lv.code: lv for lv in ruleset.levels}
    in_file: dict[str, Feature] = {}
    for f in features:
        if f.code in in_file:
            problems.append((f.where, f"code {f.code} is also {in_file[f.code].where}: each grid appears once"))
            continue
        in_file[f.code] = f
        if f.level not in levels:
            problems.append((f.where, f"unknown level {f.level!r}: the rule file has {', '.join(levels)}"))
        elif f.grade is not None and f.grade not in [c.code for c in levels[f.level].classes]:
            grades = ", ".join(c.code for c in levels[f.level].classes) or "(none)"
            problems.append((f.where, f"unknown grade {f.grade!r} at level {f.level}: expected one of {grades}"))
    for f in in_file.values():
        problems += _parent_problems(f, in_file, stored, ruleset)
    problems += _overlaps(in_file, stored)
    problems += _coverage(in_file, stored)
    order = {lv.code: lv.rank for lv in ruleset.levels}
    ordered = sorted(in_file.values(), key=lambda f: (order.get(f.level, 99), f.index))
    return ordered, sorted(problems, key=_feature_order)


def _feature_order(problem: tuple[str, str]) -> tuple:
    where = problem[0]
    if where.startswith("feature "):
        return (1, int(where.split()[1]))
    return (0 if where == "file" else 2, 0)


def _parent_problems(f: Feature, in_file: dict, stored: dict, ruleset: Ruleset) -> list[tuple[str, str]]:
    if f.parent is None:
        return []
    parent = in_file.get(f.parent) or stored.get(f.parent)
    if parent is None:
        return [(f.where, f"unknown parent {f.parent!r}: it is neither in this file nor in the store; add the parent "
                          f"as a feature or with `wangge grid add`")]
    if f.parent == f.code:
        return [(f.where, "it names itself as its parent")]
    ranks = ruleset.level_rank
    if f.level in ranks and parent.level in ranks and ranks[parent.level] >= ranks[f.level]:
        return [(f.where, f"its parent {f.parent} is at level {parent.level}, not above its own level {f.level}")]
    return []


def _siblings(in_file: dict[str, Feature], stored: dict[str, Stored]) -> list[Feature]:
    """The file's features, and the stored grids with a boundary that the file does not redraw."""
    kept = [Feature(-1, s.code, s.level, s.parent, s.code, None, s.shape)
            for s in stored.values() if s.shape is not None and s.code not in in_file]
    return list(in_file.values()) + kept


def _named(f: Feature) -> str:
    return f.where if f.index >= 0 else f"grid {f.code} (in the store)"


def _overlaps(in_file: dict, stored: dict) -> list[tuple[str, str]]:
    problems = []
    for one, other, area in geometry.sibling_overlaps(_siblings(in_file, stored)):
        if one.index < 0 and other.index < 0:
            continue  # both already stored: not this file's doing
        first, second = (one, other) if one.index >= 0 else (other, one)
        problems.append((first.where, f"it overlaps {_named(second)} by {area:,.0f} m²: grids under one parent "
                                      f"must not overlap; redraw the shared edge"))
    return problems


def _coverage(in_file: dict[str, Feature], stored: dict[str, Stored]) -> list[tuple[str, str]]:
    """Parents whose children (from the file, or stored and not redrawn) leave a gap or overrun them."""
    everything = _siblings(in_file, stored)
    children: dict[str, list[Feature]] = {}
    for f in everything:
        if f.parent is not None and f.geometry is not None:
            children.setdefault(f.parent, []).append(f)
    problems = []
    for code, kids in children.items():
        if not any(k.index >= 0 for k in kids):
            continue  # nothing under this parent changes
        parent = in_file.get(code)
        shape = parent.geometry if parent is not None else (stored[code].shape if code in stored else None)
        if shape is None:
            continue
        gap, _, point = geometry.coverage_problems(shape, [k.geometry for k in kids])
        where = parent.where if parent is not None else f"grid {code} (in the store)"
        if gap > geometry.TOLERANCE_M2:
            problems.append((where, f"a gap: {gap:,.0f} m² inside it lies in none of its grids "
                                    f"({', '.join(sorted(k.code for k in kids))}), e.g. around {list(point)}"))
        for kid in kids:
            outside = geometry.square_metres(kid.geometry.difference(shape), shape.centroid.y)
            if kid.index >= 0 and outside > geometry.TOLERANCE_M2:
                problems.append((kid.where, f"it extends {outside:,.0f} m² outside its parent {code}"))
    return problems


def write_map(rec: Recorder, features: list[Feature]) -> tuple[int, int]:
    """Add or update each feature's grid (parents first) and store its boundary; return (added, updated)."""
    ids = {code: i for code, i in rec.conn.execute(select(_grids.c.code, _grids.c.id).where(_grids.c.deleted.is_(None)))}
    current = {r.code: r for r in rec.conn.execute(select(_grids).where(_grids.c.deleted.is_(None)))}
    added = updated = 0
    now = datetime.now(timezone.utc)
    for f in features:
        values = {"level": f.level, "name": f.name, "grade": f.grade, "upper_id": ids.get(f.parent) if f.parent else None}
        row = current.get(f.code)
        if row is None:
            ids[f.code] = rec.insert("grid_cell", {"code": f.code, **values})
            added += 1
        else:
            changed = {k: v for k, v in values.items() if getattr(row, k) != v}
            if changed:
                rec.update("grid_cell", row.id, changed)
            updated += 1
        minx, miny, maxx, maxy = f.geometry.bounds
        rec.conn.execute(_bounds.delete().where(_bounds.c.grid_id == ids[f.code]))
        rec.conn.execute(_bounds.insert().values(grid_id=ids[f.code], geojson=json.dumps(geometry.to_geojson(f.geometry)),
                                                 min_x=minx, min_y=miny, max_x=maxx, max_y=maxy, updated_at=now))
    return added, updated


def read_geojson(path: str) -> object:
    """The parsed content of a GeoJSON file; raises `ImportRefused` naming the line of a syntax error."""
    file = Path(path)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror}") from None
    try:
        return json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise UsageError(f"{file} is not UTF-8 text: GeoJSON files are UTF-8") from None
    except json.JSONDecodeError as exc:
        raise ImportRefused(f"grid map {file.name}", [(f"line {exc.lineno} column {exc.colno}",
                                                       f"not valid JSON: {exc.msg}")]) from None


def import_map(target: str, path: str, *, actor: str = "office") -> str:
    """Check the GeoJSON map at ``path`` against the store at ``target`` and write it if it is sound.

    Raises `ImportRefused` with every problem, each naming its feature, and
    writes nothing if there is any.
    """
    from wangge.app import Office

    collection = read_geojson(path)
    with Office.open(target) as office:
        ruleset = office.ruleset
        with office.store.write(actor=actor) as rec:
            features, problems = check_map(rec.conn, ruleset, collection)
            if problems:
                raise ImportRefused(f"grid map {Path(path).name}", problems)
            added, updated = write_map(rec, features)
    return f"grid map {Path(path).name}: {len(features)} grids, {added} added, {updated} updated with their boundaries"


def export_map(target: str, out: str) -> int:
    """Write every grid that has a boundary to ``out`` as a GeoJSON FeatureCollection; return how many."""
    from wangge.app import Office
    from wangge.app.sheets import write_atomic_text

    with Office.open(target) as office, office.store.read() as conn:
        rows = conn.execute(select(_grids, _bounds.c.geojson).join(_bounds, _bounds.c.grid_id == _grids.c.id)
                            .where(_grids.c.deleted.is_(None)).order_by(_grids.c.code)).all()
        codes = dict(conn.execute(select(_grids.c.id, _grids.c.code)).all())
    features = [{"type": "Feature",
                 "properties": {"code": r.code, "level": r.level, "parent": codes.get(r.upper_id), "name": r.name,
                                **({"grade": r.grade} if r.grade else {})},
                 "geometry": json.loads(r.geojson)} for r in rows]
    write_atomic_text(out, json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False, indent=1))
    return len(features)


@dataclass(frozen=True)
class Located:
    grid_id: str
    code: str
    level: str


def locate(conn: Connection, longitude: float, latitude: float) -> Optional[Located]:
    """The deepest grid whose boundary holds the point (lon, lat in degrees), or None if none does."""
    rows = conn.execute(
        select(_grids.c.id, _grids.c.code, _grids.c.level, _bounds.c.geojson)
        .join(_bounds, _bounds.c.grid_id == _grids.c.id)
        .where(_grids.c.deleted.is_(None), _bounds.c.min_x <= longitude, _bounds.c.max_x >= longitude,
               _bounds.c.min_y <= latitude, _bounds.c.max_y >= latitude)).all()
    if not rows:
        return None
    ranks = _ranks(conn)
    found = geometry.deepest_containing(
        (longitude, latitude),
        ((r, ranks.get(r.level, 0), geometry.from_geojson(json.loads(r.geojson))) for r in rows))
    return Located(found.id, found.code, found.level) if found is not None else None


def _ranks(conn: Connection) -> dict[str, int]:
    from wangge.core import casework
    from wangge.core.errors import WanggeError

    try:
        return casework.installed_ruleset(conn).level_rank
    except WanggeError:
        return {}


def report_at(office, *, point: tuple[float, float], by: str, item: str, channel: str, **more):
    """Report a case at a GPS ``point`` (longitude, latitude) given without its grid: it is placed in
    the deepest grid whose boundary holds the point, then reported as `Office.report_case` does.

    Raises `UsageError` if no grid's boundary holds the point (nothing is written then), and
    whatever `report_case` raises.
    """
    with office.store.read() as conn:
        found = locate(conn, *point)
    if found is None:
        raise UsageError(f"the position {point[0]}, {point[1]} (longitude, latitude) lies in no mapped grid: give "
                         f"the grid, or import its boundary with `wangge grid import`")
    return office.report_case(by=by, item=item, grid=found.grid_id, channel=channel, **more)
