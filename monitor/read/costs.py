"""`cost`: tokens and dollars per agent, model or session, from the costs stored on executions.

Costs were computed when the usage was recorded (prices change; old costs do not). An execution
with tokens but no cost used a model without a price: it is counted as `unpriced`, not as $0.

By agent the sums come from the cost_rollup table (per UTC day, agent and model, and over all
time, kept by triggers on executions): all time reads one row per agent and model, a window reads
one row per day for its whole days and the executions themselves only for the part of its first
day that it covers. By session they come from the executions in the window (execution_usage).
By model they come from each LLM request's own model (llm_usage), which cost_rollup, keyed by each
execution's model, cannot give: all time from the model_totals roll-up (one row per model, kept by
triggers on llm_usage and on executions), a window from the requests and executions in it.
"""

from __future__ import annotations

from datetime import date, timedelta

from monitor.errors import InvalidInput
from monitor.read.queries import rows
from monitor.store.db import Database

GROUPINGS = {
    "agent": "r.agent_name",
    "model": "model",  # see _by_model
    "session": "o.session_id",
}
COST_COLUMNS = ["executions", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
                "cost_usd", "unpriced"]
#: The columns cost_rollup and the execution_usage view share, that a report sums.
_ROLLUP_COLUMNS = ("agent_name, model, executions, input_tokens, input_tokens_rows, output_tokens,"
                   " output_tokens_rows, cache_read_tokens, cache_read_tokens_rows, cache_write_tokens,"
                   " cache_write_tokens_rows, cost_usd, cost_usd_rows, unpriced")
#: Totals over rows `r` of those columns: a total of nothing known is NULL, as SQL's sum() says.
#: Reports order by the cost rounded as shown: a roll-up's running sum of costs added and taken
#: away keeps float residue (1e-17 where a recount says 0).
SUMS = """
    sum(r.executions) AS executions,
    CASE WHEN sum(r.input_tokens_rows) THEN sum(r.input_tokens) END AS input_tokens,
    CASE WHEN sum(r.output_tokens_rows) THEN sum(r.output_tokens) END AS output_tokens,
    CASE WHEN sum(r.cache_read_tokens_rows) THEN sum(r.cache_read_tokens) END AS cache_read_tokens,
    CASE WHEN sum(r.cache_write_tokens_rows) THEN sum(r.cache_write_tokens) END AS cache_write_tokens,
    round(CASE WHEN sum(r.cost_usd_rows) THEN sum(r.cost_usd) END, 6) AS cost_usd,
    sum(r.unpriced) AS unpriced
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
        found = _by_model(db, since)
        return [*found, total(found, by)] if with_total and found else found
    source, params = _session_source(since) if by == "session" else _rollup_source(since)
    found = rows(
        db,
        f"SELECT {GROUPINGS[by]} AS {by}, {SUMS} FROM {source} GROUP BY 1"
        " ORDER BY round(sum(r.cost_usd), 6) DESC, executions DESC, 1",
        params,
    )
    return [*found, total(found, by)] if with_total and found else found


def _by_model(db: Database, since: str | None) -> list[dict]:
    """By model, from each request's own model (llm_usage): all time from model_totals, a window
    from the rows themselves (cost_rollup's model is each execution's: see the module's docstring).
    model is None for requests and executions that name none."""
    if since is None:
        return rows(db, f"SELECT nullif(r.model, '') AS model, {SUMS} FROM model_totals r GROUP BY r.model"
                        " ORDER BY round(sum(r.cost_usd), 6) DESC, executions DESC, 1")
    sql = _BY_MODEL.format(since_u="AND e.started_at >= :since", since_e="AND e.started_at >= :since")
    return rows(
        db,
        f"SELECT model, count(DISTINCT execution_id) AS executions, sum(input_tokens) AS input_tokens,"
        f" sum(output_tokens) AS output_tokens, sum(cache_read_tokens) AS cache_read_tokens,"
        f" sum(cache_write_tokens) AS cache_write_tokens, round(sum(cost_usd), 6) AS cost_usd,"
        f" count(DISTINCT CASE WHEN unpriced THEN execution_id END) AS unpriced"
        f" FROM ({sql}) GROUP BY 1 ORDER BY round(coalesce(sum(cost_usd), 0), 6) DESC, executions DESC, 1",
        {"since": since},
    )


def _rollup_source(since: str | None) -> tuple[str, dict]:
    """Rows `r` to sum by agent or model: the all-time roll-up, or for a window its whole days
    from the roll-up and the executions of the part of its first day that it covers."""
    if since is None:
        return "cost_rollup r WHERE r.day = ''", {}
    first_day = first_whole_day(since)
    return (f"(SELECT {_ROLLUP_COLUMNS} FROM execution_usage WHERE started_at >= :since AND started_at < :midnight"
            f" UNION ALL SELECT {_ROLLUP_COLUMNS} FROM cost_rollup WHERE day >= :first_day) r",
            {"since": since, "midnight": f"{first_day}T00:00:00.000Z", "first_day": first_day})


def _session_source(since: str | None) -> tuple[str, dict]:
    window = " WHERE r.started_at >= :since" if since else ""
    return f"execution_usage r LEFT JOIN orchestrations o ON o.id = r.orchestration_id{window}", {"since": since}


def first_whole_day(since: str) -> str:
    """The first UTC day ('YYYY-MM-DD') that starts at or after a stored-format moment."""
    day = since[:10]
    if since[10:] == "T00:00:00.000Z":
        return day
    if day >= date.max.isoformat():  # no day follows 9999-12-31: a key after every day
        return day + "~"
    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()


def total(found: list[dict], by: str) -> dict:
    """The sum of a cost report's rows, as one more row keyed 'total'."""
    result: dict = {by: "total"}
    for column in COST_COLUMNS:
        values = [r[column] for r in found if r[column] is not None]
        result[column] = (round(sum(values), 6) if column == "cost_usd" else sum(values)) if values else None
    return result
