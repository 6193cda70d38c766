"""monitor: record AI-agent orchestrations and executions in SQLite and report on them."""

__version__ = "0.1.0"

from monitor.errors import DatabaseError, InvalidInput, MonitorError, NotFound  # noqa: E402

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from monitor.store.db import Database, open_db
    from monitor.capture.tracker import ExecutionRun, OrchestrationRun, Tracker

# Imported on first use, so that `python -m monitor.hooks` (run by Claude Code on every tool
# call) loads only the modules it needs.
_LAZY = {"Database": "store.db", "open_db": "store.db", "ExecutionRun": "capture.tracker",
         "OrchestrationRun": "capture.tracker", "Tracker": "capture.tracker"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        from importlib import import_module

        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "Database", "DatabaseError", "ExecutionRun", "InvalidInput", "MonitorError", "NotFound",
    "OrchestrationRun", "Tracker", "__version__", "open_db",
]
