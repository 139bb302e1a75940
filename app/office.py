"""`Office`: the street office's master store, and what people do there.

    with Office.open("office.db", rules="rulesets/teda.wg") as office:
        office.add_grid("TF", level="社区", name="泰丰社区")
        reported = office.report_case(by=worker, item="0103", grid="TF.03", channel="巡查")
        office.move_case(reported.number, "派遣", role="指挥中心", by=None)
        for conflict in office.conflicts(): ...

The ruleset is the one installed on the store; ``rules`` installs a rule
file's (checked first: a file with errors raises `RuleFileError` and installs
nothing), and `watch_rules` keeps reinstalling it as it changes, keeping the
last one that passed its checks.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Callable, Iterable, Optional

from wangge.app import cases, devices, exchange, review, roster, scores, stores
from wangge.app.handle import Handle
from wangge.core import casework
from wangge.core.casework import MonthScore
from wangge.core.ruleset import Ruleset
from wangge.core.store import Store
from wangge.sync.transport import fieldwork


class Office(Handle):
    """A master store, open. Get one with `Office.open` or `Office.create`."""

    NO_RULESET = "this store has no ruleset: give one with --rules FILE.wg"

    def __init__(self, store: Store):
        super().__init__(store)
        self.live = None  # a `wangge.sync.transport.watch.LiveRuleset` while `watch_rules` runs
        self._observers: list = []

    @classmethod
    def open(cls, target: str | Path, *, rules: Optional[str | Path] = None, watch: bool = False,
             now_ms: Optional[Callable[[], int]] = None,
             on_reload: Optional[Callable[[Ruleset], object]] = None) -> "Office":
        """Open the master store at ``target`` (a file path or a postgresql:// URL), migrated.

        With ``rules``, the rule file is loaded and installed first; with
        ``watch`` too, it is reinstalled whenever it changes (`watch_rules`),
        and a file with errors leaves the installed ruleset running instead
        of raising (``on_reload`` hears of each version installed after the
        first). Raises `UsageError` if there is no master store there,
        `StoreRoleError` for a tablet's, `RuleFileError` (every problem in the
        file) for bad rules unless watched.
        """
        ruleset = _load(rules) if rules is not None and not watch else None
        office = cls(stores.open_master(str(target), now_ms=now_ms))
        with office._closed_on_error():
            if ruleset is not None:
                office.install(ruleset)
            elif rules is not None:
                office.watch_rules(rules, on_reload=on_reload)
        return office

    @classmethod
    def create(cls, target: str | Path, *, rules: Optional[str | Path | Ruleset] = None,
               device_id: Optional[str] = None, now_ms: Optional[Callable[[], int]] = None) -> "Office":
        """Create a master store at ``target`` and open it; install ``rules`` (a file or a ruleset) if given.

        Raises `StoreError` if a store is there already, `RuleFileError` for
        bad rules (checked before anything is created).
        """
        ruleset = rules if isinstance(rules, Ruleset) else _load(rules) if rules is not None else None
        office = cls(stores.create_master(str(target), device_id=device_id, now_ms=now_ms))
        with office._closed_on_error():
            if ruleset is not None:
                office.install(ruleset)
        return office

    # -- rules ---------------------------------------------------------------------------------

    def install(self, ruleset: Ruleset) -> None:
        """Make ``ruleset`` the one this master runs, for its commands and its exchanges."""
        with self.store.write(actor="office") as rec:
            casework.install_ruleset(rec.conn, ruleset)

    def watch_rules(self, rule_file: str | Path, *, on_reload: Optional[Callable[[Ruleset], object]] = None) -> None:
        """Load ``rule_file`` now and reinstall it whenever it (or a file beside it) changes.

        A version that fails its checks never replaces the running one: the
        error is logged and kept in ``live.last_error``. Stopped by `close`.
        """
        from wangge.sync.transport import watch

        def changed(ruleset: Ruleset) -> None:
            self.install(ruleset)
            if on_reload is not None and self.live.reloads > 1:  # the first load is the start, not a reload
                on_reload(ruleset)

        self.live = watch.LiveRuleset(rule_file, on_change=changed)
        self._observers.append(watch.watch_rules(self.live))

    def installed_ruleset(self) -> Optional[Ruleset]:
        """The watched rule file's ruleset while one has loaded, else the one installed on the store."""
        if self.live is not None and self.live.current is not None:
            return self.live.current
        return super().installed_ruleset()

    def close(self) -> None:
        for observer in self._observers:
            observer.stop()
            observer.join()
        self._observers.clear()
        super().close()

    # -- cases at the office -------------------------------------------------------------------

    def escalate(self, at: Optional[datetime] = None, ruleset: Optional[Ruleset] = None) -> cases.Swept:
        """Escalate every overdue open case as of ``at`` (default now), never past its ceiling."""
        return cases.escalate(self.store, ruleset or self.ruleset, at)

    def scores(self, year: int, month: int, ruleset: Optional[Ruleset] = None) -> list[MonthScore]:
        """The month's scores, of every worker and then every grid."""
        return scores.score_month(self.store, ruleset or self.ruleset, year, month)

    # -- the roster ----------------------------------------------------------------------------

    def period_scores(self, period, ruleset: Optional[Ruleset] = None) -> list[MonthScore]:
        """Every worker's and grid's score for ``period`` (a `wangge.core.periods.Period`) by its kind's formulas."""
        return scores.score_period(self.store, ruleset or self.ruleset, period)

    def add_grid(self, code: str, *, level: str, name: str, upper: Optional[str] = None,
                 grade: Optional[str] = None) -> str:
        """Add a grid cell coded ``code`` (under the cell coded ``upper``); return its id."""
        return roster.add_grid(self.store, code, level=level, name=name, upper=upper, grade=grade)

    def add_worker(self, name: str, *, role: str, grids: Iterable[str] = (), phone: str = "") -> str:
        """Add a worker with ``role`` for the grid cells coded ``grids``; return the worker's id."""
        return roster.add_worker(self.store, name, role=role, grids=grids, phone=phone)

    def import_roster(self, kind: str, path: str | Path, *, sheet: Optional[str] = None, skip_bad: bool = False,
                      actor: str = "import"):
        """Import the roster of ``kind`` (``wangge.app.rosters.KINDS``) from the .xlsx or .csv at ``path``.

        Returns `rosters.Imported`. Raises `ImportRefused` with every problem
        (cell and message) and writes nothing if a row is bad and ``skip_bad``
        is not set, or the file's columns are wrong; `UsageError` for a file
        that cannot be read.
        """
        from wangge.app import rosters, sheets

        ruleset = self.ruleset  # read before the transaction below: it takes a transaction of its own
        with sheets.open_table(str(path), sheet) as table, self.store.read() as conn:
            plan = rosters.plan_import(conn, ruleset, kind, table)
        rosters.refuse_if_bad(plan, skip_bad)
        with self.store.write(actor=actor) as rec:
            return rosters.write_plan(rec, plan)

    # -- office accounts -----------------------------------------------------------------------

    def add_account(self, name: str, role: str, password: str, *, grid: Optional[str] = None,
                    department: Optional[str] = None, by: str = "office"):
        """Make a console account (`wangge.app.accounts.add`): it sees the cases of ``grid``'s subtree,
        all if None, and only those of ``department`` if one is given."""
        from wangge.app import accounts

        return accounts.add(self.store, name, role, password, grid=grid, department=department, by=by)

    def login(self, name: str, password: str, *, now: Optional[datetime] = None):
        """The account whose name and password these are; raises `LoginRefused` (a failure counts towards lockout)."""
        from wangge.app import accounts

        return accounts.login(self.store, name, password, now=now)

    def queue(self, account, *, now: Optional[datetime] = None, lang: str = "zh", **filters):
        """One page of the cases ``account`` sees, soonest deadline first (`wangge.app.queries.queue`).

        ``filters`` are `queries.QueueFilter`'s fields: status, grid, case_class,
        item, channel, owner, overdue, due_soon, page.
        """
        from datetime import timezone

        from wangge.app import queries

        ruleset = self.ruleset
        with self.store.read() as conn:
            return queries.queue(conn, ruleset, account, queries.QueueFilter(**filters),
                                 now or datetime.now(timezone.utc), lang)

    # -- review --------------------------------------------------------------------------------

    def conflicts(self, *, include_resolved: bool = False) -> list[dict]:
        """What sync queued for the office's review, oldest first."""
        return review.conflicts(self.store, include_resolved=include_resolved)

    def resolve(self, number: int, how: str, *, by: str = "office", note: str = "",
                at: Optional[datetime] = None) -> str:
        """Answer conflict ``number`` with ``how``; say what happened (see `wangge.app.review`)."""
        return review.resolve(self.store, number, how, by=by, note=note, ruleset=self.installed_ruleset(), at=at)

    # -- devices -------------------------------------------------------------------------------

    def devices(self) -> devices.Devices:
        """Every tablet registered here, newest first, with the registry's version."""
        return devices.devices(self.store)

    def approve(self, request: str, worker: str) -> devices.Approved:
        """Approve a tablet (its device id or request text) for ``worker``; the card for the tablet comes back."""
        return devices.approve(self.store, request, worker)

    def revoke(self, device_id: str) -> None:
        """Revoke a tablet: its next sync is refused."""
        devices.revoke(self.store, device_id)

    def rotate_keys(self, *, stamp: str) -> devices.Rotated:
        """New key pairs for this master, the old kept aside; a card per active tablet to scan."""
        return devices.rotate_keys(self.store, stamp=stamp)

    def registry_snapshot(self, out: str | Path) -> devices.Snapshot:
        """Write the device registry, signed by this master, to ``out``."""
        return devices.snapshot(self.store, out)

    def collect_tombstones(self, absent_days: float = 30):
        """Remove deleted rows every active tablet has seen (`wangge.sync.master.tombstones.collect`).

        A tablet not seen for ``absent_days`` no longer holds deletions back;
        on its return it downloads afresh.
        """
        from wangge.sync.master import tombstones

        return tombstones.collect(self.store, absent_after_days=absent_days)

    # -- exchanges -----------------------------------------------------------------------------

    def exchange(self, bundle: bytes) -> fieldwork.Exchanged:
        """Apply a tablet's push (bytes) under the running ruleset: its reply, a summary, who sent how many ops."""
        return fieldwork.exchange_once(self.store, self.keys, self.installed_ruleset(), bundle)

    def master_service(self):
        """What the HTTP transport serves (`wangge.sync.office.Office`): enrollment, the registry,
        signed photo requests, health, and `exchange` under the running ruleset."""
        from wangge.sync.office import Office as Service

        return Service(self.store, self.exchange, live_rules=self.live, public_keys=self.keys.public)

    def import_bundle(self, bundle_file: str | Path, *, reply_to: Optional[str | Path] = None) -> exchange.Imported:
        """Apply a tablet's push from a file (a USB stick) and write the reply beside it (or to ``reply_to``)."""
        return exchange.import_push(self.store, bundle_file, self.installed_ruleset, reply_to=reply_to)


def _load(rule_file: str | Path) -> Ruleset:
    from wangge import dsl

    return dsl.load(rule_file)
