"""A street office's master store under a shipped rule file, with a few grids: what the
import, grid map and Open311 tests start from."""
from __future__ import annotations

from wangge import dsl, rulesets
from wangge.core import casework, roster, store


def office(path, model: str = "teda", grids=(("TF", "社区", None), ("TF.01", "网格", "TF"), ("TF.02", "网格", "TF"))):
    """Create a master store at ``path`` running ``model``'s rule file, with ``grids``; return its path."""
    ruleset = dsl.load(rulesets.path(model))
    with store.init(str(path), "master") as made, made.write(actor="office") as rec:
        casework.install_ruleset(rec.conn, ruleset)
        for code, level, upper in grids:
            roster.add_grid(rec, code, level, code, upper)
    return str(path)
