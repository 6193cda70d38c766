-- monitor's current schema. A new database is created from this file (migration 1);
-- an older database, including one made by the reference tool, is brought up to it by
-- the numbered migrations in monitor/migrations.py. Every statement is idempotent.
--
-- Timestamps are TEXT in one fixed-width UTC format, 'YYYY-MM-DDTHH:MM:SS.sssZ', so that
-- string order is time order. The *_normalize triggers rewrite any other format a foreign
-- writer stores (SQLite's datetime('now'), an ISO time with an offset, or a number of seconds or
-- milliseconds since 1970) into that one.

CREATE TABLE IF NOT EXISTS orchestrations (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id         TEXT    NOT NULL UNIQUE,
    task_description   TEXT,
    status             TEXT    NOT NULL DEFAULT 'running'
                       CHECK (status IN ('running', 'completed', 'failed', 'partial')),
    started_at         TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    completed_at       TEXT,
    duration_ms        INTEGER,
    total_tasks        INTEGER NOT NULL DEFAULT 0,
    completed_tasks    INTEGER NOT NULL DEFAULT 0,
    failed_tasks       INTEGER NOT NULL DEFAULT 0,
    git_commit_hash    TEXT,
    plan_file_path     TEXT,
    progress_file_path TEXT
);

CREATE TABLE IF NOT EXISTS agent_executions (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    orchestration_id    INTEGER REFERENCES orchestrations(id) ON DELETE CASCADE,
    agent_session_id    TEXT    NOT NULL UNIQUE,
    agent_name          TEXT    NOT NULL,
    task_id             TEXT,
    task_number         INTEGER,
    status              TEXT    NOT NULL DEFAULT 'in_progress'
                        CHECK (status IN ('in_progress', 'completed', 'failed')),
    started_at          TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    completed_at        TEXT,
    duration_ms         INTEGER,
    retry_count         INTEGER NOT NULL DEFAULT 0,
    self_healed         INTEGER NOT NULL DEFAULT 0,
    files_created       INTEGER NOT NULL DEFAULT 0,
    files_modified      INTEGER NOT NULL DEFAULT 0,
    error_message       TEXT,
    summary_report_path TEXT,
    session_log_path    TEXT,
    model               TEXT,
    input_tokens        INTEGER,
    output_tokens       INTEGER,
    cache_read_tokens   INTEGER,
    cache_write_tokens  INTEGER,
    cost_usd            REAL,
    exit_code           INTEGER
);

-- list, failures and health: time windows, newest first, optionally by status.
CREATE INDEX IF NOT EXISTS idx_orchestrations_started ON orchestrations (started_at);
CREATE INDEX IF NOT EXISTS idx_orchestrations_status_started ON orchestrations (status, started_at);
-- executions SESSION, show, export and the cascade from orchestrations.
CREATE INDEX IF NOT EXISTS idx_executions_orchestration ON agent_executions (orchestration_id, started_at);
-- health windows and cleanup of executions without an orchestration.
CREATE INDEX IF NOT EXISTS idx_executions_started ON agent_executions (started_at);
-- stale (in_progress) executions and failures --executions.
CREATE INDEX IF NOT EXISTS idx_executions_status_started ON agent_executions (status, started_at);
-- agent NAME and performance: per-agent counts and duration percentiles.
CREATE INDEX IF NOT EXISTS idx_executions_agent_duration ON agent_executions (agent_name, duration_ms);

CREATE TRIGGER IF NOT EXISTS orchestrations_normalize_insert
AFTER INSERT ON orchestrations
WHEN NEW.started_at NOT GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'
  OR NEW.completed_at NOT GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'
BEGIN
    UPDATE orchestrations
    SET started_at = CASE WHEN typeof(NEW.started_at) IN ('integer', 'real') OR (NEW.started_at GLOB '[0-9]*' AND NEW.started_at NOT GLOB '*[^0-9.]*')
            THEN strftime('%Y-%m-%dT%H:%M:%fZ', iif(abs(NEW.started_at) > 1e11, NEW.started_at / 1000.0, NEW.started_at), 'unixepoch')
            ELSE coalesce(strftime('%Y-%m-%dT%H:%M:%fZ', NEW.started_at), NEW.started_at) END,
        completed_at = CASE WHEN typeof(NEW.completed_at) IN ('integer', 'real') OR (NEW.completed_at GLOB '[0-9]*' AND NEW.completed_at NOT GLOB '*[^0-9.]*')
            THEN strftime('%Y-%m-%dT%H:%M:%fZ', iif(abs(NEW.completed_at) > 1e11, NEW.completed_at / 1000.0, NEW.completed_at), 'unixepoch')
            ELSE coalesce(strftime('%Y-%m-%dT%H:%M:%fZ', NEW.completed_at), NEW.completed_at) END
    WHERE id = NEW.id;
END;

CREATE TRIGGER IF NOT EXISTS orchestrations_normalize_update
AFTER UPDATE OF started_at, completed_at ON orchestrations
WHEN NEW.started_at NOT GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'
  OR NEW.completed_at NOT GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'
BEGIN
    UPDATE orchestrations
    SET started_at = CASE WHEN typeof(NEW.started_at) IN ('integer', 'real') OR (NEW.started_at GLOB '[0-9]*' AND NEW.started_at NOT GLOB '*[^0-9.]*')
            THEN strftime('%Y-%m-%dT%H:%M:%fZ', iif(abs(NEW.started_at) > 1e11, NEW.started_at / 1000.0, NEW.started_at), 'unixepoch')
            ELSE coalesce(strftime('%Y-%m-%dT%H:%M:%fZ', NEW.started_at), NEW.started_at) END,
        completed_at = CASE WHEN typeof(NEW.completed_at) IN ('integer', 'real') OR (NEW.completed_at GLOB '[0-9]*' AND NEW.completed_at NOT GLOB '*[^0-9.]*')
            THEN strftime('%Y-%m-%dT%H:%M:%fZ', iif(abs(NEW.completed_at) > 1e11, NEW.completed_at / 1000.0, NEW.completed_at), 'unixepoch')
            ELSE coalesce(strftime('%Y-%m-%dT%H:%M:%fZ', NEW.completed_at), NEW.completed_at) END
    WHERE id = NEW.id;
END;

CREATE TRIGGER IF NOT EXISTS agent_executions_normalize_insert
AFTER INSERT ON agent_executions
WHEN NEW.started_at NOT GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'
  OR NEW.completed_at NOT GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'
BEGIN
    UPDATE agent_executions
    SET started_at = CASE WHEN typeof(NEW.started_at) IN ('integer', 'real') OR (NEW.started_at GLOB '[0-9]*' AND NEW.started_at NOT GLOB '*[^0-9.]*')
            THEN strftime('%Y-%m-%dT%H:%M:%fZ', iif(abs(NEW.started_at) > 1e11, NEW.started_at / 1000.0, NEW.started_at), 'unixepoch')
            ELSE coalesce(strftime('%Y-%m-%dT%H:%M:%fZ', NEW.started_at), NEW.started_at) END,
        completed_at = CASE WHEN typeof(NEW.completed_at) IN ('integer', 'real') OR (NEW.completed_at GLOB '[0-9]*' AND NEW.completed_at NOT GLOB '*[^0-9.]*')
            THEN strftime('%Y-%m-%dT%H:%M:%fZ', iif(abs(NEW.completed_at) > 1e11, NEW.completed_at / 1000.0, NEW.completed_at), 'unixepoch')
            ELSE coalesce(strftime('%Y-%m-%dT%H:%M:%fZ', NEW.completed_at), NEW.completed_at) END
    WHERE id = NEW.id;
END;

CREATE TRIGGER IF NOT EXISTS agent_executions_normalize_update
AFTER UPDATE OF started_at, completed_at ON agent_executions
WHEN NEW.started_at NOT GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'
  OR NEW.completed_at NOT GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'
BEGIN
    UPDATE agent_executions
    SET started_at = CASE WHEN typeof(NEW.started_at) IN ('integer', 'real') OR (NEW.started_at GLOB '[0-9]*' AND NEW.started_at NOT GLOB '*[^0-9.]*')
            THEN strftime('%Y-%m-%dT%H:%M:%fZ', iif(abs(NEW.started_at) > 1e11, NEW.started_at / 1000.0, NEW.started_at), 'unixepoch')
            ELSE coalesce(strftime('%Y-%m-%dT%H:%M:%fZ', NEW.started_at), NEW.started_at) END,
        completed_at = CASE WHEN typeof(NEW.completed_at) IN ('integer', 'real') OR (NEW.completed_at GLOB '[0-9]*' AND NEW.completed_at NOT GLOB '*[^0-9.]*')
            THEN strftime('%Y-%m-%dT%H:%M:%fZ', iif(abs(NEW.completed_at) > 1e11, NEW.completed_at / 1000.0, NEW.completed_at), 'unixepoch')
            ELSE coalesce(strftime('%Y-%m-%dT%H:%M:%fZ', NEW.completed_at), NEW.completed_at) END
    WHERE id = NEW.id;
END;

-- The event log (migration 2): each execution's story along the way, in time order. type is
-- started, status_changed, llm_call, tool_call, output, error, retry, file, or any custom word;
-- payload is JSON. dedup_key makes a replayed event (a Claude Code hook run twice) a no-op.
-- A full-text index over message (events_fts) and over agent_executions.error_message
-- (errors_fts) is added by migration 2 when SQLite has FTS5.
CREATE TABLE IF NOT EXISTS events (
    id               INTEGER PRIMARY KEY,
    orchestration_id INTEGER REFERENCES orchestrations(id) ON DELETE CASCADE,
    execution_id     INTEGER REFERENCES agent_executions(id) ON DELETE CASCADE,
    timestamp        TEXT    NOT NULL,
    type             TEXT    NOT NULL,
    message          TEXT,
    payload          TEXT,
    dedup_key        TEXT    UNIQUE
);
-- logs SESSION (and the cascade from orchestrations).
CREATE INDEX IF NOT EXISTS idx_events_orchestration ON events (orchestration_id, timestamp);
-- logs of a stand-alone execution, --agent, and the cascade from agent_executions.
CREATE INDEX IF NOT EXISTS idx_events_execution ON events (execution_id, timestamp);

-- How far `monitor hook` has read each transcript, so a large one is never read twice.
CREATE TABLE IF NOT EXISTS transcript_offsets (
    path            TEXT    PRIMARY KEY,
    offset          INTEGER NOT NULL DEFAULT 0,
    last_message_id TEXT,
    updated_at      TEXT
) WITHOUT ROWID;

-- Per-agent running totals over every execution (migration 3), so that the all-time
-- `performance` report reads one row per agent instead of every execution. Kept current by
-- triggers on agent_executions that migration 3 generates (monitor/migrations.py: the column
-- list there and this table must agree); <col>_rows counts the executions where <col> is known,
-- so a total of nothing known stays NULL, as SQL's sum() would say.
CREATE TABLE IF NOT EXISTS agent_totals (
    agent_name              TEXT    PRIMARY KEY,
    executions              INTEGER NOT NULL DEFAULT 0,
    completed               INTEGER NOT NULL DEFAULT 0,
    failed                  INTEGER NOT NULL DEFAULT 0,
    in_progress             INTEGER NOT NULL DEFAULT 0,
    timed                   INTEGER NOT NULL DEFAULT 0,
    duration_ms             INTEGER NOT NULL DEFAULT 0,
    retries                 INTEGER NOT NULL DEFAULT 0,
    self_healed             INTEGER NOT NULL DEFAULT 0,
    files_created           INTEGER NOT NULL DEFAULT 0,
    files_modified          INTEGER NOT NULL DEFAULT 0,
    input_tokens            INTEGER NOT NULL DEFAULT 0,
    input_tokens_rows       INTEGER NOT NULL DEFAULT 0,
    output_tokens           INTEGER NOT NULL DEFAULT 0,
    output_tokens_rows      INTEGER NOT NULL DEFAULT 0,
    cache_read_tokens       INTEGER NOT NULL DEFAULT 0,
    cache_read_tokens_rows  INTEGER NOT NULL DEFAULT 0,
    cache_write_tokens      INTEGER NOT NULL DEFAULT 0,
    cache_write_tokens_rows INTEGER NOT NULL DEFAULT 0,
    cost_usd                REAL    NOT NULL DEFAULT 0,
    cost_usd_rows           INTEGER NOT NULL DEFAULT 0,
    unpriced                INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
