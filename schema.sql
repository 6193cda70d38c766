-- monitor's schema: every table, index, trigger, view and full-text index a new database gets.
-- A new database is created from this file; an older one (made by an earlier monitor, or by the
-- reference tool) is brought to exactly this by monitor/store/migrations.py, the only other place
-- that says how to get here. tests/test_schema.py compares the two, object by object.
-- Every statement is idempotent (IF NOT EXISTS). Statements that name an *_fts table need SQLite's
-- FTS5 and are skipped where it is missing (search then falls back to LIKE).
--
-- Ids are INTEGER PRIMARY KEYs. uuid is the id a row had in the reference tool's database (a UUID
-- v4 string), kept when monitor adopted that file; NULL for rows monitor made.
-- Timestamps are TEXT in one fixed-width UTC format, 'YYYY-MM-DDTHH:MM:SS.sssZ', so that
-- string order is time order. The *_normalize triggers rewrite any other format a foreign
-- writer stores (SQLite's datetime('now'), an ISO time with an offset, or a number of seconds or
-- milliseconds since 1970) into that one.

-- Orchestrations: one session of a multi-agent workflow each, named by its session_id. Its status
-- and task counts follow its executions.
-- Columns:
--   id                 monitor's row id
--   uuid               the row's id in a reference-tool database monitor adopted (NULL otherwise)
--   session_id         the orchestration's name: a CI run, a Claude Code session, `--session`
--   task_description   what the orchestration was asked to do
--   status             running, completed, failed, or partial (some executions failed, some did not)
--   started_at         when it started (UTC)
--   completed_at       when it ended (UTC); NULL while running
--   duration_ms        completed_at - started_at, in milliseconds
--   total_tasks        tasks it has: as many as planned, or as its executions finished if more
--   completed_tasks    tasks that completed
--   failed_tasks       tasks that failed
--   git_commit_hash    HEAD of the git work tree it ran in
--   plan_file_path     its plan file, if any
--   progress_file_path its progress file, if any
--   created_at         when monitor wrote the row (UTC)
CREATE TABLE IF NOT EXISTS orchestrations (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid               TEXT    UNIQUE,
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
    progress_file_path TEXT,
    created_at         TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- Agent executions: one run of one agent each, named by its agent_session_id, inside an
-- orchestration or on its own. Tokens and cost are the sums of its llm_usage rows when it has any.
-- Columns:
--   id                  monitor's row id
--   uuid                the row's id in a reference-tool database monitor adopted (NULL otherwise)
--   orchestration_id    the orchestration it belongs to (NULL: a lone execution)
--   agent_session_id    the execution's name
--   agent_name          the agent that ran: planner, tests, a Claude Code subagent type
--   task_id             the task it worked on, as its orchestrator names it
--   task_number         the task's number in its orchestration
--   status              in_progress, completed or failed
--   started_at          when it started (UTC)
--   completed_at        when it ended (UTC); NULL while in progress
--   duration_ms         completed_at - started_at, in milliseconds
--   retry_count         retries it needed
--   self_healed         1 when it recovered from an error by itself
--   files_created       files it created
--   files_modified      files it modified
--   error_message       why it failed (a command's last stderr lines), secrets redacted
--   summary_report_path its summary report, if any
--   session_log_path    its session log (a Claude Code transcript), if any
--   model               the LLM model it used (the last one, if it switched)
--   input_tokens        input tokens, all requests together
--   output_tokens       output tokens
--   cache_read_tokens   tokens read from the prompt cache
--   cache_write_tokens  tokens written to the prompt cache
--   cost_usd            its cost in US dollars; NULL when its model has no known price
--   exit_code           the exit code of the command `monitor run` ran
--   created_at          when monitor wrote the row (UTC)
--   runner_pid          the `monitor run` process recording it (to tell when it was killed)
--   runner_host         that process's host
--   runner_start        when that process started (boot id and start tick on Linux)
CREATE TABLE IF NOT EXISTS agent_executions (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid                TEXT    UNIQUE,
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
    exit_code           INTEGER,
    created_at          TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    -- The `monitor run` process that records this execution (migration 8): its pid, its host, and
    -- when it started (on Linux, the boot id and the start tick), so that a later command on the
    -- same host can tell it was killed (its pid gone, or reused by another process) while the
    -- execution is still in progress. NULL for executions recorded otherwise.
    runner_pid          INTEGER,
    runner_host         TEXT,
    runner_start        TEXT
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
-- One agent over a window: agent NAME --since, executions --agent --since (an equality and a
-- range on one index, which no statistics can make look worse than the agent or time index).
CREATE INDEX IF NOT EXISTS idx_executions_agent_started ON agent_executions (agent_name, started_at);
-- The agent_model_totals triggers' search for an agent's latest success once the row that held it
-- is deleted or changed: without it each such search read all of the agent's executions.
CREATE INDEX IF NOT EXISTS idx_executions_agent_success ON agent_executions (agent_name, completed_at)
    WHERE status = 'completed';
-- `monitor run --breaker 5/30m`: an agent's failures within a window (migration 11), found without
-- reading its other executions.
CREATE INDEX IF NOT EXISTS idx_executions_agent_failed ON agent_executions (agent_name, completed_at)
    WHERE status = 'failed';

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
-- Columns:
--   orchestration_id  the orchestration it belongs to
--   execution_id      the execution it belongs to (NULL: the orchestration's own)
--   timestamp         when it happened (UTC)
--   type              started, status_changed, llm_call, tool_call, output, error, retry, file, ...
--   message           what happened, in a line (secrets redacted); searchable
--   payload           details as JSON
--   dedup_key         what makes a replayed event a no-op
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
-- search --since: where the window starts in the event log (its first id), so that a full-text
-- search reads the window's matches only.
CREATE INDEX IF NOT EXISTS idx_events_timestamp ON events (timestamp);

-- What `monitor alert` last notified for each rule (migration 5), so that the same alert is not
-- sent again within --repeat, a rule going from warn to fail escalates, and one that recovers is
-- resolved once. key is the scope and the rule: 'window success_rate', 'session ci-1 cost'.
CREATE TABLE IF NOT EXISTS alert_state (
    key     TEXT PRIMARY KEY,
    status  TEXT NOT NULL,
    message TEXT,
    sent_at TEXT NOT NULL
) WITHOUT ROWID;

-- How far `monitor hook` has read each transcript, so a large one is never read twice.
CREATE TABLE IF NOT EXISTS transcript_offsets (
    path            TEXT    PRIMARY KEY,
    offset          INTEGER NOT NULL DEFAULT 0,
    last_message_id TEXT,
    updated_at      TEXT
) WITHOUT ROWID;

-- Whose each transcript is (migration 6): the execution a hook read it for, and when it last did,
-- so that the next command reads what a transcript gained after its session's last hook.
CREATE TABLE IF NOT EXISTS transcript_owners (
    path         TEXT    PRIMARY KEY,
    execution_id INTEGER NOT NULL REFERENCES agent_executions(id) ON DELETE CASCADE,
    read_at      TEXT    NOT NULL
) WITHOUT ROWID;
-- transcripts read lately (the next command's catch-up), and the cascade from agent_executions.
CREATE INDEX IF NOT EXISTS idx_transcript_owners_read ON transcript_owners (read_at);
CREATE INDEX IF NOT EXISTS idx_transcript_owners_execution ON transcript_owners (execution_id);

-- Tokens and cost per LLM request (migration 6): one row per execution and message (a Claude Code
-- transcript's message.id, else its requestId; `call:<event id>` for Tracker.record_llm_call),
-- updated in place while a message's lines come in (the last line's counts are the message's).
-- An execution's token and cost columns are the sums of its rows. cache_write_tokens are
-- 5-minute cache writes, cache_write_1h_tokens 1-hour ones. source says where the counts came
-- from: 'transcript', 'agent_result' (a subagent's last request, counted from the Agent tool's
-- result), 'agent_result_pending' (that result, before its transcript line was read), 'api'.
-- cost_usd is NULL when the model had no price; priced_with names the price sources last tried.
CREATE TABLE IF NOT EXISTS llm_usage (
    execution_id          INTEGER NOT NULL REFERENCES agent_executions(id) ON DELETE CASCADE,
    message_id            TEXT    NOT NULL,
    model                 TEXT,
    timestamp             TEXT,
    input_tokens          INTEGER NOT NULL DEFAULT 0,
    output_tokens         INTEGER NOT NULL DEFAULT 0,
    cache_read_tokens     INTEGER NOT NULL DEFAULT 0,
    cache_write_tokens    INTEGER NOT NULL DEFAULT 0,
    cache_write_1h_tokens INTEGER NOT NULL DEFAULT 0,
    calls                 INTEGER NOT NULL DEFAULT 1,
    cost_usd              REAL,
    source                TEXT    NOT NULL DEFAULT 'transcript',
    priced_with           TEXT,
    PRIMARY KEY (execution_id, message_id)
) WITHOUT ROWID;
-- usage still without a price (priced once a price is known).
CREATE INDEX IF NOT EXISTS idx_llm_usage_unpriced ON llm_usage (priced_with) WHERE cost_usd IS NULL;
-- The model_totals triggers' question "has this execution another request (another unpriced
-- request) of this model?", answered by one seek (the triggers name them: with no statistics SQLite
-- would take the primary key and read all of the execution's requests for each one, 72 million
-- rows for a session of 12,000).
CREATE INDEX IF NOT EXISTS idx_llm_usage_model ON llm_usage (execution_id, coalesce(model, ''));
CREATE INDEX IF NOT EXISTS idx_llm_usage_unpriced_model ON llm_usage (execution_id, coalesce(model, ''))
    WHERE cost_usd IS NULL;

-- How far each claimed spool file has been ingested (migration 8). What a hook or `monitor run`
-- could not write while the database was locked waits in monitoring.db.spool; a writer claims
-- that file by renaming it (monitoring.db.spool.<claim>), then records its lines in order, moving
-- the offset in the same transaction as the rows: each line is recorded once, whoever crashes.
CREATE TABLE IF NOT EXISTS spool_offsets (
    name       TEXT    PRIMARY KEY,
    offset     INTEGER NOT NULL,
    updated_at TEXT    NOT NULL
) WITHOUT ROWID;

-- Per-agent running totals over every execution, so that the all-time `performance` report
-- reads one row per agent instead of every execution. Kept current by the agent_totals_*
-- triggers below; <col>_rows counts the executions where <col> is known, so a total of nothing
-- known stays NULL, as SQL's sum() would say.
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

CREATE TRIGGER IF NOT EXISTS agent_totals_insert AFTER INSERT ON agent_executions BEGIN
    INSERT OR IGNORE INTO agent_totals (agent_name) VALUES (NEW.agent_name);
    UPDATE agent_totals SET
        executions = executions + 1,
        completed = completed + (NEW.status = 'completed'),
        failed = failed + (NEW.status = 'failed'),
        in_progress = in_progress + (NEW.status = 'in_progress'),
        timed = timed + (NEW.duration_ms IS NOT NULL),
        duration_ms = duration_ms + (coalesce(NEW.duration_ms, 0)),
        retries = retries + (coalesce(NEW.retry_count, 0)),
        self_healed = self_healed + (coalesce(NEW.self_healed, 0)),
        files_created = files_created + (coalesce(NEW.files_created, 0)),
        files_modified = files_modified + (coalesce(NEW.files_modified, 0)),
        input_tokens = input_tokens + (coalesce(NEW.input_tokens, 0)),
        input_tokens_rows = input_tokens_rows + (NEW.input_tokens IS NOT NULL),
        output_tokens = output_tokens + (coalesce(NEW.output_tokens, 0)),
        output_tokens_rows = output_tokens_rows + (NEW.output_tokens IS NOT NULL),
        cache_read_tokens = cache_read_tokens + (coalesce(NEW.cache_read_tokens, 0)),
        cache_read_tokens_rows = cache_read_tokens_rows + (NEW.cache_read_tokens IS NOT NULL),
        cache_write_tokens = cache_write_tokens + (coalesce(NEW.cache_write_tokens, 0)),
        cache_write_tokens_rows = cache_write_tokens_rows + (NEW.cache_write_tokens IS NOT NULL),
        cost_usd = cost_usd + (coalesce(NEW.cost_usd, 0)),
        cost_usd_rows = cost_usd_rows + (NEW.cost_usd IS NOT NULL),
        unpriced = unpriced + (NEW.cost_usd IS NULL AND coalesce(NEW.input_tokens, NEW.output_tokens, NEW.cache_read_tokens, NEW.cache_write_tokens) IS NOT NULL)
    WHERE agent_name = NEW.agent_name;
END;

CREATE TRIGGER IF NOT EXISTS agent_totals_delete AFTER DELETE ON agent_executions BEGIN
    UPDATE agent_totals SET
        executions = executions - 1,
        completed = completed - (OLD.status = 'completed'),
        failed = failed - (OLD.status = 'failed'),
        in_progress = in_progress - (OLD.status = 'in_progress'),
        timed = timed - (OLD.duration_ms IS NOT NULL),
        duration_ms = duration_ms - (coalesce(OLD.duration_ms, 0)),
        retries = retries - (coalesce(OLD.retry_count, 0)),
        self_healed = self_healed - (coalesce(OLD.self_healed, 0)),
        files_created = files_created - (coalesce(OLD.files_created, 0)),
        files_modified = files_modified - (coalesce(OLD.files_modified, 0)),
        input_tokens = input_tokens - (coalesce(OLD.input_tokens, 0)),
        input_tokens_rows = input_tokens_rows - (OLD.input_tokens IS NOT NULL),
        output_tokens = output_tokens - (coalesce(OLD.output_tokens, 0)),
        output_tokens_rows = output_tokens_rows - (OLD.output_tokens IS NOT NULL),
        cache_read_tokens = cache_read_tokens - (coalesce(OLD.cache_read_tokens, 0)),
        cache_read_tokens_rows = cache_read_tokens_rows - (OLD.cache_read_tokens IS NOT NULL),
        cache_write_tokens = cache_write_tokens - (coalesce(OLD.cache_write_tokens, 0)),
        cache_write_tokens_rows = cache_write_tokens_rows - (OLD.cache_write_tokens IS NOT NULL),
        cost_usd = cost_usd - (coalesce(OLD.cost_usd, 0)),
        cost_usd_rows = cost_usd_rows - (OLD.cost_usd IS NOT NULL),
        unpriced = unpriced - (OLD.cost_usd IS NULL AND coalesce(OLD.input_tokens, OLD.output_tokens, OLD.cache_read_tokens, OLD.cache_write_tokens) IS NOT NULL)
    WHERE agent_name = OLD.agent_name;
    DELETE FROM agent_totals WHERE agent_name = OLD.agent_name AND executions = 0;
END;

-- An update that keeps the agent: one statement adding the difference.
CREATE TRIGGER IF NOT EXISTS agent_totals_update AFTER UPDATE OF
    status, duration_ms, retry_count, self_healed, files_created, files_modified,
    input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd
ON agent_executions WHEN OLD.agent_name = NEW.agent_name BEGIN
    UPDATE agent_totals SET
        completed = completed + (NEW.status = 'completed') - (OLD.status = 'completed'),
        failed = failed + (NEW.status = 'failed') - (OLD.status = 'failed'),
        in_progress = in_progress + (NEW.status = 'in_progress') - (OLD.status = 'in_progress'),
        timed = timed + (NEW.duration_ms IS NOT NULL) - (OLD.duration_ms IS NOT NULL),
        duration_ms = duration_ms + coalesce(NEW.duration_ms, 0) - coalesce(OLD.duration_ms, 0),
        retries = retries + coalesce(NEW.retry_count, 0) - coalesce(OLD.retry_count, 0),
        self_healed = self_healed + coalesce(NEW.self_healed, 0) - coalesce(OLD.self_healed, 0),
        files_created = files_created + coalesce(NEW.files_created, 0) - coalesce(OLD.files_created, 0),
        files_modified = files_modified + coalesce(NEW.files_modified, 0) - coalesce(OLD.files_modified, 0),
        input_tokens = input_tokens + coalesce(NEW.input_tokens, 0) - coalesce(OLD.input_tokens, 0),
        input_tokens_rows = input_tokens_rows + (NEW.input_tokens IS NOT NULL) - (OLD.input_tokens IS NOT NULL),
        output_tokens = output_tokens + coalesce(NEW.output_tokens, 0) - coalesce(OLD.output_tokens, 0),
        output_tokens_rows = output_tokens_rows + (NEW.output_tokens IS NOT NULL) - (OLD.output_tokens IS NOT NULL),
        cache_read_tokens = cache_read_tokens + coalesce(NEW.cache_read_tokens, 0) - coalesce(OLD.cache_read_tokens, 0),
        cache_read_tokens_rows = cache_read_tokens_rows + (NEW.cache_read_tokens IS NOT NULL) - (OLD.cache_read_tokens IS NOT NULL),
        cache_write_tokens = cache_write_tokens + coalesce(NEW.cache_write_tokens, 0) - coalesce(OLD.cache_write_tokens, 0),
        cache_write_tokens_rows = cache_write_tokens_rows + (NEW.cache_write_tokens IS NOT NULL) - (OLD.cache_write_tokens IS NOT NULL),
        cost_usd = cost_usd + coalesce(NEW.cost_usd, 0) - coalesce(OLD.cost_usd, 0),
        cost_usd_rows = cost_usd_rows + (NEW.cost_usd IS NOT NULL) - (OLD.cost_usd IS NOT NULL),
        unpriced = unpriced + (NEW.cost_usd IS NULL AND coalesce(NEW.input_tokens, NEW.output_tokens, NEW.cache_read_tokens, NEW.cache_write_tokens) IS NOT NULL) - (OLD.cost_usd IS NULL AND coalesce(OLD.input_tokens, OLD.output_tokens, OLD.cache_read_tokens, OLD.cache_write_tokens) IS NOT NULL)
    WHERE agent_name = NEW.agent_name;
END;

-- An update that moves the execution to another agent: out of the old one's totals, into the new one's.
CREATE TRIGGER IF NOT EXISTS agent_totals_move AFTER UPDATE OF
    agent_name, status, duration_ms, retry_count, self_healed, files_created, files_modified,
    input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd
ON agent_executions WHEN OLD.agent_name IS NOT NEW.agent_name BEGIN
    UPDATE agent_totals SET
        executions = executions - 1,
        completed = completed - (OLD.status = 'completed'),
        failed = failed - (OLD.status = 'failed'),
        in_progress = in_progress - (OLD.status = 'in_progress'),
        timed = timed - (OLD.duration_ms IS NOT NULL),
        duration_ms = duration_ms - (coalesce(OLD.duration_ms, 0)),
        retries = retries - (coalesce(OLD.retry_count, 0)),
        self_healed = self_healed - (coalesce(OLD.self_healed, 0)),
        files_created = files_created - (coalesce(OLD.files_created, 0)),
        files_modified = files_modified - (coalesce(OLD.files_modified, 0)),
        input_tokens = input_tokens - (coalesce(OLD.input_tokens, 0)),
        input_tokens_rows = input_tokens_rows - (OLD.input_tokens IS NOT NULL),
        output_tokens = output_tokens - (coalesce(OLD.output_tokens, 0)),
        output_tokens_rows = output_tokens_rows - (OLD.output_tokens IS NOT NULL),
        cache_read_tokens = cache_read_tokens - (coalesce(OLD.cache_read_tokens, 0)),
        cache_read_tokens_rows = cache_read_tokens_rows - (OLD.cache_read_tokens IS NOT NULL),
        cache_write_tokens = cache_write_tokens - (coalesce(OLD.cache_write_tokens, 0)),
        cache_write_tokens_rows = cache_write_tokens_rows - (OLD.cache_write_tokens IS NOT NULL),
        cost_usd = cost_usd - (coalesce(OLD.cost_usd, 0)),
        cost_usd_rows = cost_usd_rows - (OLD.cost_usd IS NOT NULL),
        unpriced = unpriced - (OLD.cost_usd IS NULL AND coalesce(OLD.input_tokens, OLD.output_tokens, OLD.cache_read_tokens, OLD.cache_write_tokens) IS NOT NULL)
    WHERE agent_name = OLD.agent_name;
    DELETE FROM agent_totals WHERE agent_name = OLD.agent_name AND executions = 0;
    INSERT OR IGNORE INTO agent_totals (agent_name) VALUES (NEW.agent_name);
    UPDATE agent_totals SET
        executions = executions + 1,
        completed = completed + (NEW.status = 'completed'),
        failed = failed + (NEW.status = 'failed'),
        in_progress = in_progress + (NEW.status = 'in_progress'),
        timed = timed + (NEW.duration_ms IS NOT NULL),
        duration_ms = duration_ms + (coalesce(NEW.duration_ms, 0)),
        retries = retries + (coalesce(NEW.retry_count, 0)),
        self_healed = self_healed + (coalesce(NEW.self_healed, 0)),
        files_created = files_created + (coalesce(NEW.files_created, 0)),
        files_modified = files_modified + (coalesce(NEW.files_modified, 0)),
        input_tokens = input_tokens + (coalesce(NEW.input_tokens, 0)),
        input_tokens_rows = input_tokens_rows + (NEW.input_tokens IS NOT NULL),
        output_tokens = output_tokens + (coalesce(NEW.output_tokens, 0)),
        output_tokens_rows = output_tokens_rows + (NEW.output_tokens IS NOT NULL),
        cache_read_tokens = cache_read_tokens + (coalesce(NEW.cache_read_tokens, 0)),
        cache_read_tokens_rows = cache_read_tokens_rows + (NEW.cache_read_tokens IS NOT NULL),
        cache_write_tokens = cache_write_tokens + (coalesce(NEW.cache_write_tokens, 0)),
        cache_write_tokens_rows = cache_write_tokens_rows + (NEW.cache_write_tokens IS NOT NULL),
        cost_usd = cost_usd + (coalesce(NEW.cost_usd, 0)),
        cost_usd_rows = cost_usd_rows + (NEW.cost_usd IS NOT NULL),
        unpriced = unpriced + (NEW.cost_usd IS NULL AND coalesce(NEW.input_tokens, NEW.output_tokens, NEW.cache_read_tokens, NEW.cache_write_tokens) IS NOT NULL)
    WHERE agent_name = NEW.agent_name;
END;

-- What agent_totals must hold, counted from the executions themselves: migrations refill
-- agent_totals from it after a bulk change, and tests compare the two.
CREATE VIEW IF NOT EXISTS agent_totals_recount AS
SELECT
    R.agent_name AS agent_name,
    count(*) AS executions,
    sum(R.status = 'completed') AS completed,
    sum(R.status = 'failed') AS failed,
    sum(R.status = 'in_progress') AS in_progress,
    sum(R.duration_ms IS NOT NULL) AS timed,
    sum(coalesce(R.duration_ms, 0)) AS duration_ms,
    sum(coalesce(R.retry_count, 0)) AS retries,
    sum(coalesce(R.self_healed, 0)) AS self_healed,
    sum(coalesce(R.files_created, 0)) AS files_created,
    sum(coalesce(R.files_modified, 0)) AS files_modified,
    sum(coalesce(R.input_tokens, 0)) AS input_tokens,
    sum(R.input_tokens IS NOT NULL) AS input_tokens_rows,
    sum(coalesce(R.output_tokens, 0)) AS output_tokens,
    sum(R.output_tokens IS NOT NULL) AS output_tokens_rows,
    sum(coalesce(R.cache_read_tokens, 0)) AS cache_read_tokens,
    sum(R.cache_read_tokens IS NOT NULL) AS cache_read_tokens_rows,
    sum(coalesce(R.cache_write_tokens, 0)) AS cache_write_tokens,
    sum(R.cache_write_tokens IS NOT NULL) AS cache_write_tokens_rows,
    sum(coalesce(R.cost_usd, 0)) AS cost_usd,
    sum(R.cost_usd IS NOT NULL) AS cost_usd_rows,
    sum(R.cost_usd IS NULL AND coalesce(R.input_tokens, R.output_tokens, R.cache_read_tokens, R.cache_write_tokens) IS NOT NULL) AS unpriced
FROM agent_executions AS R
GROUP BY R.agent_name;

-- Orchestrations by status, for `monitor metrics`: kept by the orchestration_totals_* triggers;
-- orchestration_totals_recount is what it must hold.
CREATE TABLE IF NOT EXISTS orchestration_totals (
    status         TEXT    PRIMARY KEY,
    orchestrations INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

CREATE TRIGGER IF NOT EXISTS orchestration_totals_insert AFTER INSERT ON orchestrations BEGIN
    INSERT OR IGNORE INTO orchestration_totals (status) VALUES (NEW.status);
    UPDATE orchestration_totals SET orchestrations = orchestrations + 1 WHERE status = NEW.status;
END;

CREATE TRIGGER IF NOT EXISTS orchestration_totals_delete AFTER DELETE ON orchestrations BEGIN
    UPDATE orchestration_totals SET orchestrations = orchestrations - 1 WHERE status = OLD.status;
    DELETE FROM orchestration_totals WHERE status = OLD.status AND orchestrations = 0;
END;

CREATE TRIGGER IF NOT EXISTS orchestration_totals_update AFTER UPDATE OF status ON orchestrations
WHEN OLD.status IS NOT NEW.status
BEGIN
    UPDATE orchestration_totals SET orchestrations = orchestrations - 1 WHERE status = OLD.status;
    DELETE FROM orchestration_totals WHERE status = OLD.status AND orchestrations = 0;
    INSERT OR IGNORE INTO orchestration_totals (status) VALUES (NEW.status);
    UPDATE orchestration_totals SET orchestrations = orchestrations + 1 WHERE status = NEW.status;
END;

-- What orchestration_totals must hold, counted from the orchestrations themselves.
CREATE VIEW IF NOT EXISTS orchestration_totals_recount AS
SELECT R.status AS status, count(*) AS orchestrations FROM orchestrations AS R GROUP BY R.status;

-- Per agent and model running totals for `monitor metrics` (a Prometheus scrape reads these few
-- rows instead of every execution): executions, the duration histogram's cumulative buckets
-- (le_<N>s: finished executions that took N seconds or less; +Inf is agent_totals.timed), tokens,
-- cost, and the latest completion of a completed execution. model is '' for executions that name
-- none. Kept by the agent_model_totals_* triggers; agent_model_totals_recount is what it must hold.
CREATE TABLE IF NOT EXISTS agent_model_totals (
    agent_name         TEXT    NOT NULL,
    model              TEXT    NOT NULL,
    executions         INTEGER NOT NULL DEFAULT 0,
    le_1s              INTEGER NOT NULL DEFAULT 0,
    le_5s              INTEGER NOT NULL DEFAULT 0,
    le_10s             INTEGER NOT NULL DEFAULT 0,
    le_30s             INTEGER NOT NULL DEFAULT 0,
    le_60s             INTEGER NOT NULL DEFAULT 0,
    le_120s            INTEGER NOT NULL DEFAULT 0,
    le_300s            INTEGER NOT NULL DEFAULT 0,
    le_600s            INTEGER NOT NULL DEFAULT 0,
    le_1800s           INTEGER NOT NULL DEFAULT 0,
    le_3600s           INTEGER NOT NULL DEFAULT 0,
    input_tokens       INTEGER NOT NULL DEFAULT 0,
    output_tokens      INTEGER NOT NULL DEFAULT 0,
    cache_read_tokens  INTEGER NOT NULL DEFAULT 0,
    cache_write_tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd           REAL    NOT NULL DEFAULT 0,
    last_success_at    TEXT,
    PRIMARY KEY (agent_name, model)
) WITHOUT ROWID;

CREATE TRIGGER IF NOT EXISTS agent_model_totals_insert AFTER INSERT ON agent_executions BEGIN
    INSERT OR IGNORE INTO agent_model_totals (agent_name, model) VALUES (NEW.agent_name, coalesce(NEW.model, ''));
    UPDATE agent_model_totals SET
        executions = executions + 1,
        le_1s = le_1s + coalesce(NEW.duration_ms <= 1000, 0),
        le_5s = le_5s + coalesce(NEW.duration_ms <= 5000, 0),
        le_10s = le_10s + coalesce(NEW.duration_ms <= 10000, 0),
        le_30s = le_30s + coalesce(NEW.duration_ms <= 30000, 0),
        le_60s = le_60s + coalesce(NEW.duration_ms <= 60000, 0),
        le_120s = le_120s + coalesce(NEW.duration_ms <= 120000, 0),
        le_300s = le_300s + coalesce(NEW.duration_ms <= 300000, 0),
        le_600s = le_600s + coalesce(NEW.duration_ms <= 600000, 0),
        le_1800s = le_1800s + coalesce(NEW.duration_ms <= 1800000, 0),
        le_3600s = le_3600s + coalesce(NEW.duration_ms <= 3600000, 0),
        input_tokens = input_tokens + coalesce(NEW.input_tokens, 0),
        output_tokens = output_tokens + coalesce(NEW.output_tokens, 0),
        cache_read_tokens = cache_read_tokens + coalesce(NEW.cache_read_tokens, 0),
        cache_write_tokens = cache_write_tokens + coalesce(NEW.cache_write_tokens, 0),
        cost_usd = cost_usd + coalesce(NEW.cost_usd, 0),
        last_success_at = CASE WHEN NEW.status = 'completed' AND NEW.completed_at IS NOT NULL
            AND coalesce(NEW.completed_at > last_success_at, 1) THEN NEW.completed_at ELSE last_success_at END
    WHERE agent_name = NEW.agent_name AND model = coalesce(NEW.model, '');
END;

CREATE TRIGGER IF NOT EXISTS agent_model_totals_delete AFTER DELETE ON agent_executions BEGIN
    UPDATE agent_model_totals SET
        executions = executions - 1,
        le_1s = le_1s - coalesce(OLD.duration_ms <= 1000, 0),
        le_5s = le_5s - coalesce(OLD.duration_ms <= 5000, 0),
        le_10s = le_10s - coalesce(OLD.duration_ms <= 10000, 0),
        le_30s = le_30s - coalesce(OLD.duration_ms <= 30000, 0),
        le_60s = le_60s - coalesce(OLD.duration_ms <= 60000, 0),
        le_120s = le_120s - coalesce(OLD.duration_ms <= 120000, 0),
        le_300s = le_300s - coalesce(OLD.duration_ms <= 300000, 0),
        le_600s = le_600s - coalesce(OLD.duration_ms <= 600000, 0),
        le_1800s = le_1800s - coalesce(OLD.duration_ms <= 1800000, 0),
        le_3600s = le_3600s - coalesce(OLD.duration_ms <= 3600000, 0),
        input_tokens = input_tokens - coalesce(OLD.input_tokens, 0),
        output_tokens = output_tokens - coalesce(OLD.output_tokens, 0),
        cache_read_tokens = cache_read_tokens - coalesce(OLD.cache_read_tokens, 0),
        cache_write_tokens = cache_write_tokens - coalesce(OLD.cache_write_tokens, 0),
        cost_usd = cost_usd - coalesce(OLD.cost_usd, 0),
        last_success_at = CASE WHEN OLD.status = 'completed' AND OLD.completed_at = last_success_at
            THEN (SELECT max(completed_at) FROM agent_executions WHERE agent_name = OLD.agent_name
                  AND coalesce(model, '') = coalesce(OLD.model, '') AND status = 'completed' AND id != OLD.id)
            ELSE last_success_at END
    WHERE agent_name = OLD.agent_name AND model = coalesce(OLD.model, '');
    DELETE FROM agent_model_totals WHERE agent_name = OLD.agent_name AND model = coalesce(OLD.model, '') AND executions = 0;
END;

CREATE TRIGGER IF NOT EXISTS agent_model_totals_update AFTER UPDATE OF
    agent_name, model, status, completed_at, duration_ms, input_tokens, output_tokens, cache_read_tokens,
    cache_write_tokens, cost_usd
ON agent_executions BEGIN
    UPDATE agent_model_totals SET
        executions = executions - 1,
        le_1s = le_1s - coalesce(OLD.duration_ms <= 1000, 0),
        le_5s = le_5s - coalesce(OLD.duration_ms <= 5000, 0),
        le_10s = le_10s - coalesce(OLD.duration_ms <= 10000, 0),
        le_30s = le_30s - coalesce(OLD.duration_ms <= 30000, 0),
        le_60s = le_60s - coalesce(OLD.duration_ms <= 60000, 0),
        le_120s = le_120s - coalesce(OLD.duration_ms <= 120000, 0),
        le_300s = le_300s - coalesce(OLD.duration_ms <= 300000, 0),
        le_600s = le_600s - coalesce(OLD.duration_ms <= 600000, 0),
        le_1800s = le_1800s - coalesce(OLD.duration_ms <= 1800000, 0),
        le_3600s = le_3600s - coalesce(OLD.duration_ms <= 3600000, 0),
        input_tokens = input_tokens - coalesce(OLD.input_tokens, 0),
        output_tokens = output_tokens - coalesce(OLD.output_tokens, 0),
        cache_read_tokens = cache_read_tokens - coalesce(OLD.cache_read_tokens, 0),
        cache_write_tokens = cache_write_tokens - coalesce(OLD.cache_write_tokens, 0),
        cost_usd = cost_usd - coalesce(OLD.cost_usd, 0),
        last_success_at = CASE WHEN OLD.status = 'completed' AND OLD.completed_at = last_success_at
            THEN (SELECT max(completed_at) FROM agent_executions WHERE agent_name = OLD.agent_name
                  AND coalesce(model, '') = coalesce(OLD.model, '') AND status = 'completed' AND id != OLD.id)
            ELSE last_success_at END
    WHERE agent_name = OLD.agent_name AND model = coalesce(OLD.model, '');
    DELETE FROM agent_model_totals WHERE agent_name = OLD.agent_name AND model = coalesce(OLD.model, '') AND executions = 0;
    INSERT OR IGNORE INTO agent_model_totals (agent_name, model) VALUES (NEW.agent_name, coalesce(NEW.model, ''));
    UPDATE agent_model_totals SET
        executions = executions + 1,
        le_1s = le_1s + coalesce(NEW.duration_ms <= 1000, 0),
        le_5s = le_5s + coalesce(NEW.duration_ms <= 5000, 0),
        le_10s = le_10s + coalesce(NEW.duration_ms <= 10000, 0),
        le_30s = le_30s + coalesce(NEW.duration_ms <= 30000, 0),
        le_60s = le_60s + coalesce(NEW.duration_ms <= 60000, 0),
        le_120s = le_120s + coalesce(NEW.duration_ms <= 120000, 0),
        le_300s = le_300s + coalesce(NEW.duration_ms <= 300000, 0),
        le_600s = le_600s + coalesce(NEW.duration_ms <= 600000, 0),
        le_1800s = le_1800s + coalesce(NEW.duration_ms <= 1800000, 0),
        le_3600s = le_3600s + coalesce(NEW.duration_ms <= 3600000, 0),
        input_tokens = input_tokens + coalesce(NEW.input_tokens, 0),
        output_tokens = output_tokens + coalesce(NEW.output_tokens, 0),
        cache_read_tokens = cache_read_tokens + coalesce(NEW.cache_read_tokens, 0),
        cache_write_tokens = cache_write_tokens + coalesce(NEW.cache_write_tokens, 0),
        cost_usd = cost_usd + coalesce(NEW.cost_usd, 0),
        last_success_at = CASE WHEN NEW.status = 'completed' AND NEW.completed_at IS NOT NULL
            AND coalesce(NEW.completed_at > last_success_at, 1) THEN NEW.completed_at ELSE last_success_at END
    WHERE agent_name = NEW.agent_name AND model = coalesce(NEW.model, '');
END;

-- What agent_model_totals must hold, counted from the executions themselves.
CREATE VIEW IF NOT EXISTS agent_model_totals_recount AS
SELECT
    R.agent_name AS agent_name,
    coalesce(R.model, '') AS model,
    count(*) AS executions,
    sum(coalesce(R.duration_ms <= 1000, 0)) AS le_1s,
    sum(coalesce(R.duration_ms <= 5000, 0)) AS le_5s,
    sum(coalesce(R.duration_ms <= 10000, 0)) AS le_10s,
    sum(coalesce(R.duration_ms <= 30000, 0)) AS le_30s,
    sum(coalesce(R.duration_ms <= 60000, 0)) AS le_60s,
    sum(coalesce(R.duration_ms <= 120000, 0)) AS le_120s,
    sum(coalesce(R.duration_ms <= 300000, 0)) AS le_300s,
    sum(coalesce(R.duration_ms <= 600000, 0)) AS le_600s,
    sum(coalesce(R.duration_ms <= 1800000, 0)) AS le_1800s,
    sum(coalesce(R.duration_ms <= 3600000, 0)) AS le_3600s,
    sum(coalesce(R.input_tokens, 0)) AS input_tokens,
    sum(coalesce(R.output_tokens, 0)) AS output_tokens,
    sum(coalesce(R.cache_read_tokens, 0)) AS cache_read_tokens,
    sum(coalesce(R.cache_write_tokens, 0)) AS cache_write_tokens,
    sum(coalesce(R.cost_usd, 0)) AS cost_usd,
    max(CASE WHEN R.status = 'completed' THEN R.completed_at END) AS last_success_at
FROM agent_executions AS R
GROUP BY R.agent_name, coalesce(R.model, '');

-- Tokens and cost rolled up per UTC day, agent and model, and over all time (day ''), so that
-- `cost` reads a row per day and agent and model instead of a row per execution. Only executions
-- with usage (a cost or any token count) are counted, as `cost` counts them. model is '' when the
-- execution has none. <col>_rows counts the executions where <col> is known (a total of nothing
-- known stays NULL); unpriced counts those with tokens but no cost. Kept current by the
-- cost_rollup_* triggers below, each one statement that adds the new row's usage and takes away
-- the old one's (sign 1 and -1) to both its day and ''; rows that fall to 0 executions go.
-- A per-message usage table (a message's own model) would feed it with the same statements.
CREATE TABLE IF NOT EXISTS cost_rollup (
    day                     TEXT    NOT NULL,
    agent_name              TEXT    NOT NULL,
    model                   TEXT    NOT NULL,
    executions              INTEGER NOT NULL DEFAULT 0,
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
    unpriced                INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, agent_name, model)
) WITHOUT ROWID;

-- Each execution that has usage, as one row of cost_rollup's columns: what the roll-up sums, what
-- `cost` sums itself for the part of a window that is not whole days and for sessions.
CREATE VIEW IF NOT EXISTS execution_usage AS
SELECT
    id, orchestration_id, started_at, substr(started_at, 1, 10) AS day, agent_name,
    coalesce(model, '') AS model,
    1 AS executions,
    coalesce(input_tokens, 0) AS input_tokens, input_tokens IS NOT NULL AS input_tokens_rows,
    coalesce(output_tokens, 0) AS output_tokens, output_tokens IS NOT NULL AS output_tokens_rows,
    coalesce(cache_read_tokens, 0) AS cache_read_tokens, cache_read_tokens IS NOT NULL AS cache_read_tokens_rows,
    coalesce(cache_write_tokens, 0) AS cache_write_tokens, cache_write_tokens IS NOT NULL AS cache_write_tokens_rows,
    coalesce(cost_usd, 0) AS cost_usd, cost_usd IS NOT NULL AS cost_usd_rows,
    cost_usd IS NULL AND coalesce(input_tokens, output_tokens, cache_read_tokens, cache_write_tokens) IS NOT NULL
        AS unpriced
FROM agent_executions
WHERE cost_usd IS NOT NULL OR coalesce(input_tokens, output_tokens, cache_read_tokens, cache_write_tokens) IS NOT NULL;

-- What cost_rollup must hold, counted from the executions: migrations and the benchmark generator
-- refill cost_rollup from it after a bulk change, and tests compare the two.
CREATE VIEW IF NOT EXISTS cost_rollup_recount AS
SELECT
    CASE WHEN p.all_time THEN '' ELSE u.day END AS day, u.agent_name AS agent_name, u.model AS model,
    sum(u.executions) AS executions,
    sum(u.input_tokens) AS input_tokens, sum(u.input_tokens_rows) AS input_tokens_rows,
    sum(u.output_tokens) AS output_tokens, sum(u.output_tokens_rows) AS output_tokens_rows,
    sum(u.cache_read_tokens) AS cache_read_tokens, sum(u.cache_read_tokens_rows) AS cache_read_tokens_rows,
    sum(u.cache_write_tokens) AS cache_write_tokens, sum(u.cache_write_tokens_rows) AS cache_write_tokens_rows,
    sum(u.cost_usd) AS cost_usd, sum(u.cost_usd_rows) AS cost_usd_rows,
    sum(u.unpriced) AS unpriced
FROM execution_usage AS u, (SELECT 0 AS all_time UNION ALL SELECT 1) AS p
GROUP BY 1, 2, 3;

CREATE TRIGGER IF NOT EXISTS cost_rollup_insert AFTER INSERT ON agent_executions
WHEN NEW.cost_usd IS NOT NULL
  OR coalesce(NEW.input_tokens, NEW.output_tokens, NEW.cache_read_tokens, NEW.cache_write_tokens) IS NOT NULL
BEGIN
    INSERT INTO cost_rollup
    SELECT CASE WHEN p.all_time THEN '' ELSE substr(NEW.started_at, 1, 10) END, NEW.agent_name,
           coalesce(NEW.model, ''), 1,
           coalesce(NEW.input_tokens, 0), NEW.input_tokens IS NOT NULL,
           coalesce(NEW.output_tokens, 0), NEW.output_tokens IS NOT NULL,
           coalesce(NEW.cache_read_tokens, 0), NEW.cache_read_tokens IS NOT NULL,
           coalesce(NEW.cache_write_tokens, 0), NEW.cache_write_tokens IS NOT NULL,
           coalesce(NEW.cost_usd, 0), NEW.cost_usd IS NOT NULL,
           NEW.cost_usd IS NULL
    FROM (SELECT 0 AS all_time UNION ALL SELECT 1) AS p WHERE true
    ON CONFLICT (day, agent_name, model) DO UPDATE SET
        executions = executions + excluded.executions,
        input_tokens = input_tokens + excluded.input_tokens,
        input_tokens_rows = input_tokens_rows + excluded.input_tokens_rows,
        output_tokens = output_tokens + excluded.output_tokens,
        output_tokens_rows = output_tokens_rows + excluded.output_tokens_rows,
        cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,
        cache_read_tokens_rows = cache_read_tokens_rows + excluded.cache_read_tokens_rows,
        cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens,
        cache_write_tokens_rows = cache_write_tokens_rows + excluded.cache_write_tokens_rows,
        cost_usd = cost_usd + excluded.cost_usd,
        cost_usd_rows = cost_usd_rows + excluded.cost_usd_rows,
        unpriced = unpriced + excluded.unpriced;
    DELETE FROM cost_rollup WHERE executions = 0 AND agent_name = NEW.agent_name
        AND model = coalesce(NEW.model, '') AND day IN ('', substr(NEW.started_at, 1, 10));
END;

CREATE TRIGGER IF NOT EXISTS cost_rollup_delete AFTER DELETE ON agent_executions
WHEN OLD.cost_usd IS NOT NULL
  OR coalesce(OLD.input_tokens, OLD.output_tokens, OLD.cache_read_tokens, OLD.cache_write_tokens) IS NOT NULL
BEGIN
    INSERT INTO cost_rollup
    SELECT CASE WHEN p.all_time THEN '' ELSE substr(OLD.started_at, 1, 10) END, OLD.agent_name,
           coalesce(OLD.model, ''), -1,
           -coalesce(OLD.input_tokens, 0), -(OLD.input_tokens IS NOT NULL),
           -coalesce(OLD.output_tokens, 0), -(OLD.output_tokens IS NOT NULL),
           -coalesce(OLD.cache_read_tokens, 0), -(OLD.cache_read_tokens IS NOT NULL),
           -coalesce(OLD.cache_write_tokens, 0), -(OLD.cache_write_tokens IS NOT NULL),
           -coalesce(OLD.cost_usd, 0), -(OLD.cost_usd IS NOT NULL),
           -(OLD.cost_usd IS NULL)
    FROM (SELECT 0 AS all_time UNION ALL SELECT 1) AS p WHERE true
    ON CONFLICT (day, agent_name, model) DO UPDATE SET
        executions = executions + excluded.executions,
        input_tokens = input_tokens + excluded.input_tokens,
        input_tokens_rows = input_tokens_rows + excluded.input_tokens_rows,
        output_tokens = output_tokens + excluded.output_tokens,
        output_tokens_rows = output_tokens_rows + excluded.output_tokens_rows,
        cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,
        cache_read_tokens_rows = cache_read_tokens_rows + excluded.cache_read_tokens_rows,
        cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens,
        cache_write_tokens_rows = cache_write_tokens_rows + excluded.cache_write_tokens_rows,
        cost_usd = cost_usd + excluded.cost_usd,
        cost_usd_rows = cost_usd_rows + excluded.cost_usd_rows,
        unpriced = unpriced + excluded.unpriced;
    DELETE FROM cost_rollup WHERE executions = 0 AND agent_name = OLD.agent_name
        AND model = coalesce(OLD.model, '') AND day IN ('', substr(OLD.started_at, 1, 10));
END;

-- An update is the old row taken away and the new one added, in one statement (rows u).
CREATE TRIGGER IF NOT EXISTS cost_rollup_update AFTER UPDATE OF
    agent_name, model, started_at, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd
ON agent_executions
WHEN OLD.cost_usd IS NOT NULL OR NEW.cost_usd IS NOT NULL
  OR coalesce(OLD.input_tokens, OLD.output_tokens, OLD.cache_read_tokens, OLD.cache_write_tokens,
              NEW.input_tokens, NEW.output_tokens, NEW.cache_read_tokens, NEW.cache_write_tokens) IS NOT NULL
BEGIN
    INSERT INTO cost_rollup
    SELECT CASE WHEN p.all_time THEN '' ELSE substr(u.started_at, 1, 10) END, u.agent_name,
           coalesce(u.model, ''), u.sign,
           u.sign * coalesce(u.input_tokens, 0), u.sign * (u.input_tokens IS NOT NULL),
           u.sign * coalesce(u.output_tokens, 0), u.sign * (u.output_tokens IS NOT NULL),
           u.sign * coalesce(u.cache_read_tokens, 0), u.sign * (u.cache_read_tokens IS NOT NULL),
           u.sign * coalesce(u.cache_write_tokens, 0), u.sign * (u.cache_write_tokens IS NOT NULL),
           u.sign * coalesce(u.cost_usd, 0), u.sign * (u.cost_usd IS NOT NULL),
           u.sign * (u.cost_usd IS NULL)
    FROM (SELECT -1 AS sign, OLD.started_at AS started_at, OLD.agent_name AS agent_name, OLD.model AS model,
                 OLD.input_tokens AS input_tokens, OLD.output_tokens AS output_tokens,
                 OLD.cache_read_tokens AS cache_read_tokens, OLD.cache_write_tokens AS cache_write_tokens,
                 OLD.cost_usd AS cost_usd
          UNION ALL
          SELECT 1, NEW.started_at, NEW.agent_name, NEW.model, NEW.input_tokens, NEW.output_tokens,
                 NEW.cache_read_tokens, NEW.cache_write_tokens, NEW.cost_usd) AS u,
         (SELECT 0 AS all_time UNION ALL SELECT 1) AS p
    WHERE u.cost_usd IS NOT NULL
       OR coalesce(u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_write_tokens) IS NOT NULL
    ON CONFLICT (day, agent_name, model) DO UPDATE SET
        executions = executions + excluded.executions,
        input_tokens = input_tokens + excluded.input_tokens,
        input_tokens_rows = input_tokens_rows + excluded.input_tokens_rows,
        output_tokens = output_tokens + excluded.output_tokens,
        output_tokens_rows = output_tokens_rows + excluded.output_tokens_rows,
        cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,
        cache_read_tokens_rows = cache_read_tokens_rows + excluded.cache_read_tokens_rows,
        cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens,
        cache_write_tokens_rows = cache_write_tokens_rows + excluded.cache_write_tokens_rows,
        cost_usd = cost_usd + excluded.cost_usd,
        cost_usd_rows = cost_usd_rows + excluded.cost_usd_rows,
        unpriced = unpriced + excluded.unpriced;
    DELETE FROM cost_rollup WHERE executions = 0 AND agent_name IN (OLD.agent_name, NEW.agent_name)
        AND model IN (coalesce(OLD.model, ''), coalesce(NEW.model, ''))
        AND day IN ('', substr(OLD.started_at, 1, 10), substr(NEW.started_at, 1, 10));
END;

-- Daily roll-ups that outlive cleanup (migration 13), so that trends (`performance --by day`,
-- `report --html`) reach back past the retention of the raw rows. One row per UTC day (of
-- started_at) and scope: 'model' rows are one agent and one model (model '' when the execution has
-- none), 'agent' rows one agent over all its models (model ''), 'day' rows every agent and model
-- (agent_name and model ''). Percentiles cannot be kept by triggers (deleting a row cannot tell the
-- new p95), so this table is not a running total: monitor/ops/rollup.py fills it, exactly as
-- monitor/read/daily.py counts the raw rows (p50/p95 nearest-rank, as `performance`), for each day
-- that `cleanup` is about to delete rows of, before it deletes them, and only for days that are
-- over (before today, UTC): what cleanup deletes of the current day (cleanup 0) is not kept.
-- A day is rolled up once, whole, and then frozen: readers take a day from this table when it is
-- here and from agent_executions otherwise, so a rolled-up day's executions that cleanup left in
-- place (an orchestration that began later) are not counted twice, and a change to them (or one
-- recorded for that day later) is not seen. `cleanup DAYS --all` deletes the roll-ups of the days
-- before the cutoff's day too. Sums are NULL when no execution knew the value (as sum() says);
-- duration_ms is the sum over the `timed` executions (those with a duration).
CREATE TABLE IF NOT EXISTS daily_rollup (
    day                TEXT    NOT NULL,
    scope              TEXT    NOT NULL CHECK (scope IN ('day', 'agent', 'model')),
    agent_name         TEXT    NOT NULL,
    model              TEXT    NOT NULL,
    executions         INTEGER NOT NULL,
    completed          INTEGER NOT NULL,
    failed             INTEGER NOT NULL,
    in_progress        INTEGER NOT NULL,
    timed              INTEGER NOT NULL,
    duration_ms        INTEGER,
    p50_duration_ms    INTEGER,
    p95_duration_ms    INTEGER,
    input_tokens       INTEGER,
    output_tokens      INTEGER,
    cache_read_tokens  INTEGER,
    cache_write_tokens INTEGER,
    cost_usd           REAL,
    unpriced           INTEGER NOT NULL,
    rolled_up_at       TEXT    NOT NULL,
    PRIMARY KEY (day, scope, agent_name, model)
) WITHOUT ROWID;

-- Tokens and cost per model over all time, each LLM request counted under its own model (llm_usage),
-- and each execution that has usage but no llm_usage rows (recorded with its totals only) under
-- its own model, as `cost --by model` counts them; model '' when there is none. executions counts
-- the executions that used the model, unpriced those with an unpriced request of it (or unpriced
-- totals); the rest as in cost_rollup. Kept by the model_totals_* triggers, on llm_usage and on
-- agent_executions (an execution's own totals count only while it has no llm_usage rows: its first
-- request takes them away, its last one going gives them back); model_totals_recount is what it
-- must hold. A count of executions per model moves only when an execution's first request of that
-- model comes or its last one goes, which the triggers tell from the execution's other rows.
CREATE TABLE IF NOT EXISTS model_totals (
    model                   TEXT    NOT NULL PRIMARY KEY,
    executions              INTEGER NOT NULL DEFAULT 0,
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

-- What model_totals must hold, counted from llm_usage and the executions (tests compare the two).
CREATE VIEW IF NOT EXISTS model_totals_recount AS
WITH usage AS (
    SELECT execution_id, coalesce(model, '') AS model, input_tokens, 1 AS input_tokens_rows,
           output_tokens, 1 AS output_tokens_rows, cache_read_tokens, 1 AS cache_read_tokens_rows,
           cache_write_tokens + cache_write_1h_tokens AS cache_write_tokens, 1 AS cache_write_tokens_rows,
           coalesce(cost_usd, 0) AS cost_usd, cost_usd IS NOT NULL AS cost_usd_rows, cost_usd IS NULL AS unpriced
    FROM llm_usage
    UNION ALL
    SELECT id, model, input_tokens, input_tokens_rows, output_tokens, output_tokens_rows, cache_read_tokens,
           cache_read_tokens_rows, cache_write_tokens, cache_write_tokens_rows, cost_usd, cost_usd_rows, unpriced
    FROM execution_usage e WHERE NOT EXISTS (SELECT 1 FROM llm_usage u WHERE u.execution_id = e.id)
)
SELECT model, count(DISTINCT execution_id) AS executions,
       sum(input_tokens) AS input_tokens, sum(input_tokens_rows) AS input_tokens_rows,
       sum(output_tokens) AS output_tokens, sum(output_tokens_rows) AS output_tokens_rows,
       sum(cache_read_tokens) AS cache_read_tokens, sum(cache_read_tokens_rows) AS cache_read_tokens_rows,
       sum(cache_write_tokens) AS cache_write_tokens, sum(cache_write_tokens_rows) AS cache_write_tokens_rows,
       sum(cost_usd) AS cost_usd, sum(cost_usd_rows) AS cost_usd_rows,
       count(DISTINCT CASE WHEN unpriced THEN execution_id END) AS unpriced
FROM usage GROUP BY model;

-- A request: its usage, and one more execution (or unpriced execution) of its model when the
-- execution had no other request (or unpriced request) of that model; its execution's own totals
-- stop counting when it is the execution's first request.
CREATE TRIGGER IF NOT EXISTS model_totals_usage_insert AFTER INSERT ON llm_usage BEGIN
    INSERT INTO model_totals
    SELECT coalesce(NEW.model, ''),
           NOT EXISTS (SELECT 1 FROM llm_usage o INDEXED BY idx_llm_usage_model WHERE o.execution_id = NEW.execution_id
                       AND o.message_id != NEW.message_id AND coalesce(o.model, '') = coalesce(NEW.model, '')),
           NEW.input_tokens, 1, NEW.output_tokens, 1, NEW.cache_read_tokens, 1,
           NEW.cache_write_tokens + NEW.cache_write_1h_tokens, 1,
           coalesce(NEW.cost_usd, 0), NEW.cost_usd IS NOT NULL,
           NEW.cost_usd IS NULL AND NOT EXISTS (
               SELECT 1 FROM llm_usage o INDEXED BY idx_llm_usage_unpriced_model WHERE o.execution_id = NEW.execution_id AND o.message_id != NEW.message_id
               AND coalesce(o.model, '') = coalesce(NEW.model, '') AND o.cost_usd IS NULL)
    WHERE true
    ON CONFLICT (model) DO UPDATE SET
        executions = executions + excluded.executions,
        input_tokens = input_tokens + excluded.input_tokens,
        input_tokens_rows = input_tokens_rows + excluded.input_tokens_rows,
        output_tokens = output_tokens + excluded.output_tokens,
        output_tokens_rows = output_tokens_rows + excluded.output_tokens_rows,
        cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,
        cache_read_tokens_rows = cache_read_tokens_rows + excluded.cache_read_tokens_rows,
        cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens,
        cache_write_tokens_rows = cache_write_tokens_rows + excluded.cache_write_tokens_rows,
        cost_usd = cost_usd + excluded.cost_usd,
        cost_usd_rows = cost_usd_rows + excluded.cost_usd_rows,
        unpriced = unpriced + excluded.unpriced;
    INSERT INTO model_totals
    SELECT model, -1, -input_tokens, -input_tokens_rows, -output_tokens, -output_tokens_rows,
           -cache_read_tokens, -cache_read_tokens_rows, -cache_write_tokens, -cache_write_tokens_rows,
           -cost_usd, -cost_usd_rows, -unpriced
    FROM execution_usage e WHERE e.id = NEW.execution_id
      AND NOT EXISTS (SELECT 1 FROM llm_usage o WHERE o.execution_id = NEW.execution_id
                      AND o.message_id != NEW.message_id)
    ON CONFLICT (model) DO UPDATE SET
        executions = executions + excluded.executions,
        input_tokens = input_tokens + excluded.input_tokens,
        input_tokens_rows = input_tokens_rows + excluded.input_tokens_rows,
        output_tokens = output_tokens + excluded.output_tokens,
        output_tokens_rows = output_tokens_rows + excluded.output_tokens_rows,
        cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,
        cache_read_tokens_rows = cache_read_tokens_rows + excluded.cache_read_tokens_rows,
        cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens,
        cache_write_tokens_rows = cache_write_tokens_rows + excluded.cache_write_tokens_rows,
        cost_usd = cost_usd + excluded.cost_usd,
        cost_usd_rows = cost_usd_rows + excluded.cost_usd_rows,
        unpriced = unpriced + excluded.unpriced;
    DELETE FROM model_totals WHERE executions = 0;
END;

-- A request gone: the reverse, and its execution's own totals count again when it was the last.
-- (When the execution itself is deleted, its requests go after it, and there is nothing to give back.)
CREATE TRIGGER IF NOT EXISTS model_totals_usage_delete AFTER DELETE ON llm_usage BEGIN
    INSERT INTO model_totals
    SELECT coalesce(OLD.model, ''),
           -NOT EXISTS (SELECT 1 FROM llm_usage o INDEXED BY idx_llm_usage_model WHERE o.execution_id = OLD.execution_id
                        AND coalesce(o.model, '') = coalesce(OLD.model, '')),
           -OLD.input_tokens, -1, -OLD.output_tokens, -1, -OLD.cache_read_tokens, -1,
           -(OLD.cache_write_tokens + OLD.cache_write_1h_tokens), -1,
           -coalesce(OLD.cost_usd, 0), -(OLD.cost_usd IS NOT NULL),
           -(OLD.cost_usd IS NULL AND NOT EXISTS (
               SELECT 1 FROM llm_usage o INDEXED BY idx_llm_usage_unpriced_model WHERE o.execution_id = OLD.execution_id
               AND coalesce(o.model, '') = coalesce(OLD.model, '') AND o.cost_usd IS NULL))
    WHERE true
    ON CONFLICT (model) DO UPDATE SET
        executions = executions + excluded.executions,
        input_tokens = input_tokens + excluded.input_tokens,
        input_tokens_rows = input_tokens_rows + excluded.input_tokens_rows,
        output_tokens = output_tokens + excluded.output_tokens,
        output_tokens_rows = output_tokens_rows + excluded.output_tokens_rows,
        cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,
        cache_read_tokens_rows = cache_read_tokens_rows + excluded.cache_read_tokens_rows,
        cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens,
        cache_write_tokens_rows = cache_write_tokens_rows + excluded.cache_write_tokens_rows,
        cost_usd = cost_usd + excluded.cost_usd,
        cost_usd_rows = cost_usd_rows + excluded.cost_usd_rows,
        unpriced = unpriced + excluded.unpriced;
    INSERT INTO model_totals
    SELECT model, 1, input_tokens, input_tokens_rows, output_tokens, output_tokens_rows,
           cache_read_tokens, cache_read_tokens_rows, cache_write_tokens, cache_write_tokens_rows,
           cost_usd, cost_usd_rows, unpriced
    FROM execution_usage e WHERE e.id = OLD.execution_id
      AND NOT EXISTS (SELECT 1 FROM llm_usage o WHERE o.execution_id = OLD.execution_id)
    ON CONFLICT (model) DO UPDATE SET
        executions = executions + excluded.executions,
        input_tokens = input_tokens + excluded.input_tokens,
        input_tokens_rows = input_tokens_rows + excluded.input_tokens_rows,
        output_tokens = output_tokens + excluded.output_tokens,
        output_tokens_rows = output_tokens_rows + excluded.output_tokens_rows,
        cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,
        cache_read_tokens_rows = cache_read_tokens_rows + excluded.cache_read_tokens_rows,
        cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens,
        cache_write_tokens_rows = cache_write_tokens_rows + excluded.cache_write_tokens_rows,
        cost_usd = cost_usd + excluded.cost_usd,
        cost_usd_rows = cost_usd_rows + excluded.cost_usd_rows,
        unpriced = unpriced + excluded.unpriced;
    DELETE FROM model_totals WHERE executions = 0;
END;

-- A request changed: the old row taken away and the new one added (rows u). A count of
-- executions (of unpriced executions) moves only when no other request of the execution (o, any
-- but this one) has that model (unpriced): then by the new row's membership less the old one's.
CREATE TRIGGER IF NOT EXISTS model_totals_usage_update AFTER UPDATE OF
    execution_id, message_id, model, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
    cache_write_1h_tokens, cost_usd
ON llm_usage BEGIN
    INSERT INTO model_totals
    SELECT coalesce(u.model, ''),
           u.sign * NOT EXISTS (
               SELECT 1 FROM llm_usage o INDEXED BY idx_llm_usage_model WHERE o.execution_id = u.execution_id
               AND coalesce(o.model, '') = coalesce(u.model, '')
               AND NOT (o.execution_id = NEW.execution_id AND o.message_id = NEW.message_id)),
           u.sign * u.input_tokens, u.sign, u.sign * u.output_tokens, u.sign,
           u.sign * u.cache_read_tokens, u.sign, u.sign * u.cache_write_tokens, u.sign,
           u.sign * coalesce(u.cost_usd, 0), u.sign * (u.cost_usd IS NOT NULL),
           u.sign * (u.cost_usd IS NULL AND NOT EXISTS (
               SELECT 1 FROM llm_usage o INDEXED BY idx_llm_usage_unpriced_model WHERE o.execution_id = u.execution_id
               AND coalesce(o.model, '') = coalesce(u.model, '') AND o.cost_usd IS NULL
               AND NOT (o.execution_id = NEW.execution_id AND o.message_id = NEW.message_id)))
    FROM (SELECT -1 AS sign, OLD.execution_id AS execution_id, OLD.model AS model,
                 OLD.input_tokens AS input_tokens, OLD.output_tokens AS output_tokens,
                 OLD.cache_read_tokens AS cache_read_tokens,
                 OLD.cache_write_tokens + OLD.cache_write_1h_tokens AS cache_write_tokens,
                 OLD.cost_usd AS cost_usd
          UNION ALL
          SELECT 1, NEW.execution_id, NEW.model, NEW.input_tokens, NEW.output_tokens, NEW.cache_read_tokens,
                 NEW.cache_write_tokens + NEW.cache_write_1h_tokens, NEW.cost_usd) AS u
    WHERE true
    ON CONFLICT (model) DO UPDATE SET
        executions = executions + excluded.executions,
        input_tokens = input_tokens + excluded.input_tokens,
        input_tokens_rows = input_tokens_rows + excluded.input_tokens_rows,
        output_tokens = output_tokens + excluded.output_tokens,
        output_tokens_rows = output_tokens_rows + excluded.output_tokens_rows,
        cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,
        cache_read_tokens_rows = cache_read_tokens_rows + excluded.cache_read_tokens_rows,
        cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens,
        cache_write_tokens_rows = cache_write_tokens_rows + excluded.cache_write_tokens_rows,
        cost_usd = cost_usd + excluded.cost_usd,
        cost_usd_rows = cost_usd_rows + excluded.cost_usd_rows,
        unpriced = unpriced + excluded.unpriced;
    -- Moved to another execution: the old one's own totals may count again, the new one's stop.
    INSERT INTO model_totals
    SELECT e.model, e.sign, e.sign * e.input_tokens, e.sign * e.input_tokens_rows,
           e.sign * e.output_tokens, e.sign * e.output_tokens_rows,
           e.sign * e.cache_read_tokens, e.sign * e.cache_read_tokens_rows,
           e.sign * e.cache_write_tokens, e.sign * e.cache_write_tokens_rows,
           e.sign * e.cost_usd, e.sign * e.cost_usd_rows, e.sign * e.unpriced
    FROM (SELECT 1 AS sign, * FROM execution_usage WHERE id = OLD.execution_id
          AND NOT EXISTS (SELECT 1 FROM llm_usage o WHERE o.execution_id = OLD.execution_id)
          UNION ALL
          SELECT -1, * FROM execution_usage WHERE id = NEW.execution_id
          AND NOT EXISTS (SELECT 1 FROM llm_usage o WHERE o.execution_id = NEW.execution_id
                          AND o.message_id != NEW.message_id)) AS e
    WHERE OLD.execution_id IS NOT NEW.execution_id
    ON CONFLICT (model) DO UPDATE SET
        executions = executions + excluded.executions,
        input_tokens = input_tokens + excluded.input_tokens,
        input_tokens_rows = input_tokens_rows + excluded.input_tokens_rows,
        output_tokens = output_tokens + excluded.output_tokens,
        output_tokens_rows = output_tokens_rows + excluded.output_tokens_rows,
        cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,
        cache_read_tokens_rows = cache_read_tokens_rows + excluded.cache_read_tokens_rows,
        cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens,
        cache_write_tokens_rows = cache_write_tokens_rows + excluded.cache_write_tokens_rows,
        cost_usd = cost_usd + excluded.cost_usd,
        cost_usd_rows = cost_usd_rows + excluded.cost_usd_rows,
        unpriced = unpriced + excluded.unpriced;
    DELETE FROM model_totals WHERE executions = 0;
END;

-- An execution's own totals (while it has no llm_usage rows). Its deletion is counted before the
-- row goes: its requests are deleted with it (ON DELETE CASCADE) before an AFTER trigger would run,
-- and only before can it tell whether its own totals were counted.
CREATE TRIGGER IF NOT EXISTS model_totals_execution_insert AFTER INSERT ON agent_executions
WHEN NEW.cost_usd IS NOT NULL
  OR coalesce(NEW.input_tokens, NEW.output_tokens, NEW.cache_read_tokens, NEW.cache_write_tokens) IS NOT NULL
BEGIN
    INSERT INTO model_totals
    SELECT coalesce(NEW.model, ''), 1,
           coalesce(NEW.input_tokens, 0), (NEW.input_tokens IS NOT NULL),
           coalesce(NEW.output_tokens, 0), (NEW.output_tokens IS NOT NULL),
           coalesce(NEW.cache_read_tokens, 0), (NEW.cache_read_tokens IS NOT NULL),
           coalesce(NEW.cache_write_tokens, 0), (NEW.cache_write_tokens IS NOT NULL),
           coalesce(NEW.cost_usd, 0), (NEW.cost_usd IS NOT NULL), (NEW.cost_usd IS NULL)
    WHERE NOT EXISTS (SELECT 1 FROM llm_usage o WHERE o.execution_id = NEW.id)
    ON CONFLICT (model) DO UPDATE SET
        executions = executions + excluded.executions,
        input_tokens = input_tokens + excluded.input_tokens,
        input_tokens_rows = input_tokens_rows + excluded.input_tokens_rows,
        output_tokens = output_tokens + excluded.output_tokens,
        output_tokens_rows = output_tokens_rows + excluded.output_tokens_rows,
        cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,
        cache_read_tokens_rows = cache_read_tokens_rows + excluded.cache_read_tokens_rows,
        cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens,
        cache_write_tokens_rows = cache_write_tokens_rows + excluded.cache_write_tokens_rows,
        cost_usd = cost_usd + excluded.cost_usd,
        cost_usd_rows = cost_usd_rows + excluded.cost_usd_rows,
        unpriced = unpriced + excluded.unpriced;
END;

CREATE TRIGGER IF NOT EXISTS model_totals_execution_delete BEFORE DELETE ON agent_executions
WHEN OLD.cost_usd IS NOT NULL
  OR coalesce(OLD.input_tokens, OLD.output_tokens, OLD.cache_read_tokens, OLD.cache_write_tokens) IS NOT NULL
BEGIN
    INSERT INTO model_totals
    SELECT coalesce(OLD.model, ''), -1,
           -coalesce(OLD.input_tokens, 0), -(OLD.input_tokens IS NOT NULL),
           -coalesce(OLD.output_tokens, 0), -(OLD.output_tokens IS NOT NULL),
           -coalesce(OLD.cache_read_tokens, 0), -(OLD.cache_read_tokens IS NOT NULL),
           -coalesce(OLD.cache_write_tokens, 0), -(OLD.cache_write_tokens IS NOT NULL),
           -coalesce(OLD.cost_usd, 0), -(OLD.cost_usd IS NOT NULL), -(OLD.cost_usd IS NULL)
    WHERE NOT EXISTS (SELECT 1 FROM llm_usage o WHERE o.execution_id = OLD.id)
    ON CONFLICT (model) DO UPDATE SET
        executions = executions + excluded.executions,
        input_tokens = input_tokens + excluded.input_tokens,
        input_tokens_rows = input_tokens_rows + excluded.input_tokens_rows,
        output_tokens = output_tokens + excluded.output_tokens,
        output_tokens_rows = output_tokens_rows + excluded.output_tokens_rows,
        cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,
        cache_read_tokens_rows = cache_read_tokens_rows + excluded.cache_read_tokens_rows,
        cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens,
        cache_write_tokens_rows = cache_write_tokens_rows + excluded.cache_write_tokens_rows,
        cost_usd = cost_usd + excluded.cost_usd,
        cost_usd_rows = cost_usd_rows + excluded.cost_usd_rows,
        unpriced = unpriced + excluded.unpriced;
    DELETE FROM model_totals WHERE executions = 0;
END;

CREATE TRIGGER IF NOT EXISTS model_totals_execution_update AFTER UPDATE OF
    model, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd
ON agent_executions
WHEN (OLD.cost_usd IS NOT NULL OR NEW.cost_usd IS NOT NULL
      OR coalesce(OLD.input_tokens, OLD.output_tokens, OLD.cache_read_tokens, OLD.cache_write_tokens,
                  NEW.input_tokens, NEW.output_tokens, NEW.cache_read_tokens, NEW.cache_write_tokens) IS NOT NULL)
  AND NOT EXISTS (SELECT 1 FROM llm_usage o WHERE o.execution_id = NEW.id)
BEGIN
    INSERT INTO model_totals
    SELECT coalesce(OLD.model, ''), -1,
           -coalesce(OLD.input_tokens, 0), -(OLD.input_tokens IS NOT NULL),
           -coalesce(OLD.output_tokens, 0), -(OLD.output_tokens IS NOT NULL),
           -coalesce(OLD.cache_read_tokens, 0), -(OLD.cache_read_tokens IS NOT NULL),
           -coalesce(OLD.cache_write_tokens, 0), -(OLD.cache_write_tokens IS NOT NULL),
           -coalesce(OLD.cost_usd, 0), -(OLD.cost_usd IS NOT NULL), -(OLD.cost_usd IS NULL)
    WHERE OLD.cost_usd IS NOT NULL
        OR coalesce(OLD.input_tokens, OLD.output_tokens, OLD.cache_read_tokens, OLD.cache_write_tokens) IS NOT NULL
    ON CONFLICT (model) DO UPDATE SET
        executions = executions + excluded.executions,
        input_tokens = input_tokens + excluded.input_tokens,
        input_tokens_rows = input_tokens_rows + excluded.input_tokens_rows,
        output_tokens = output_tokens + excluded.output_tokens,
        output_tokens_rows = output_tokens_rows + excluded.output_tokens_rows,
        cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,
        cache_read_tokens_rows = cache_read_tokens_rows + excluded.cache_read_tokens_rows,
        cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens,
        cache_write_tokens_rows = cache_write_tokens_rows + excluded.cache_write_tokens_rows,
        cost_usd = cost_usd + excluded.cost_usd,
        cost_usd_rows = cost_usd_rows + excluded.cost_usd_rows,
        unpriced = unpriced + excluded.unpriced;
    INSERT INTO model_totals
    SELECT coalesce(NEW.model, ''), 1,
           coalesce(NEW.input_tokens, 0), (NEW.input_tokens IS NOT NULL),
           coalesce(NEW.output_tokens, 0), (NEW.output_tokens IS NOT NULL),
           coalesce(NEW.cache_read_tokens, 0), (NEW.cache_read_tokens IS NOT NULL),
           coalesce(NEW.cache_write_tokens, 0), (NEW.cache_write_tokens IS NOT NULL),
           coalesce(NEW.cost_usd, 0), (NEW.cost_usd IS NOT NULL), (NEW.cost_usd IS NULL)
    WHERE NEW.cost_usd IS NOT NULL
        OR coalesce(NEW.input_tokens, NEW.output_tokens, NEW.cache_read_tokens, NEW.cache_write_tokens) IS NOT NULL
    ON CONFLICT (model) DO UPDATE SET
        executions = executions + excluded.executions,
        input_tokens = input_tokens + excluded.input_tokens,
        input_tokens_rows = input_tokens_rows + excluded.input_tokens_rows,
        output_tokens = output_tokens + excluded.output_tokens,
        output_tokens_rows = output_tokens_rows + excluded.output_tokens_rows,
        cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,
        cache_read_tokens_rows = cache_read_tokens_rows + excluded.cache_read_tokens_rows,
        cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens,
        cache_write_tokens_rows = cache_write_tokens_rows + excluded.cache_write_tokens_rows,
        cost_usd = cost_usd + excluded.cost_usd,
        cost_usd_rows = cost_usd_rows + excluded.cost_usd_rows,
        unpriced = unpriced + excluded.unpriced;
    DELETE FROM model_totals WHERE executions = 0;
END;

-- Each agent's durations counted per bucket (the duration cut to two significant digits:
-- 0-99 ms one bucket per millisecond, 100-990 ms per 10 ms, 1.0-9.9 s per 100 ms, ...), for
-- the all-time p50 and p95 of `performance` and `agent NAME`: the bucket holding a rank is found
-- here, and the exact duration within it read from idx_executions_agent_duration, so that a
-- percentile reads at most one bucket's executions instead of half the agent's history. bucket
-- is the smallest duration the bucket holds. Kept by the agent_durations_* triggers;
-- agent_durations_recount is what it must hold.
CREATE TABLE IF NOT EXISTS agent_durations (
    agent_name TEXT    NOT NULL,
    bucket     INTEGER NOT NULL,
    executions INTEGER NOT NULL,
    PRIMARY KEY (agent_name, bucket)
) WITHOUT ROWID;

-- What agent_durations must hold, counted from the executions (tests compare the two).
CREATE VIEW IF NOT EXISTS agent_durations_recount AS
SELECT agent_name, (CASE WHEN duration_ms < 100 THEN CAST(duration_ms AS INTEGER) - (duration_ms < CAST(duration_ms AS INTEGER)) ELSE CAST(substr(CAST(duration_ms AS INTEGER), 1, 2) || substr('000000000000000000', 1, length(CAST(duration_ms AS INTEGER)) - 2) AS INTEGER) END) AS bucket, count(*) AS executions
FROM agent_executions WHERE duration_ms IS NOT NULL GROUP BY 1, 2;

CREATE TRIGGER IF NOT EXISTS agent_durations_insert AFTER INSERT ON agent_executions
WHEN NEW.duration_ms IS NOT NULL
BEGIN
    INSERT INTO agent_durations VALUES (NEW.agent_name, (CASE WHEN NEW.duration_ms < 100 THEN CAST(NEW.duration_ms AS INTEGER) - (NEW.duration_ms < CAST(NEW.duration_ms AS INTEGER)) ELSE CAST(substr(CAST(NEW.duration_ms AS INTEGER), 1, 2) || substr('000000000000000000', 1, length(CAST(NEW.duration_ms AS INTEGER)) - 2) AS INTEGER) END), 1)
    ON CONFLICT (agent_name, bucket) DO UPDATE SET executions = executions + 1;
END;

CREATE TRIGGER IF NOT EXISTS agent_durations_delete AFTER DELETE ON agent_executions
WHEN OLD.duration_ms IS NOT NULL
BEGIN
    UPDATE agent_durations SET executions = executions - 1
    WHERE agent_name = OLD.agent_name AND bucket = (CASE WHEN OLD.duration_ms < 100 THEN CAST(OLD.duration_ms AS INTEGER) - (OLD.duration_ms < CAST(OLD.duration_ms AS INTEGER)) ELSE CAST(substr(CAST(OLD.duration_ms AS INTEGER), 1, 2) || substr('000000000000000000', 1, length(CAST(OLD.duration_ms AS INTEGER)) - 2) AS INTEGER) END);
    DELETE FROM agent_durations
    WHERE agent_name = OLD.agent_name AND bucket = (CASE WHEN OLD.duration_ms < 100 THEN CAST(OLD.duration_ms AS INTEGER) - (OLD.duration_ms < CAST(OLD.duration_ms AS INTEGER)) ELSE CAST(substr(CAST(OLD.duration_ms AS INTEGER), 1, 2) || substr('000000000000000000', 1, length(CAST(OLD.duration_ms AS INTEGER)) - 2) AS INTEGER) END) AND executions <= 0;
END;

CREATE TRIGGER IF NOT EXISTS agent_durations_update AFTER UPDATE OF agent_name, duration_ms ON agent_executions
WHEN OLD.agent_name IS NOT NEW.agent_name OR OLD.duration_ms IS NOT NEW.duration_ms
BEGIN
    UPDATE agent_durations SET executions = executions - 1
    WHERE OLD.duration_ms IS NOT NULL AND agent_name = OLD.agent_name AND bucket = (CASE WHEN OLD.duration_ms < 100 THEN CAST(OLD.duration_ms AS INTEGER) - (OLD.duration_ms < CAST(OLD.duration_ms AS INTEGER)) ELSE CAST(substr(CAST(OLD.duration_ms AS INTEGER), 1, 2) || substr('000000000000000000', 1, length(CAST(OLD.duration_ms AS INTEGER)) - 2) AS INTEGER) END);
    DELETE FROM agent_durations
    WHERE OLD.duration_ms IS NOT NULL AND agent_name = OLD.agent_name AND bucket = (CASE WHEN OLD.duration_ms < 100 THEN CAST(OLD.duration_ms AS INTEGER) - (OLD.duration_ms < CAST(OLD.duration_ms AS INTEGER)) ELSE CAST(substr(CAST(OLD.duration_ms AS INTEGER), 1, 2) || substr('000000000000000000', 1, length(CAST(OLD.duration_ms AS INTEGER)) - 2) AS INTEGER) END)
      AND executions <= 0;
    INSERT INTO agent_durations SELECT NEW.agent_name, (CASE WHEN NEW.duration_ms < 100 THEN CAST(NEW.duration_ms AS INTEGER) - (NEW.duration_ms < CAST(NEW.duration_ms AS INTEGER)) ELSE CAST(substr(CAST(NEW.duration_ms AS INTEGER), 1, 2) || substr('000000000000000000', 1, length(CAST(NEW.duration_ms AS INTEGER)) - 2) AS INTEGER) END), 1
    WHERE NEW.duration_ms IS NOT NULL
    ON CONFLICT (agent_name, bucket) DO UPDATE SET executions = executions + 1;
END;

-- Full-text search (`monitor search`) over event messages and execution error messages:
-- external-content FTS5 indexes keyed by rowid (whatever the type of a table's id), kept current
-- by triggers; only rows with text are indexed.
CREATE VIRTUAL TABLE IF NOT EXISTS events_fts USING fts5(message, content='events');

CREATE TRIGGER IF NOT EXISTS events_fts_insert AFTER INSERT ON events WHEN NEW.message IS NOT NULL
BEGIN
    INSERT INTO events_fts (rowid, message) VALUES (NEW.rowid, NEW.message);
END;

CREATE TRIGGER IF NOT EXISTS events_fts_delete AFTER DELETE ON events WHEN OLD.message IS NOT NULL
BEGIN
    INSERT INTO events_fts (events_fts, rowid, message) VALUES ('delete', OLD.rowid, OLD.message);
END;

CREATE TRIGGER IF NOT EXISTS events_fts_update AFTER UPDATE OF message ON events
WHEN OLD.message IS NOT NEW.message
BEGIN
    INSERT INTO events_fts (events_fts, rowid, message)
    SELECT 'delete', OLD.rowid, OLD.message WHERE OLD.message IS NOT NULL;
    INSERT INTO events_fts (rowid, message) SELECT NEW.rowid, NEW.message WHERE NEW.message IS NOT NULL;
END;

CREATE VIRTUAL TABLE IF NOT EXISTS errors_fts USING fts5(error_message, content='agent_executions');

CREATE TRIGGER IF NOT EXISTS errors_fts_insert AFTER INSERT ON agent_executions
WHEN NEW.error_message IS NOT NULL
BEGIN
    INSERT INTO errors_fts (rowid, error_message) VALUES (NEW.rowid, NEW.error_message);
END;

CREATE TRIGGER IF NOT EXISTS errors_fts_delete AFTER DELETE ON agent_executions
WHEN OLD.error_message IS NOT NULL
BEGIN
    INSERT INTO errors_fts (errors_fts, rowid, error_message) VALUES ('delete', OLD.rowid, OLD.error_message);
END;

CREATE TRIGGER IF NOT EXISTS errors_fts_update AFTER UPDATE OF error_message ON agent_executions
WHEN OLD.error_message IS NOT NEW.error_message
BEGIN
    INSERT INTO errors_fts (errors_fts, rowid, error_message)
    SELECT 'delete', OLD.rowid, OLD.error_message WHERE OLD.error_message IS NOT NULL;
    INSERT INTO errors_fts (rowid, error_message)
    SELECT NEW.rowid, NEW.error_message WHERE NEW.error_message IS NOT NULL;
END;

-- Tool calls and external-service calls (migration 6): one row per finished call, from a Claude
-- Code hook (PostToolUse, PostToolUseFailure: the tool's own duration_ms and is_interrupt) or from
-- Tracker.record_service_call. tool is the tool (Bash, mcp__github__create_issue) or the
-- service's operation; server the MCP server (github) or the external service, NULL for a
-- built-in tool. `monitor tools` reports them by tool or by server.
-- Columns:
--   execution_id  the execution that made the call
--   timestamp     when the call ended (UTC)
--   outcome       ok, failed or interrupted
--   duration_ms   the call's own duration, in milliseconds
CREATE TABLE IF NOT EXISTS tool_calls (
    id           INTEGER PRIMARY KEY,
    execution_id INTEGER REFERENCES agent_executions(id) ON DELETE CASCADE,
    timestamp    TEXT    NOT NULL,
    tool         TEXT    NOT NULL,
    server       TEXT,
    outcome      TEXT    NOT NULL CHECK (outcome IN ('ok', 'failed', 'interrupted')),
    duration_ms  INTEGER,
    dedup_key    TEXT    UNIQUE
);
-- tools --since: a time window.
CREATE INDEX IF NOT EXISTS idx_tool_calls_timestamp ON tool_calls (timestamp);
-- the cascade from agent_executions.
CREATE INDEX IF NOT EXISTS idx_tool_calls_execution ON tool_calls (execution_id);

-- What `monitor otel push` has sent (migration 12). otel_endpoints names each OTLP traces URL
-- pushed to; otel_sent_executions and otel_sent_orchestrations hold one row per span tree an
-- endpoint accepted: a finished execution (with its tool and LLM calls) or a finished
-- orchestration, with the completed_at it had when it was read for sending. A row is written only
-- after the endpoint answered 2xx, in one transaction per batch, so a push that fails or is killed
-- sends the rest again next time and never skips one. A row whose completed_at is no longer the
-- one sent (an execution reopened and finished again) is sent again, under the same span id.
-- The marks decide what is sent; executions finish out of order, so no single high-water mark
-- could say "everything before this was sent". The columns below only say where reading may start.
-- Per endpoint, so that a push with nothing new reads nothing old (migration 15):
-- *_checked_through: every finished row with an id up to it had been accepted by this endpoint as
-- it was when the last complete push began (0: nothing known, read everything against the marks);
-- *_recheck_from: the lowest id of a finished row changed since (reopened, finished again, its
-- completed_at rewritten by an import), set by the otel_recheck_* triggers; the next push moves it
-- into *_checked_through before it reads. New rows need no trigger: AUTOINCREMENT gives them ids
-- above every earlier one, and a push never claims a row that was still in progress when it began.
CREATE TABLE IF NOT EXISTS otel_endpoints (
    id                              INTEGER PRIMARY KEY,
    url                             TEXT    NOT NULL UNIQUE,
    first_push_at                   TEXT    NOT NULL,
    executions_checked_through      INTEGER NOT NULL DEFAULT 0,
    orchestrations_checked_through  INTEGER NOT NULL DEFAULT 0,
    executions_recheck_from         INTEGER,
    orchestrations_recheck_from     INTEGER
);
CREATE TABLE IF NOT EXISTS otel_sent_executions (
    execution_id INTEGER NOT NULL REFERENCES agent_executions(id) ON DELETE CASCADE,
    endpoint_id  INTEGER NOT NULL REFERENCES otel_endpoints(id) ON DELETE CASCADE,
    completed_at TEXT,
    sent_at      TEXT    NOT NULL,
    PRIMARY KEY (execution_id, endpoint_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS otel_sent_orchestrations (
    orchestration_id INTEGER NOT NULL REFERENCES orchestrations(id) ON DELETE CASCADE,
    endpoint_id      INTEGER NOT NULL REFERENCES otel_endpoints(id) ON DELETE CASCADE,
    completed_at     TEXT,
    sent_at          TEXT    NOT NULL,
    PRIMARY KEY (orchestration_id, endpoint_id)
) WITHOUT ROWID;
-- A finished row changed (reopened, or its end rewritten): every endpoint reads it again. A row
-- finishing for the first time (in_progress -> completed) does not fire: recording stays as fast.
CREATE TRIGGER IF NOT EXISTS otel_recheck_executions
AFTER UPDATE OF status, completed_at ON agent_executions
WHEN OLD.status IS NOT 'in_progress'
     AND (NEW.status IS NOT OLD.status OR NEW.completed_at IS NOT OLD.completed_at)
BEGIN
    UPDATE otel_endpoints SET executions_recheck_from = min(coalesce(executions_recheck_from, NEW.id), NEW.id);
END;
CREATE TRIGGER IF NOT EXISTS otel_recheck_orchestrations
AFTER UPDATE OF status, completed_at ON orchestrations
WHEN OLD.status IS NOT 'running'
     AND (NEW.status IS NOT OLD.status OR NEW.completed_at IS NOT OLD.completed_at)
BEGIN
    UPDATE otel_endpoints SET orchestrations_recheck_from = min(coalesce(orchestrations_recheck_from, NEW.id), NEW.id);
END;
