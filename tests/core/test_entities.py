"""The entity table is the one home of what is known about each entity: every consumer reads it."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import wangge
from wangge.core import capture, entities, models, placement
from wangge.sync.log import apply, merge, scope
from wangge.sync.master import authorise

ROOT = Path(wangge.__file__).parent

#: (module, name it is known by there, the table's read it must be).
CONSUMERS = [
    (models, "ENTITIES", entities.MODELS), (models, "APPEND_ONLY", entities.APPEND_ONLY),
    (placement, "OWNERS", entities.OWNERS), (placement, "BELONGS", entities.BELONGS),
    (placement, "CHUNK", entities.BATCH), (capture, "_CHUNK", entities.BATCH),
    (merge, "CRITICAL_COLUMNS", entities.CRITICAL_COLUMNS),
    (apply, "ENTITY_ORDER", entities.ORDER), (apply, "CHUNK", entities.BATCH),
    (scope, "SHARED", entities.SHARED), (scope, "PRIVATE", entities.PRIVATE),
    (scope, "DEVICE_WRITABLE", entities.DEVICE_WRITABLE), (scope, "SCOPED", entities.SCOPED),
    (scope, "REFERENCES", entities.REFERENCES), (scope, "DERIVED", entities.DERIVED),
    (scope, "CHUNK", entities.BATCH), (authorise, "VALIDATED", entities.VALIDATED),
]
TABLE_NAMES = {name for _, name, _ in CONSUMERS}


@pytest.mark.parametrize(("module", "name", "read"), CONSUMERS, ids=[f"{m.__name__}.{n}" for m, n, _ in CONSUMERS])
def test_each_consumer_holds_the_tables_own_object(module, name, read):
    assert getattr(module, name) is read


def _assignments(tree: ast.AST):
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AnnAssign) and node.value is not None else []
        for target in targets:
            if isinstance(target, ast.Name):
                yield target.id, node.value, node.lineno


def test_no_module_keeps_a_copy_of_a_fact_of_the_table():
    """A consumer may name a fact (``SCOPED = entities.SCOPED``) but never spell it out again."""
    copies = []
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT)
        if relative.parts[0] in ("tests", "build", ".venv") or relative == Path("core/entities.py"):
            continue
        for name, value, line in _assignments(ast.parse(path.read_text(encoding="utf-8"))):
            read = isinstance(value, ast.Attribute) and isinstance(value.value, ast.Name) and value.value.id == "entities"
            named = isinstance(value, ast.Name) and value.id in ("BATCH",)
            if name in TABLE_NAMES | {"ENTITY_ORDER", "CHUNK", "_CHUNK"} and not (read or named):
                copies.append(f"{relative}:{line}: {name}")
            if isinstance(value, ast.Constant) and value.value == entities.BATCH and "CHUNK" in name:
                copies.append(f"{relative}:{line}: {name} = {value.value}")
    assert copies == []


def test_the_table_agrees_with_the_models():
    assert set(entities.MODELS) == {e.name for e in entities.TABLE}
    position = {name: n for n, name in enumerate(entities.ORDER)}
    for entity in entities.TABLE:
        columns = set(entity.model.__table__.columns.keys())
        for column, target in entity.owners + entity.belongs:
            assert (column, target) in entity.references, f"{entity.name}.{column} names no {target}"
        for column, target in entity.references:
            if target != entity.name:  # a grid cell names the cell above it
                assert position[target] < position[entity.name], f"{target} must come before {entity.name}"
        assert entity.critical <= columns
        assert entity.derived is None or entity.derived in columns
        assert not (entity.append_only and entity.owners), f"{entity.name}: an append-only row never moves"
        assert entity.sharing in ("shared", "scoped", "private")
        assert not (entity.sharing == "private" and entity.device_writes)
