"""`cost`: tokens and dollars per agent, model or session, from the costs stored on executions.

Costs were computed when the usage was recorded (prices change; old costs do not). An execution
with tokens but no cost used a model without a price: it is counted as `unpriced`, not as $0.
"""

from __future__ import annotations

from monitor.store.db import Database
from monitor.errors import InvalidInput
from monitor.read.queries import rows

GROUPINGS = {
    "agent": "e.agent_name",
    "model": "e.model",
    "session": "o.session_id",
}
COST_COLUMNS = ["executions", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
                "cost_usd", "unpriced"]
_SUMS = """
    count(*) AS executions,
    sum(e.input_tokens) AS input_tokens,
    sum(e.output_tokens) AS output_tokens,
    sum(e.cache_read_tokens) AS cache_read_tokens,
    sum(e.cache_write_tokens) AS cache_write_tokens,
    round(sum(e.cost_usd), 6) AS cost_usd,
    coalesce(sum(e.cost_usd IS NULL AND coalesce(e.input_tokens, e.output_tokens, e.cache_read_tokens,
                                                 e.cache_write_tokens) IS NOT NULL), 0) AS unpriced
"""


def cost_report(db: Database, since: str | None = None, by: str = "agent", *,
                with_total: bool = False) -> list[dict]:
    """One row per agent, model or session (key named after `by`), most expensive first, and with
    with_total a last row keyed 'total' summing them (when there is any). Executions without any
    token or cost are left out."""
    if by not in GROUPINGS:
        raise InvalidInput(f"--by must be one of {', '.join(GROUPINGS)}, got {by!r}")
    clauses = ["(e.cost_usd IS NOT NULL OR coalesce(e.input_tokens, e.output_tokens,"
               " e.cache_read_tokens, e.cache_write_tokens) IS NOT NULL)"]
    params: list[object] = []
    if since:
        clauses.append("e.started_at >= ?")
        params.append(since)
    join = " LEFT JOIN orchestrations o ON o.id = e.orchestration_id" if by == "session" else ""
    found = rows(
        db,
        f"SELECT {GROUPINGS[by]} AS {by}, {_SUMS} FROM agent_executions e{join}"
        f" WHERE {' AND '.join(clauses)} GROUP BY 1"
        f" ORDER BY coalesce(sum(e.cost_usd), 0) DESC, executions DESC, 1",
        params,
    )
    return [*found, total(found, by)] if with_total and found else found


def total(found: list[dict], by: str) -> dict:
    """The sum of a cost report's rows, as one more row keyed 'total'."""
    result: dict = {by: "total"}
    for column in COST_COLUMNS:
        values = [r[column] for r in found if r[column] is not None]
        result[column] = (round(sum(values), 6) if column == "cost_usd" else sum(values)) if values else None
    return result
