"""Grid boundaries as geometry: checking a map of grids, and finding the grid of a point.

Pure functions over data (GeoJSON mappings in, problems and shapes out); the
store is the caller's (`wangge.app.gridmap`). Coordinates are longitude and
latitude in degrees as GIS tools export GeoJSON. Areas are reported in
square metres by a local flat approximation (exact enough to say how big an
overlap or a gap is), and slivers under `TOLERANCE_M2` are taken as the
rounding of a drawing tool, not as mistakes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional

import shapely
from shapely.geometry import MultiPolygon, Polygon, mapping, shape
from shapely.strtree import STRtree
from shapely.validation import explain_validity

#: Overlaps and gaps smaller than this (m²) are drawing noise.
TOLERANCE_M2 = 1.0
_METRES_PER_DEGREE = 111_320.0


@dataclass(frozen=True)
class Feature:
    """One grid of a map: its place in the file, its properties and its shape (None if unusable)."""

    index: int
    code: str
    level: str
    parent: Optional[str]
    name: str
    grade: Optional[str]
    geometry: Optional[Polygon | MultiPolygon]

    @property
    def where(self) -> str:
        return feature_name(self.index, self.code)


def feature_name(index: int, code: Optional[str]) -> str:
    """How problems name a feature: ``feature 3 (TF.03)``, counting from 1 as people do."""
    return f"feature {index + 1}" + (f" ({code})" if code else "")


def square_metres(geometry, at_latitude: Optional[float] = None) -> float:
    """The area of a lon/lat geometry in m², by a flat approximation around its latitude."""
    if geometry.is_empty:
        return 0.0
    latitude = at_latitude if at_latitude is not None else geometry.centroid.y
    return geometry.area * _METRES_PER_DEGREE ** 2 * math.cos(math.radians(latitude))


def parse_features(collection: Any) -> tuple[list[Feature], list[tuple[str, str]]]:
    """The features of a GeoJSON FeatureCollection and every problem found reading them.

    A feature's properties name its grid: ``code`` and ``level``, with
    ``parent`` (the code of the grid above), ``name`` and ``grade`` optional.
    Its geometry must be a valid Polygon or MultiPolygon: each problem names
    the feature and says what is wrong (an unclosed ring, a self-intersection
    and where).
    """
    if not isinstance(collection, Mapping) or collection.get("type") != "FeatureCollection":
        got = collection.get("type") if isinstance(collection, Mapping) else type(collection).__name__
        return [], [("file", f"expected a GeoJSON FeatureCollection, got {got!r}")]
    raw = collection.get("features")
    if not isinstance(raw, list):
        return [], [("file", "expected a list under 'features'")]
    features, problems = [], []
    for index, item in enumerate(raw):
        props = item.get("properties") if isinstance(item, Mapping) else None
        props = props if isinstance(props, Mapping) else {}
        code = _text(props.get("code"))
        where = feature_name(index, code)
        if not isinstance(item, Mapping) or item.get("type") != "Feature":
            problems.append((where, "expected a GeoJSON Feature"))
            continue
        level = _text(props.get("level"))
        for name, value in (("code", code), ("level", level)):
            if not value:
                problems.append((where, f"its properties have no {name!r}: every feature names its grid's code and "
                                        f"level (and its parent's code)"))
        geometry, wrong = _polygon(item.get("geometry"))
        problems.extend((where, message) for message in wrong)
        if code and level:
            features.append(Feature(index, code, level, _text(props.get("parent")), _text(props.get("name")) or code,
                                    _text(props.get("grade")), geometry))
    return features, problems


def _text(value) -> Optional[str]:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _polygon(raw) -> tuple[Optional[Polygon | MultiPolygon], list[str]]:
    """The shape of a GeoJSON geometry and what is wrong with it (nothing: a usable polygon)."""
    if not isinstance(raw, Mapping):
        return None, ["it has no geometry: expected a Polygon or MultiPolygon"]
    kind = raw.get("type")
    if kind not in ("Polygon", "MultiPolygon"):
        return None, [f"its geometry is a {kind}, expected a Polygon or MultiPolygon"]
    polygons = raw.get("coordinates")
    if not isinstance(polygons, list) or not polygons:
        return None, ["its geometry has no coordinates"]
    problems = []
    for p, rings in enumerate([polygons] if kind == "Polygon" else polygons):
        for r, ring in enumerate(rings if isinstance(rings, list) else [None]):
            name = ("outer ring" if r == 0 else f"hole {r}") + (f" of polygon {p + 1}" if kind == "MultiPolygon" else "")
            problems += _ring_problems(ring, name)
    if problems:
        return None, problems
    try:
        geometry = shape(raw)
    except (ValueError, TypeError, shapely.errors.GEOSException) as exc:
        return None, [f"its geometry cannot be read: {exc}"]
    if not geometry.is_valid:
        reason = explain_validity(geometry)
        return None, [f"its polygon is invalid: {_readable(reason)}; redraw it so no edge crosses another"]
    if geometry.is_empty or geometry.area == 0:
        return None, ["its polygon has no area"]
    return geometry, []


def _ring_problems(ring, name: str) -> list[str]:
    if not isinstance(ring, list) or not all(
            isinstance(p, list) and len(p) >= 2 and all(isinstance(c, (int, float)) for c in p[:2]) for p in ring):
        return [f"its {name} is not a list of [longitude, latitude] positions"]
    if len(ring) < 4:
        return [f"its {name} has {len(ring)} positions: a ring needs at least 4 (the first repeated last)"]
    if ring[0][:2] != ring[-1][:2]:
        return [f"its {name} is not closed: it starts at {ring[0][:2]} and ends at {ring[-1][:2]}; "
                f"repeat the first position at the end"]
    bad = [p for p in ring if not (-180 <= p[0] <= 180 and -90 <= p[1] <= 90)]
    if bad:
        return [f"its {name} has a position off the globe, {bad[0][:2]}: expected [longitude, latitude] in degrees"]
    return []


def _readable(reason: str) -> str:
    # GEOS says "Self-intersection[117.2 31.8]": give the place as a lon/lat position.
    if "[" in reason and reason.endswith("]"):
        what, place = reason[:-1].split("[", 1)
        return f"{what.strip().lower()} at [{', '.join(place.split())}]"
    return reason.lower()


def sibling_overlaps(features: Iterable[Feature]) -> list[tuple[Feature, Feature, float]]:
    """Pairs of features under the same parent whose shapes overlap by more than the tolerance (m²)."""
    groups: dict[Optional[str], list[Feature]] = {}
    for f in features:
        if f.geometry is not None:
            groups.setdefault(f.parent, []).append(f)
    found = []
    for siblings in groups.values():
        tree = STRtree([f.geometry for f in siblings])
        for i, one in enumerate(siblings):
            for j in tree.query(one.geometry, predicate="intersects"):
                if j <= i:
                    continue
                other = siblings[int(j)]
                area = square_metres(one.geometry.intersection(other.geometry), one.geometry.centroid.y)
                if area > TOLERANCE_M2:
                    found.append((one, other, area))
    return found


def coverage_problems(parent, children: list) -> tuple[float, float, Optional[tuple[float, float]]]:
    """How well ``children`` tile ``parent``: the m² of the parent no child covers, the m² of children
    outside the parent, and a point inside the largest gap (None if there is none)."""
    union = shapely.union_all(children)
    latitude = parent.centroid.y
    gap = parent.difference(union)
    outside = union.difference(parent)
    gap_m2, outside_m2 = square_metres(gap, latitude), square_metres(outside, latitude)
    point = None
    if gap_m2 > TOLERANCE_M2:
        largest = max(getattr(gap, "geoms", [gap]), key=lambda g: g.area)
        inside = largest.representative_point()
        point = (round(inside.x, 6), round(inside.y, 6))
    return gap_m2, outside_m2, point


def to_geojson(geometry) -> dict:
    """A shape as a GeoJSON geometry mapping."""
    return mapping(geometry)


def from_geojson(data: Mapping) -> Polygon | MultiPolygon:
    """A stored GeoJSON geometry as a shape."""
    return shape(data)


def deepest_containing(point: tuple[float, float], candidates: Iterable[tuple[Any, int, Any]]) -> Optional[Any]:
    """Of ``(key, level rank, shape)`` candidates, the key of the deepest level whose shape holds
    ``point`` (lon, lat); of equal ranks, the smallest shape. A point on a shared edge belongs
    to one of its grids (``covers``), never to none."""
    where = shapely.Point(point)
    best = None
    for key, rank, geometry in candidates:
        if geometry.covers(where):
            score = (rank, -geometry.area)
            if best is None or score > best[0]:
                best = (score, key)
    return best[1] if best else None
