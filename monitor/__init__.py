"""monitor: record AI-agent orchestrations and executions in SQLite and report on them."""

__version__ = "0.1.0"

from .db import Database, open_db  # noqa: E402
from .errors import DatabaseError, InvalidInput, MonitorError, NotFound  # noqa: E402
from .tracker import ExecutionRun, OrchestrationRun, Tracker  # noqa: E402

__all__ = [
    "Database", "DatabaseError", "ExecutionRun", "InvalidInput", "MonitorError", "NotFound",
    "OrchestrationRun", "Tracker", "__version__", "open_db",
]
