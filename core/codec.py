"""The store's JSON, one codec: how JSON columns are written, read back, logged and digested.

Three forms, each for one job, each with its C encoder built once
(`JSONEncoder.encode` builds one per call, which costs more than a small row):

* `column`: a JSON column as the store writes it (the engine's serializer,
  `wangge.core.store.connect`): readable Chinese text, default separators.
  Rows written past SQLAlchemy (bulk imports, patches) use the same, so a
  row reads the same however it was written.
* `op`: an op's fields in the log and on the wire: sorted keys, compact,
  dates as ISO text.
* `canonical`: the checksum's digest form, ``json.dumps(value, sort_keys=True)``.

`decoded` reads a JSON column as the driver hands it back: decoded already
on PostgreSQL, text on SQLite.
"""
from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any


def json_value(value: Any) -> Any:
    """A value as it travels in an op's JSON."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def _c_encoder(default, string, separators: tuple[str, str], sort_keys: bool):
    maker = json.encoder.c_make_encoder
    # (No circular check: rows and ops are plain data.)
    return maker and maker(None, default, string, None, separators[1], separators[0], sort_keys, False, True)


_column = json.JSONEncoder(ensure_ascii=False)
_column_c = _c_encoder(_column.default, json.encoder.encode_basestring, (", ", ": "), False)
_op = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=json_value)
_op_c = _c_encoder(json_value, json.encoder.encode_basestring, (",", ":"), True)
_canonical_c = _c_encoder(None, json.encoder.encode_basestring_ascii, (", ", ": "), True)


def column(value: Any) -> str:
    """A JSON column's text as the store writes it."""
    if not value:
        return "{}" if isinstance(value, dict) else _column.encode(value)
    return "".join(_column_c(value, 0)) if _column_c else _column.encode(value)


def op(value: Any) -> str:
    """Canonical JSON for op fields, in the log and on the wire."""
    if _op_c is None or isinstance(value, str):
        return _op.encode(value)
    return "".join(_op_c(value, 0))


def canonical(value: Any) -> str:
    """The checksum's form of a value: ``json.dumps(value, sort_keys=True)``."""
    return "".join(_canonical_c(value, 0)) if _canonical_c else json.dumps(value, sort_keys=True)


def decoded(value: Any) -> Any:
    """A JSON column's value as the driver hands it back, decoded (None stays None)."""
    return json.loads(value) if isinstance(value, (str, bytes)) else value
