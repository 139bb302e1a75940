"""The direction of imports between the rooms: cli, web → app → sync → core ← dsl.

Read from the source with `ast` (every ``import`` and ``from ... import``,
also those inside functions), so a lazy import cannot slip past.
"""
from __future__ import annotations

import ast
from pathlib import Path

import wangge

ROOT = Path(wangge.__file__).parent

#: What each room may import besides itself. ``rulesets`` is package data (shipped rule files
#: and their loader); ``bench`` is run by hand and only the command line starts it.
ALLOWED = {
    "core": set(),
    "dsl": {"core"},  # the compiler builds core's ruleset data types
    "sync": {"core", "dsl"},  # dsl: only the master's watched rule file, see EXCEPTIONS
    "app": {"sync", "core", "dsl", "rulesets"},
    "web": {"app", "sync", "core", "dsl", "rulesets"},
    "cli": {"web", "app", "sync", "core", "dsl", "rulesets", "bench"},  # web: `wangge serve` runs the HTTP apps
    "rulesets": {"core", "dsl"},
    "bench": {"web", "app", "sync", "core", "dsl", "rulesets"},  # it measures the HTTP apps too
}
#: Imports allowed against the grain of a room, by module and the room it reaches.
EXCEPTIONS = {("sync", "watch", "dsl")}  # a hot-reloaded rule file is compiled where it is watched


def _room(path: Path) -> str:
    relative = path.relative_to(ROOT)
    return _named(relative.parts[0] if len(relative.parts) > 1 else relative.stem)


def _named(room: str) -> str:
    return "cli" if room.startswith("cli_") else room  # cli_i18n.py: the command line's language


def _imported_rooms(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "wangge" and len(parts) > 1:
                yield _named(parts[1]), node.lineno


def _graph():
    for path in sorted(ROOT.rglob("*.py")):
        if path.relative_to(ROOT).parts[0] in ("tests", "build", ".venv") or path.name == "__main__.py":
            continue
        if path.parent == ROOT and _room(path) != "cli":
            continue  # the package's own __init__
        room = _room(path)
        for target, line in _imported_rooms(ast.parse(path.read_text(encoding="utf-8"))):
            if target != room:
                yield room, path, target, line


def test_every_room_imports_only_the_rooms_below_it():
    wrong = [f"{path.relative_to(ROOT)}:{line}: {room} imports {target}"
             for room, path, target, line in _graph()
             if target not in ALLOWED.get(room, set()) or (
                 room == "sync" and target == "dsl" and (room, path.stem, target) not in EXCEPTIONS)]
    assert wrong == []


def test_every_room_is_known():
    rooms = {room for room, *_ in _graph()}
    assert rooms <= set(ALLOWED), f"a new room needs its place in ALLOWED: {sorted(rooms - set(ALLOWED))}"


def test_the_graph_is_read_from_the_source():
    """The walk finds the imports that hold the layers together, lazy ones included."""
    edges = {(room, target) for room, _, target, _ in _graph()}
    assert {("cli", "app"), ("app", "sync"), ("sync", "core"), ("dsl", "core"), ("app", "core")} <= edges


#: Within sync, the rooms by role: what each may import of the others (the root holds what both
#: sides share: bundles, keys, identity, enrollment, photos, the session's common parts).
SYNC_ALLOWED = {
    "log": set(),
    "master": {"log"},
    "device": {"log"},
    "transport": {"log", "master", "device"},
}


def test_the_sides_of_sync_stay_apart():
    """The op log knows neither side; master and device never import each other; transports may use both."""
    wrong = []
    for path in sorted((ROOT / "sync").rglob("*.py")):
        parts = path.relative_to(ROOT / "sync").parts
        room = parts[0] if len(parts) > 1 else None
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.ImportFrom) and node.level == 0 and node.module):
                continue
            for name in [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]:
                target = name.split(".")[2] if name.startswith("wangge.sync.") else None
                if target in SYNC_ALLOWED and target != room and room is not None \
                        and target not in SYNC_ALLOWED[room]:
                    wrong.append(f"sync/{'/'.join(parts)}:{node.lineno}: {room} imports {target}")
    assert sorted(set(wrong)) == []
