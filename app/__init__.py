"""What people do: `Office` and `Tablet` handles that open a store the one right
way, and the use cases performed through them (report and move a case, record a
household or visit, resolve, approve, sync, score, import). `cli` and `web` are
two faces of this package; it stands on `sync` and `core`.

    from wangge.app import Office, Tablet
"""
from wangge.app.office import Office
from wangge.app.tablet import Tablet

__all__ = ["Office", "Tablet"]
