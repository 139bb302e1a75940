"""Grid maps from GIS tools: every problem named by its feature, nothing written on error."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from shapely.geometry import shape
from sqlalchemy import func, select

from support.offices import office
from wangge.app import gridmap
from wangge.core import store
from wangge.core.boundaries import GridBoundary
from wangge.core.errors import ImportRefused
from wangge.core.models import GridCell, Op


def box(x0, y0, x1, y1):
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


def feature(code, level, parent, geometry, **more):
    return {"type": "Feature", "properties": {"code": code, "level": level, "parent": parent, **more},
            "geometry": geometry}


def street_map(*extra, tf01=box(117.00, 39.00, 117.01, 39.02), tf02=box(117.01, 39.00, 117.02, 39.02)):
    """泰丰社区 (TF) under the street TD, split into two grids along longitude 117.01."""
    return {"type": "FeatureCollection", "features": [
        feature("TF", "社区", "TD", box(117.00, 39.00, 117.02, 39.02), name="泰丰社区"),
        feature("TF.01", "网格", "TF", tf01, name="泰丰1网格", grade=None),
        feature("TF.02", "网格", "TF", tf02, name="泰丰2网格"),
        *extra]}


def _write(tmp_path, collection, name="map.geojson"):
    path = tmp_path / name
    path.write_text(json.dumps(collection, ensure_ascii=False), encoding="utf-8")
    return str(path)


@pytest.fixture
def street(tmp_path):
    return office(tmp_path / "office.db", grids=(("TD", "街道", None),))


def _counts(target):
    with store.open(target) as opened, opened.read() as conn:
        return (conn.execute(select(func.count()).select_from(GridCell)).scalar(),
                conn.execute(select(func.count()).select_from(GridBoundary)).scalar(),
                conn.execute(select(func.count()).select_from(Op).where(Op.entity == "grid_cell")).scalar())


def test_every_problem_of_a_map_at_once_and_nothing_written(street, tmp_path):
    bowtie = {"type": "Polygon", "coordinates": [[[117.0, 39.0], [117.01, 39.01], [117.01, 39.0], [117.0, 39.01],
                                                  [117.0, 39.0]]]}
    unclosed = {"type": "Polygon", "coordinates": [[[117.0, 39.0], [117.01, 39.0], [117.01, 39.01], [117.0, 39.01]]]}
    bad = street_map(feature("TF.03", "网格", "TF", bowtie),
                     feature("TF.04", "网格", "XX", unclosed),
                     tf01=box(117.00, 39.00, 117.012, 39.02))  # 0.002° into TF.02
    before = _counts(street)
    with pytest.raises(ImportRefused) as refused:
        gridmap.import_map(street, _write(tmp_path, bad))
    problems = refused.value.problems
    by_feature = {}
    for where, message in problems:
        by_feature.setdefault(where, []).append(message)
    assert sorted(by_feature) == ["feature 2 (TF.01)", "feature 4 (TF.03)", "feature 5 (TF.04)"]
    assert any("overlaps feature 3 (TF.02)" in m for m in by_feature["feature 2 (TF.01)"])
    overlap = next(m for m in by_feature["feature 2 (TF.01)"] if "overlaps" in m)
    assert "by 3" in overlap and "m²" in overlap  # 0.002° x 0.02° at 39°N is about 3,855 m²
    assert any("invalid: self-intersection at [117.005, 39.005]" in m for m in by_feature["feature 4 (TF.03)"])
    assert any("not closed" in m for m in by_feature["feature 5 (TF.04)"])
    assert any("unknown parent 'XX'" in m for m in by_feature["feature 5 (TF.04)"])
    assert "nothing was written" in str(refused.value)
    assert _counts(street) == before


def test_a_gap_inside_a_parent_and_a_child_overrunning_it(street, tmp_path):
    gappy = street_map(tf01=box(117.00, 39.00, 117.008, 39.02), tf02=box(117.01, 39.00, 117.021, 39.02))
    with pytest.raises(ImportRefused) as refused:
        gridmap.import_map(street, _write(tmp_path, gappy))
    problems = dict(refused.value.problems)
    assert problems["feature 1 (TF)"].startswith("a gap: 3")  # 0.002° x 0.02° between the two grids
    assert "TF.01, TF.02" in problems["feature 1 (TF)"] and "around [117.009" in problems["feature 1 (TF)"]
    assert "outside its parent TF" in problems["feature 3 (TF.02)"]


def test_a_good_map_round_trips_and_places_points(street, tmp_path):
    done = gridmap.import_map(street, _write(tmp_path, street_map()))
    assert "3 grids, 3 added" in done
    cells, bounds, ops = _counts(street)
    assert (cells, bounds) == (4, 3) and ops == 4  # grids go through change capture and sync
    out = tmp_path / "out.geojson"
    assert gridmap.export_map(street, str(out)) == 3
    exported = json.loads(out.read_text(encoding="utf-8"))
    by_code = {f["properties"]["code"]: f for f in exported["features"]}
    assert by_code["TF.02"]["properties"] == {"code": "TF.02", "level": "网格", "parent": "TF", "name": "泰丰2网格"}
    original = {f["properties"]["code"]: shape(f["geometry"]) for f in street_map()["features"]}
    assert all(shape(by_code[c]["geometry"]).equals(original[c]) for c in original)
    again = gridmap.import_map(street, str(out))
    assert "0 added, 3 updated" in again and _counts(street)[2] == ops  # nothing changed: no new ops
    with store.open(street) as opened, opened.read() as conn:
        assert gridmap.locate(conn, 117.015, 39.01).code == "TF.02"  # the deepest grid holding the point
        assert gridmap.locate(conn, 117.005, 39.01).code == "TF.01"
        assert gridmap.locate(conn, 117.01, 39.01).code in ("TF.01", "TF.02")  # on the shared edge: one of them
        assert gridmap.locate(conn, 116.0, 39.01) is None


def test_redrawing_one_grid_is_checked_against_the_stored_ones(street, tmp_path):
    gridmap.import_map(street, _write(tmp_path, street_map()))
    moved = {"type": "FeatureCollection", "features": [feature("TF.02", "网格", "TF", box(117.005, 39.0, 117.02, 39.02))]}
    with pytest.raises(ImportRefused) as refused:
        gridmap.import_map(street, _write(tmp_path, moved, "moved.geojson"))
    assert refused.value.problems[0][0] == "feature 1 (TF.02)"
    assert "overlaps grid TF.01 (in the store)" in refused.value.problems[0][1]


def test_not_geojson_is_a_located_error(street, tmp_path):
    path = tmp_path / "broken.geojson"
    path.write_text('{"type": "FeatureCollection",\n "features": [}', encoding="utf-8")
    with pytest.raises(ImportRefused, match="line 2 column"):
        gridmap.import_map(street, str(path))
    with pytest.raises(ImportRefused, match="expected a GeoJSON FeatureCollection"):
        gridmap.import_map(street, _write(tmp_path, {"type": "Feature"}))


def test_grid_import_and_export_commands(street, tmp_path):
    run = lambda *a: subprocess.run([sys.executable, "-m", "wangge", *a], capture_output=True, text=True)  # noqa: E731
    bad = run("grid", "import", street, _write(tmp_path, street_map(feature("X", "网格", "TF", box(0, 0, 1, 1)))))
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert "feature 4 (X): it extends" in bad.stderr
    good = run("grid", "import", street, _write(tmp_path, street_map()))
    assert good.returncode == 0 and "3 added" in good.stdout
    out = run("grid", "export", street, "--out", str(tmp_path / "o.geojson"))
    assert out.returncode == 0 and "wrote 3 grids" in out.stdout


@pytest.mark.postgres
def test_a_map_on_postgresql(pg_url, tmp_path):
    target = office(pg_url, grids=(("TD", "街道", None),))
    with pytest.raises(ImportRefused):
        gridmap.import_map(target, _write(tmp_path, street_map(tf01=box(117.0, 39.0, 117.012, 39.02))))
    assert "3 added" in gridmap.import_map(target, _write(tmp_path, street_map()))
    with store.open(target) as opened, opened.read() as conn:
        assert gridmap.locate(conn, 117.015, 39.01).code == "TF.02"
    assert gridmap.export_map(target, str(tmp_path / "out.geojson")) == 3


def test_a_case_reported_with_a_position_and_no_grid_is_placed_by_its_boundary(street, tmp_path):
    from wangge.app import Office
    from wangge.core.errors import UsageError

    gridmap.import_map(street, _write(tmp_path, street_map()))
    with Office.open(street) as opened:
        worker = opened.add_worker("王芳", role="网格员", grids=["TF.02"])
        reported = gridmap.report_at(opened, point=(117.016, 39.004), by=worker, item="0201", channel="巡查",
                                     description="人行绿灯太短")
        assert [(c.number, c.grid) for c in opened.cases()] == [(reported.number, "TF.02")]
        with pytest.raises(UsageError, match="lies in no mapped grid"):
            gridmap.report_at(opened, point=(100.0, 30.0), by=worker, item="0201", channel="巡查")
        assert len(opened.cases()) == 1
