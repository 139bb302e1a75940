"""The one exception hierarchy of wangge.

Every error a user can cause derives from `WanggeError`. Subclasses also
inherit the matching built-in where one fits (as attrs does with
``FrozenError(AttributeError)``), so callers may catch either. Messages say
what went wrong, where, what was expected and what came, so the command line
can print ``str(error)`` as one line and exit with ``exit_code``, and an
HTTP server can answer with ``http_status``.
"""
from __future__ import annotations


class WanggeError(Exception):
    """Base of every error wangge raises on purpose."""

    #: Exit code the command line uses for this error.
    exit_code = 1
    #: HTTP status a server answers this error with (always 4xx: the request was at fault).
    http_status = 422


class UsageError(WanggeError, ValueError):
    """A bad argument, path or URL given by the user."""

    exit_code = 2


class StoreError(WanggeError):
    """The store cannot be opened, migrated or written."""

    exit_code = 2


class StoreRoleError(StoreError):
    """A store was opened in a role it was not created for."""


class ClockDriftError(WanggeError, ValueError):
    """A remote clock reading lies beyond the allowed drift."""


class RuleError(WanggeError):
    """A rule file is broken; carries every problem found in it."""


class RuleFileError(RuleError):
    """Every diagnostic found in one run over rule files, reported together.

    ``diagnostics`` holds `wangge.dsl.diagnostics.Diagnostic` objects, each
    with file, line, column, message and hint; ``str()`` renders them all.
    """

    def __init__(self, diagnostics):
        self.diagnostics = tuple(diagnostics)
        text = "\n\n".join(d.format() for d in self.diagnostics)
        errors = sum(1 for d in self.diagnostics if getattr(d, "is_error", True))
        warnings = len(self.diagnostics) - errors
        tail = f"{errors} error{'s' if errors != 1 else ''}" + (
            f", {warnings} warning{'s' if warnings != 1 else ''}" if warnings else "")
        super().__init__(f"{text}\n\n{tail}")

    @property
    def summary(self) -> str:
        """One line for a command line: the first problem and how many there are."""
        first = self.diagnostics[0].format().splitlines()[0] if self.diagnostics else "rule error"
        more = len(self.diagnostics) - 1
        return first + (f" (and {more} more)" if more > 0 else "")


class ValidationFailed(WanggeError, ValueError):
    """A record does not satisfy the ruleset's validators."""


class TransitionError(WanggeError):
    """A lifecycle move that is not allowed from this state for this role.

    Besides the message, callers can read which guard refused: ``reason`` is
    one of `REASONS` (None when there is no lifecycle at all), with the
    ``state``, ``move`` and ``role`` asked for and the ``missing`` evidence.
    """

    REASONS = ("unknown_state", "unknown_move", "not_from_state", "wrong_role", "missing_evidence", "not_reporter")

    def __init__(self, message: str, *, reason: str | None = None, state: str | None = None,
                 move: str | None = None, role: str | None = None, missing: tuple[str, ...] = (),
                 values: dict[str, str] | None = None):
        super().__init__(message)
        self.reason, self.state, self.move, self.role, self.missing = reason, state, move, role, tuple(missing)
        # What the message was filled with, so it can be said again in another language.
        self.values = dict(values or {})


class SyncError(WanggeError):
    """A bundle or a sync exchange was refused.

    ``http_status`` tells a client what to do: 400 resend it whole (malformed),
    409 sync again (out of turn), 403 ask the office (well formed, not allowed).
    """

    http_status = 403


class RoutingError(WanggeError, LookupError):
    """A case names an item, grid level or route the ruleset does not have."""


class PointsError(WanggeError, ValueError):
    """A point ledger entry that would break the ledger (e.g. a negative balance)."""


class ImportRefused(ValidationFailed):
    """A file to import has problems. ``problems`` holds every one as ``(where, message)``, where
    is e.g. ``户籍!D17`` or ``feature 3 (TF.03)``; ``written`` says whether the good part was
    written anyway (an import told to skip bad rows) or nothing was."""

    #: Problems shown in the one message; all of them stay in ``problems``.
    SHOWN = 50

    def __init__(self, what: str, problems, *, written: bool = False):
        self.what, self.problems, self.written = what, tuple(problems), written
        count = len(self.problems)
        lines = [f"{where}: {message}" for where, message in self.problems[: self.SHOWN]]
        if count > self.SHOWN:
            lines.append(f"… and {count - self.SHOWN} more")
        outcome = "the other rows were written" if written else "nothing was written"
        super().__init__(f"{what}: {count} problem{'s' if count != 1 else ''}, {outcome}\n" + "\n".join(lines))
