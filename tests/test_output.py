from __future__ import annotations

from monitor.cli.output import render_rows


def test_table_columns_line_up_with_wide_and_combining_characters():
    rows = [{"agent_name": "审查员", "executions": 3}, {"agent_name": "café", "executions": 12},
            {"agent_name": "🚀-deployer", "executions": 1}]
    text = render_rows(rows, "table", ["agent_name", "executions"])
    assert text.splitlines() == [
        "agent name      executions",
        "------------  ------------",
        "审查员                   3",
        "café                    12",
        "🚀-deployer              1",
    ]


def test_empty_table_says_so_and_csv_keeps_its_header():
    assert render_rows([], "table", ["a"], empty="Nothing here.") == "Nothing here."
    assert render_rows([], "csv", ["a", "b_ms"]) == "a,b_ms"
    assert render_rows([], "json", ["a"]) == "[]"
