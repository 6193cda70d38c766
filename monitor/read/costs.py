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


#: Per request and model: every llm_usage row, and each execution without any (recorded with its
#: totals only: the Python API's complete_agent_execution) as one row of its own model.
_BY_MODEL = """
SELECT u.model AS model, u.execution_id AS execution_id, u.input_tokens AS input_tokens,
       u.output_tokens AS output_tokens, u.cache_read_tokens AS cache_read_tokens,
       u.cache_write_tokens + u.cache_write_1h_tokens AS cache_write_tokens, u.cost_usd AS cost_usd,
       u.cost_usd IS NULL AS unpriced
FROM llm_usage u JOIN agent_executions e ON e.id = u.execution_id
WHERE 1 = 1 {since_u}
UNION ALL
SELECT e.model, e.id, e.input_tokens, e.output_tokens, e.cache_read_tokens, e.cache_write_tokens, e.cost_usd,
       e.cost_usd IS NULL AND coalesce(e.input_tokens, e.output_tokens, e.cache_read_tokens,
                                       e.cache_write_tokens) IS NOT NULL
FROM agent_executions e
WHERE (e.cost_usd IS NOT NULL OR coalesce(e.input_tokens, e.output_tokens, e.cache_read_tokens,
                                          e.cache_write_tokens) IS NOT NULL)
  AND NOT EXISTS (SELECT 1 FROM llm_usage u WHERE u.execution_id = e.id) {since_e}
"""


def cost_report(db: Database, since: str | None = None, by: str = "agent", *,
                with_total: bool = False) -> list[dict]:
    """One row per agent, model or session (key named after `by`), most expensive first, and with
    with_total a last row keyed 'total' summing them (when there is any). Executions without any
    token or cost are left out. By model, each request counts under its own model (a session
    that switched models is split); `executions` counts the executions that used the model, and
    `unpriced` those with usage of it that has no price."""
    if by not in GROUPINGS:
        raise InvalidInput(f"--by must be one of {', '.join(GROUPINGS)}, got {by!r}")
    if by == "model":
        sql = _BY_MODEL.format(since_u="AND e.started_at >= :since" if since else "",
                               since_e="AND e.started_at >= :since" if since else "")
        found = rows(
            db,
            f"SELECT model, count(DISTINCT execution_id) AS executions, sum(input_tokens) AS input_tokens,"
            f" sum(output_tokens) AS output_tokens, sum(cache_read_tokens) AS cache_read_tokens,"
            f" sum(cache_write_tokens) AS cache_write_tokens, round(sum(cost_usd), 6) AS cost_usd,"
            f" count(DISTINCT CASE WHEN unpriced THEN execution_id END) AS unpriced"
            f" FROM ({sql}) GROUP BY 1 ORDER BY coalesce(sum(cost_usd), 0) DESC, executions DESC, 1",
            {"since": since},
        )
        return [*found, total(found, by)] if with_total and found else found
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
