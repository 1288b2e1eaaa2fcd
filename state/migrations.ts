/**
 * Versioned schema migrations. Each entry runs once, in order, inside a transaction; the
 * applied version is recorded in `schema_migrations`. Never edit a released migration: add one.
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const migrations: Migration[] = [
  {
    version: 1,
    name: 'runs, tiers, events, steps, apps (leases), children, instances, spec files',
    sql: `
      -- The observed state of each run. The desired state is the spec file; spec_json is the
      -- copy the run was admitted with, so a later edit of the file cannot change a run mid-way.
      CREATE TABLE runs (
        name TEXT PRIMARY KEY,
        spec_json TEXT NOT NULL,
        spec_hash TEXT NOT NULL,
        spec_path TEXT,
        recipe TEXT NOT NULL,
        lane TEXT NOT NULL,
        phase TEXT NOT NULL,
        result TEXT,
        reason TEXT,
        step TEXT,
        waiting_reason TEXT,
        commit_sha TEXT,
        attempt INTEGER NOT NULL DEFAULT 1,
        retries_json TEXT NOT NULL DEFAULT '[]',
        -- Set when an infrastructure fault interrupted the attempt: after teardown, start again.
        retry_pending INTEGER NOT NULL DEFAULT 0,
        teardown_started_at INTEGER,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        cancel_reason TEXT,
        owner TEXT,
        customization_json TEXT,
        created_at INTEGER NOT NULL,
        started_at INTEGER,
        finished_at INTEGER,
        updated_at INTEGER NOT NULL
      );
      CREATE INDEX runs_phase ON runs(phase);

      CREATE TABLE tiers (
        run TEXT NOT NULL REFERENCES runs(name) ON DELETE CASCADE,
        tier TEXT NOT NULL,
        position INTEGER NOT NULL,
        result TEXT,
        reason TEXT,
        started_at INTEGER,
        finished_at INTEGER,
        duration_ms INTEGER,
        PRIMARY KEY (run, tier)
      );

      -- The run's log as numbered events: followers resume from the last seq they saw.
      CREATE TABLE events (
        run TEXT NOT NULL REFERENCES runs(name) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        ts INTEGER NOT NULL,
        kind TEXT NOT NULL,
        text TEXT NOT NULL,
        PRIMARY KEY (run, seq)
      );

      -- The step journal: a step is written as 'started' before it is taken.
      CREATE TABLE steps (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run TEXT NOT NULL REFERENCES runs(name) ON DELETE CASCADE,
        attempt INTEGER NOT NULL,
        name TEXT NOT NULL,
        state TEXT NOT NULL,
        detail TEXT,
        started_at INTEGER NOT NULL,
        finished_at INTEGER
      );
      CREATE INDEX steps_run ON steps(run);

      -- Apps a run owns: the domain lease (recorded before 'abra app new') and, through the run's
      -- owner instance, the active-run registry the janitor reads.
      CREATE TABLE apps (
        domain TEXT PRIMARY KEY,
        run TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        purpose TEXT NOT NULL,
        stack TEXT NOT NULL,
        server TEXT NOT NULL,
        abra_dir TEXT NOT NULL,
        port INTEGER,
        state TEXT NOT NULL,
        leased_at INTEGER NOT NULL,
        released_at INTEGER
      );
      CREATE INDEX apps_run ON apps(run);
      CREATE UNIQUE INDEX apps_live_port ON apps(port) WHERE state != 'released' AND port IS NOT NULL;

      -- Child processes (abra, docker, git) in flight, so a restart after kill -9 can stop
      -- orphans before it tears down what they were building.
      CREATE TABLE children (
        pid INTEGER PRIMARY KEY,
        run TEXT,
        start_ticks TEXT,
        command TEXT NOT NULL,
        started_at INTEGER NOT NULL
      );

      -- Controller instances: at most one live instance serves a state directory.
      CREATE TABLE instances (
        id TEXT PRIMARY KEY,
        pid INTEGER NOT NULL,
        pid_start TEXT,
        host TEXT NOT NULL,
        mode TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        heartbeat_at INTEGER NOT NULL,
        stopped_at INTEGER
      );

      -- Every file seen in <state>/specs/, valid or not, so a bad file is visible, never lost.
      CREATE TABLE spec_files (
        path TEXT PRIMARY KEY,
        name TEXT,
        status TEXT NOT NULL,
        error TEXT,
        hash TEXT,
        seen_at INTEGER NOT NULL
      );
    `,
  },
  {
    version: 2,
    name: 'forge intake and reporting: deliveries, comments seen, poll checkpoints, reports',
    sql: `
      -- Webhook deliveries already accepted (X-Gitea-Delivery / X-Forgejo-Delivery, a UUID per hook
      -- task): the signature covers no timestamp, so a replayed delivery is dropped here.
      CREATE TABLE forge_deliveries (
        delivery TEXT PRIMARY KEY,
        comment_id INTEGER,
        received_at INTEGER NOT NULL
      );

      -- Every comment that looked like a command (!testme...), whichever way it came in. The row is
      -- written before any decision is taken, so the same comment never makes two runs or two replies;
      -- decision stays NULL while the forge could not be asked (the intake retries it).
      CREATE TABLE forge_comments (
        comment_id INTEGER PRIMARY KEY,
        owner TEXT NOT NULL,
        repo TEXT NOT NULL,
        pr INTEGER NOT NULL,
        via TEXT NOT NULL,
        event_json TEXT NOT NULL,
        decision TEXT,
        detail TEXT,
        run TEXT,
        reply_state TEXT,
        reply_comment_id INTEGER,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      );
      CREATE INDEX forge_comments_open ON forge_comments(decision, reply_state);

      -- Poll mode: per enrolled repository, the 'since' of the next comment listing (forge time).
      CREATE TABLE forge_poll (
        repo TEXT PRIMARY KEY,
        since TEXT NOT NULL,
        polled_at INTEGER NOT NULL
      );

      -- What was last reported to the forge for each run (Prow crier's prev_report_states), so a
      -- restart never posts twice: the reaction, our one PR comment and what it last said, the last
      -- commit status, and whether the final state is out.
      CREATE TABLE forge_reports (
        run TEXT PRIMARY KEY REFERENCES runs(name) ON DELETE CASCADE,
        reacted INTEGER NOT NULL DEFAULT 0,
        comment_id INTEGER,
        comment_hash TEXT,
        comment_stage TEXT,
        status_key TEXT,
        final INTEGER NOT NULL DEFAULT 0,
        failed INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        updated_at INTEGER NOT NULL
      );
    `,
  },
  {
    version: 3,
    name: 'runs: what cc-ci understood of the recipe before deploying it',
    sql: `
      -- Compose files, web service and port, backup service and volumes, secrets and their
      -- generation modifiers, the upgrade base and why (reconcilers/understand.ts).
      ALTER TABLE runs ADD COLUMN understanding_json TEXT;
    `,
  },
  {
    version: 4,
    name: "warm: the status of each recipe's warm canonical app; how a run's lane was served",
    sql: `
      -- A quick run that could not borrow a healthy warm app says so, and why (docs/warm.md).
      ALTER TABLE runs ADD COLUMN lane_note TEXT;

      -- One row per Warm object (controller/model/warm.ts): the default branch head last seen, the
      -- cold run submitted to promote it, what is promoted, the warm app's health and its holder.
      CREATE TABLE warm (
        recipe TEXT PRIMARY KEY,
        spec_json TEXT NOT NULL,
        spec_path TEXT,
        head_commit TEXT,
        head_checked_at INTEGER,
        head_error TEXT,
        candidate_commit TEXT,
        candidate_run TEXT,
        promoted_commit TEXT,
        promoted_run TEXT,
        promoted_at INTEGER,
        health TEXT NOT NULL DEFAULT 'unknown',
        health_reason TEXT,
        holder TEXT,
        last_reconcile_at INTEGER,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      );
    `,
  },
  {
    version: 5,
    name: 'warm apps: the deployed canonical app, its data snapshot, its upkeep and its holder',
    sql: `
      -- The warm app itself (reconcilers/warm-app.ts): its host port (local ingress), the version it
      -- is at and last passed the health gate, a promoted version whose gate failed (rolled back
      -- from, not tried again until the next promote), its data marker and last-known-good data
      -- snapshot, the upkeep in progress (recorded before it starts), and a hold that ended, so the
      -- app is returned to canonical even after a crash.
      ALTER TABLE warm ADD COLUMN app_port INTEGER;
      ALTER TABLE warm ADD COLUMN canonical_commit TEXT;
      ALTER TABLE warm ADD COLUMN failed_commit TEXT;
      ALTER TABLE warm ADD COLUMN marker TEXT;
      ALTER TABLE warm ADD COLUMN snapshot_json TEXT;
      ALTER TABLE warm ADD COLUMN upkeep TEXT;
      ALTER TABLE warm ADD COLUMN upkeep_started_at INTEGER;
      ALTER TABLE warm ADD COLUMN return_pending TEXT;
      ALTER TABLE warm ADD COLUMN held_since INTEGER;
      ALTER TABLE warm ADD COLUMN last_gate_at INTEGER;
      -- What the last passing gate saw (its services, the health path): what a look compares with.
      ALTER TABLE warm ADD COLUMN gate_json TEXT;
      -- The release the canonical commit is, as abra labels the deployed app (its version label).
      ALTER TABLE warm ADD COLUMN canonical_version TEXT;
    `,
  },
  {
    version: 6,
    name: 'runs: a teardown that failed after the verdict was reported',
    sql: `
      -- The verdict is reported when the last tier ends, before teardown (docs/architecture.md, A
      -- run); a teardown that then fails is the server's problem, recorded here beside the verdict
      -- it does not change, and shown on the run page, the PR comment and /metrics.
      ALTER TABLE runs ADD COLUMN teardown_problem TEXT;
    `,
  },
  {
    version: 7,
    name: 'history at scale: indexed filters, recipe aggregates, retention marks, spec file fingerprints',
    sql: `
      -- The pull request a run tests, read from its spec (trigger.forge): virtual columns, so every
      -- writer fills them, and indexed, so filtering the runs list by a pull request is a lookup.
      ALTER TABLE runs ADD COLUMN pr INTEGER GENERATED ALWAYS AS
        (CASE WHEN json_valid(spec_json) THEN json_extract(spec_json, '$.spec.trigger.forge.pr') END) VIRTUAL;
      ALTER TABLE runs ADD COLUMN pr_repo TEXT GENERATED ALWAYS AS
        (CASE WHEN json_valid(spec_json) THEN lower(json_extract(spec_json, '$.spec.trigger.forge.owner') || '/' || json_extract(spec_json, '$.spec.trigger.forge.repo')) END) VIRTUAL;

      -- Retention (reconcilers/retention.ts): when a finished run's log, steps, directory and spec
      -- file were removed (its summary stays); files_pending is set in the same transaction and
      -- cleared once the files are gone, so a restart finishes what a crash interrupted.
      ALTER TABLE runs ADD COLUMN pruned_at INTEGER;
      ALTER TABLE runs ADD COLUMN files_pending INTEGER NOT NULL DEFAULT 0;

      -- Keyset pagination, newest first, whole or by each filter (docs/architecture.md, Web pages).
      CREATE INDEX runs_created ON runs(created_at, name);
      CREATE INDEX runs_recipe_created ON runs(recipe, created_at, name);
      CREATE INDEX runs_result_created ON runs(result, created_at, name);
      CREATE INDEX runs_lane_created ON runs(lane, created_at, name);
      CREATE INDEX runs_pr_created ON runs(pr, created_at, name) WHERE pr IS NOT NULL;
      CREATE INDEX runs_files_pending ON runs(files_pending) WHERE files_pending = 1;
      -- What changed since a look (the live runs list, when a change came from another process),
      -- and what finished lately (the forge reporter's resync looks at no older run).
      CREATE INDEX runs_updated ON runs(updated_at);
      CREATE INDEX runs_finished ON runs(finished_at);

      -- What a resync compares before it reads a spec file again (inode, size, mtime, ctime), the
      -- duplicate-name check as a lookup, and the invalid files the runs list shows.
      ALTER TABLE spec_files ADD COLUMN stat_key TEXT;
      CREATE INDEX spec_files_name ON spec_files(name);
      CREATE INDEX spec_files_invalid ON spec_files(path) WHERE status = 'invalid';

      -- Per recipe and lane: the verdicts of every run that reached Done, and the newest of them
      -- (by creation, as the pages order runs). Kept by the triggers below for every writer, and
      -- never decreased when retention removes a run's summary: the pass rate outlives the rows.
      CREATE TABLE recipe_stats (
        recipe TEXT NOT NULL,
        lane TEXT NOT NULL,
        passed INTEGER NOT NULL DEFAULT 0,
        failed INTEGER NOT NULL DEFAULT 0,
        error INTEGER NOT NULL DEFAULT 0,
        cancelled INTEGER NOT NULL DEFAULT 0,
        last_run TEXT,
        last_result TEXT,
        last_created_at INTEGER,
        PRIMARY KEY (recipe, lane)
      );
      INSERT INTO recipe_stats (recipe, lane, passed, failed, error, cancelled)
        SELECT recipe, lane, SUM(result IS 'passed'), SUM(result IS 'failed'), SUM(result IS 'error'), SUM(result IS 'cancelled')
        FROM runs WHERE phase = 'Done' GROUP BY recipe, lane;
      UPDATE recipe_stats SET (last_run, last_result, last_created_at) = (
        SELECT name, result, created_at FROM runs r
        WHERE r.recipe = recipe_stats.recipe AND r.lane = recipe_stats.lane AND r.phase = 'Done'
        ORDER BY created_at DESC, name DESC LIMIT 1);

      CREATE TRIGGER runs_stats_insert AFTER INSERT ON runs WHEN NEW.phase = 'Done'
      BEGIN
        INSERT INTO recipe_stats (recipe, lane) VALUES (NEW.recipe, NEW.lane) ON CONFLICT DO NOTHING;
        UPDATE recipe_stats SET
          passed = passed + (NEW.result IS 'passed'), failed = failed + (NEW.result IS 'failed'),
          error = error + (NEW.result IS 'error'), cancelled = cancelled + (NEW.result IS 'cancelled'),
          last_run = CASE WHEN last_created_at IS NULL OR NEW.created_at > last_created_at OR (NEW.created_at = last_created_at AND NEW.name >= last_run) THEN NEW.name ELSE last_run END,
          last_result = CASE WHEN last_created_at IS NULL OR NEW.created_at > last_created_at OR (NEW.created_at = last_created_at AND NEW.name >= last_run) THEN NEW.result ELSE last_result END,
          last_created_at = CASE WHEN last_created_at IS NULL OR NEW.created_at > last_created_at OR (NEW.created_at = last_created_at AND NEW.name >= last_run) THEN NEW.created_at ELSE last_created_at END
        WHERE recipe = NEW.recipe AND lane = NEW.lane;
      END;

      -- A run leaving Done, or whose verdict changes while Done, takes back what it counted.
      CREATE TRIGGER runs_stats_undone AFTER UPDATE OF phase, result ON runs
        WHEN OLD.phase = 'Done' AND (NEW.phase IS NOT 'Done' OR OLD.result IS NOT NEW.result)
      BEGIN
        UPDATE recipe_stats SET
          passed = passed - (OLD.result IS 'passed'), failed = failed - (OLD.result IS 'failed'),
          error = error - (OLD.result IS 'error'), cancelled = cancelled - (OLD.result IS 'cancelled')
        WHERE recipe = OLD.recipe AND lane = OLD.lane;
      END;

      CREATE TRIGGER runs_stats_done AFTER UPDATE OF phase, result ON runs
        WHEN NEW.phase = 'Done' AND (OLD.phase IS NOT 'Done' OR OLD.result IS NOT NEW.result)
      BEGIN
        INSERT INTO recipe_stats (recipe, lane) VALUES (NEW.recipe, NEW.lane) ON CONFLICT DO NOTHING;
        UPDATE recipe_stats SET
          passed = passed + (NEW.result IS 'passed'), failed = failed + (NEW.result IS 'failed'),
          error = error + (NEW.result IS 'error'), cancelled = cancelled + (NEW.result IS 'cancelled'),
          last_run = CASE WHEN last_created_at IS NULL OR NEW.created_at > last_created_at OR (NEW.created_at = last_created_at AND NEW.name >= last_run) THEN NEW.name ELSE last_run END,
          last_result = CASE WHEN last_created_at IS NULL OR NEW.created_at > last_created_at OR (NEW.created_at = last_created_at AND NEW.name >= last_run) THEN NEW.result ELSE last_result END,
          last_created_at = CASE WHEN last_created_at IS NULL OR NEW.created_at > last_created_at OR (NEW.created_at = last_created_at AND NEW.name >= last_run) THEN NEW.created_at ELSE last_created_at END
        WHERE recipe = NEW.recipe AND lane = NEW.lane;
      END;
    `,
  },
  {
    version: 8,
    name: 'API tokens for actions from the CLI and scripts',
    sql: `
      -- Operator-issued bearer tokens (cc-ci token create; docs/security.md, "Who may act"). Only
      -- a token's SHA-256 is kept: a token is 32 random bytes, so a fast hash is as good as a slow
      -- one, and a copy of the state directory gives no one a token.
      CREATE TABLE api_tokens (
        name TEXT PRIMARY KEY,
        hash TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL,
        last_used_at INTEGER
      );
    `,
  },
];
