/*-------------------------------------------------------------------------
 *
 * quantum_flow--0.1.0.sql
 *		Install script of quantum_flow 0.1.0.
 *
 * Objects, in order: the C clock and key functions, the tables (the task
 * table is also the queue), the internal helpers, the definition API,
 * runs, the worker API, operations, and privileges.
 *
 * Every function either is C with schema-qualified SPI, or carries
 * SET search_path = pg_catalog, pg_temp and names the extension's objects
 * with their schema, so that no caller's search_path changes what a
 * function means.  The API functions run with the owner's rights
 * (SECURITY DEFINER, set in the Privileges section at the end), so that
 * a role needs EXECUTE on them and nothing else.
 *
 * Lock order, followed by every function that changes a run: the run row
 * first (FOR NO KEY UPDATE), then its task rows, then its step states.
 * poll_tasks locks task rows with SKIP LOCKED, so it never waits for them,
 * and takes a run lock only with SKIP LOCKED too.  No cycle of waits can
 * form as long as a transaction that polls commits before it completes,
 * fails or heartbeats: the claim locks of poll_tasks are the one
 * exception to the order, which is why workers commit after polling (they
 * do the work outside the database anyway).
 *
 *-------------------------------------------------------------------------
 */

\echo Use "CREATE EXTENSION quantum_flow" to load this file. \quit

/* ------------------------------------------------------------------------
 * Clock
 * ------------------------------------------------------------------------ */

CREATE FUNCTION quantum_flow.now()
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'qf_now'
LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION quantum_flow.now() IS
'the current time: quantum_flow.clock_override if set, else the start of the transaction';

CREATE FUNCTION quantum_flow.set_clock(
    "at" timestamptz DEFAULT '2025-01-01 00:00:00+00')
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'qf_set_clock'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION quantum_flow.advance_clock("by" interval)
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'qf_advance_clock'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION quantum_flow.reset_clock()
RETURNS void
AS 'MODULE_PATHNAME', 'qf_reset_clock'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

/* ------------------------------------------------------------------------
 * Idempotency key
 * ------------------------------------------------------------------------ */

CREATE FUNCTION quantum_flow.compute_idempotency_key(
    workflow_slug text, step_slug text, run_id uuid, task_index integer)
RETURNS varchar(64)
AS 'MODULE_PATHNAME', 'qf_compute_idempotency_key'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION quantum_flow.compute_idempotency_key(text, text, uuid, integer) IS
'md5 of workflow_slug::step_slug::run_id::task_index, in lower-case hex';

CREATE FUNCTION quantum_flow.fill_idempotency_key()
RETURNS trigger
AS 'MODULE_PATHNAME', 'qf_fill_idempotency_key'
LANGUAGE C;

/* ------------------------------------------------------------------------
 * Slugs
 * ------------------------------------------------------------------------ */

/* True for a valid slug; used by CHECK constraints and the API alike. */
CREATE FUNCTION quantum_flow.is_valid_slug(slug text)
RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT slug ~ '^[a-zA-Z_][a-zA-Z0-9_]*$' AND length(slug) <= 128
$$;

/* ------------------------------------------------------------------------
 * Tables
 * ------------------------------------------------------------------------ */

CREATE TABLE quantum_flow.workflows (
    workflow_slug   text        NOT NULL PRIMARY KEY
                    CHECK (quantum_flow.is_valid_slug(workflow_slug)),
    max_attempts    integer     NOT NULL DEFAULT 3  CHECK (max_attempts >= 1),
    base_delay      integer     NOT NULL DEFAULT 1  CHECK (base_delay >= 0),
    timeout         integer     NOT NULL DEFAULT 60 CHECK (timeout > 0),
    created_at      timestamptz NOT NULL DEFAULT quantum_flow.now()
);

CREATE TABLE quantum_flow.workflow_steps (
    workflow_slug   text        NOT NULL
                    REFERENCES quantum_flow.workflows (workflow_slug),
    step_slug       text        NOT NULL
                    CHECK (quantum_flow.is_valid_slug(step_slug)),
    step_index      integer     NOT NULL DEFAULT 0 CHECK (step_index >= 0),
    step_type       text        NOT NULL DEFAULT 'single'
                    CHECK (step_type IN ('single', 'map')),
    deps_count      integer     NOT NULL DEFAULT 0 CHECK (deps_count >= 0),
    max_attempts    integer     CHECK (max_attempts >= 1),
    base_delay      integer     CHECK (base_delay >= 0),
    timeout         integer     CHECK (timeout > 0),
    start_delay     integer     CHECK (start_delay >= 0),
    created_at      timestamptz NOT NULL DEFAULT quantum_flow.now(),
    PRIMARY KEY (workflow_slug, step_slug),
    UNIQUE (workflow_slug, step_index),
    CHECK (step_type <> 'map' OR deps_count <= 1)
);

CREATE TABLE quantum_flow.workflow_step_deps (
    workflow_slug   text        NOT NULL,
    step_slug       text        NOT NULL,
    dep_slug        text        NOT NULL,
    PRIMARY KEY (workflow_slug, step_slug, dep_slug),
    FOREIGN KEY (workflow_slug, step_slug)
        REFERENCES quantum_flow.workflow_steps (workflow_slug, step_slug),
    FOREIGN KEY (workflow_slug, dep_slug)
        REFERENCES quantum_flow.workflow_steps (workflow_slug, step_slug),
    CHECK (step_slug <> dep_slug)
);

/* Finding the dependents of a step when it completes. */
CREATE INDEX workflow_step_deps_dep_idx
    ON quantum_flow.workflow_step_deps (workflow_slug, dep_slug);

/*
 * Runs and step states are updated in place as their counters go down;
 * free space on each page lets those updates be HOT, touching no index.
 */
CREATE TABLE quantum_flow.workflow_runs (
    run_id          uuid        NOT NULL PRIMARY KEY
                    DEFAULT pg_catalog.gen_random_uuid(),
    workflow_slug   text        NOT NULL
                    REFERENCES quantum_flow.workflows (workflow_slug),
    status          text        NOT NULL DEFAULT 'started'
                    CHECK (status IN ('started', 'completed', 'failed',
                                      'cancelled')),
    input           jsonb       NOT NULL DEFAULT '{}',
    output          jsonb,
    remaining_steps integer     NOT NULL DEFAULT 0
                    CHECK (remaining_steps >= 0),
    idempotency_key text,
    error_message   text,
    started_at      timestamptz NOT NULL DEFAULT quantum_flow.now(),
    completed_at    timestamptz,
    failed_at       timestamptz,
    cancelled_at    timestamptz
) WITH (fillfactor = 75);

/* Run-level idempotency: one run per key and workflow. */
CREATE UNIQUE INDEX workflow_runs_idempotency_key_idx
    ON quantum_flow.workflow_runs (workflow_slug, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

/* Open runs per workflow, for statistics. */
CREATE INDEX workflow_runs_open_idx
    ON quantum_flow.workflow_runs (workflow_slug)
    WHERE status = 'started';

/* Retention: terminal runs by the time they ended. */
CREATE INDEX workflow_runs_ended_idx
    ON quantum_flow.workflow_runs
       ((COALESCE(completed_at, failed_at, cancelled_at)))
    WHERE status <> 'started';

CREATE TABLE quantum_flow.workflow_step_states (
    run_id          uuid        NOT NULL
                    REFERENCES quantum_flow.workflow_runs (run_id)
                    ON DELETE CASCADE,
    step_slug       text        NOT NULL,
    workflow_slug   text        NOT NULL,
    status          text        NOT NULL DEFAULT 'created'
                    CHECK (status IN ('created', 'started', 'completed',
                                      'failed', 'cancelled')),
    remaining_deps  integer     NOT NULL DEFAULT 0
                    CHECK (remaining_deps >= 0),
    initial_tasks   integer     CHECK (initial_tasks >= 0),
    remaining_tasks integer     CHECK (remaining_tasks >= 0),
    output          jsonb,
    error_message   text,
    created_at      timestamptz NOT NULL DEFAULT quantum_flow.now(),
    started_at      timestamptz,
    completed_at    timestamptz,
    failed_at       timestamptz,
    cancelled_at    timestamptz,
    PRIMARY KEY (run_id, step_slug),
    FOREIGN KEY (workflow_slug, step_slug)
        REFERENCES quantum_flow.workflow_steps (workflow_slug, step_slug)
) WITH (fillfactor = 75);

/*
 * The task table is the queue.  A status change rewrites the row, so
 * leave room on each page for the new version.
 *
 * XXX: PostgreSQL parses a table's CHECK constraints again for every
 * statement that writes the table, about a tenth of the CPU of a task
 * completion.  Domains would be parsed once per session, but they change
 * the columns' types, and callers that compare rows of these tables with
 * rows of text and integer columns would then fail; so the constraints
 * stay until a cheaper form that keeps the types exists.
 */
CREATE TABLE quantum_flow.workflow_step_tasks (
    run_id          uuid        NOT NULL,
    step_slug       text        NOT NULL,
    task_index      integer     NOT NULL DEFAULT 0 CHECK (task_index >= 0),
    workflow_slug   text        NOT NULL,
    idempotency_key varchar(64) NOT NULL,
    status          text        NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'started', 'completed',
                                      'failed', 'cancelled')),
    attempts_count  integer     NOT NULL DEFAULT 0
                    CHECK (attempts_count >= 0),
    max_attempts    integer     NOT NULL DEFAULT 3
                    CHECK (max_attempts >= 1),
    visible_at      timestamptz NOT NULL DEFAULT quantum_flow.now(),
    worker_id       text,
    input           jsonb,
    output          jsonb,
    error_message   text,
    queued_at       timestamptz NOT NULL DEFAULT quantum_flow.now(),
    started_at      timestamptz,
    completed_at    timestamptz,
    failed_at       timestamptz,
    cancelled_at    timestamptz,
    PRIMARY KEY (run_id, step_slug, task_index),
    FOREIGN KEY (run_id, step_slug)
        REFERENCES quantum_flow.workflow_step_states (run_id, step_slug)
        ON DELETE CASCADE
) WITH (fillfactor = 80);

COMMENT ON COLUMN quantum_flow.workflow_step_tasks.visible_at IS
'queued: when the task becomes claimable; started: when its lease expires';
COMMENT ON COLUMN quantum_flow.workflow_step_tasks.input IS
'the step input handed to the worker; NULL for a root single step, whose input is the run input';

CREATE UNIQUE INDEX workflow_step_tasks_idempotency_key_idx
    ON quantum_flow.workflow_step_tasks (idempotency_key);

/* The queue: claimable and leased tasks of a workflow, oldest first. */
CREATE INDEX workflow_step_tasks_claim_idx
    ON quantum_flow.workflow_step_tasks (workflow_slug, visible_at)
    WHERE status IN ('queued', 'started');

/* Leased tasks on their last attempt: where a timeout fails the run. */
CREATE INDEX workflow_step_tasks_last_attempt_idx
    ON quantum_flow.workflow_step_tasks (workflow_slug, visible_at)
    WHERE status = 'started' AND attempts_count >= max_attempts;

CREATE TRIGGER workflow_step_tasks_fill_idempotency_key
    BEFORE INSERT ON quantum_flow.workflow_step_tasks
    FOR EACH ROW
    WHEN (NEW.idempotency_key IS NULL)
    EXECUTE FUNCTION quantum_flow.fill_idempotency_key();

/* The row poll_tasks returns for each claimed task. */
CREATE TYPE quantum_flow.claimed_task AS (
    run_id            uuid,
    step_slug         text,
    task_index        integer,
    attempt           integer,
    idempotency_key   varchar(64),
    input             jsonb,
    run_input         jsonb,
    lease_expires_at  timestamptz
);

/* ------------------------------------------------------------------------
 * Internal helpers
 * ------------------------------------------------------------------------ */

/* Raise null_value_not_allowed when a required argument is NULL. */
CREATE FUNCTION quantum_flow._require(value anyelement, name text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
    IF value IS NULL THEN
        RAISE EXCEPTION '% must not be null', name
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
END
$$;

/* Raise invalid_parameter_value unless slug is a valid slug. */
CREATE FUNCTION quantum_flow._check_slug(slug text, kind text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
    IF slug IS NULL THEN
        RAISE EXCEPTION '% must not be null', kind
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT quantum_flow.is_valid_slug(slug) THEN
        RAISE EXCEPTION 'invalid % "%"', kind, slug
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A slug starts with a letter or an underscore, '
                           'continues with letters, digits or underscores, '
                           'and has at most 128 characters.';
    END IF;
END
$$;

/* Raise invalid_parameter_value unless an option is within bounds. */
CREATE FUNCTION quantum_flow._check_option(value integer, name text,
                                           minimum integer)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
    IF value IS NOT NULL AND value < minimum THEN
        RAISE EXCEPTION '% must be at least %', name, minimum
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('The value given was %s.', value);
    END IF;
END
$$;

/* Raise undefined_object for a run that does not exist. */
CREATE FUNCTION quantum_flow._no_run(run_id uuid)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
    RAISE EXCEPTION 'run "%" does not exist', run_id
        USING ERRCODE = 'undefined_object';
END
$$;

/* Raise undefined_object for a task that does not exist. */
CREATE FUNCTION quantum_flow._no_task(run_id uuid, step_slug text,
                                      task_index integer)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
    RAISE EXCEPTION 'task % of step "%" in run "%" does not exist',
        task_index, step_slug, run_id
        USING ERRCODE = 'undefined_object';
END
$$;

/*
 * _fail_run
 *		Fail a step and its run, and cancel every other open step and task
 *		of the run.  The caller holds the run lock.
 */
CREATE FUNCTION quantum_flow._fail_run(p_run_id uuid, p_step_slug text,
                                       p_step_error text, p_run_error text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_now timestamptz := quantum_flow.now();
BEGIN
    UPDATE quantum_flow.workflow_runs AS r
       SET status = 'failed', failed_at = v_now, error_message = p_run_error
     WHERE r.run_id = p_run_id AND r.status = 'started';
    IF NOT FOUND THEN
        RETURN;
    END IF;

    UPDATE quantum_flow.workflow_step_tasks AS t
       SET status = 'cancelled', cancelled_at = v_now
     WHERE t.run_id = p_run_id AND t.status IN ('queued', 'started');

    UPDATE quantum_flow.workflow_step_states AS ss
       SET status = CASE WHEN ss.step_slug = p_step_slug
                         THEN 'failed' ELSE 'cancelled' END,
           failed_at = CASE WHEN ss.step_slug = p_step_slug THEN v_now END,
           cancelled_at = CASE WHEN ss.step_slug = p_step_slug
                               THEN NULL ELSE v_now END,
           error_message = CASE WHEN ss.step_slug = p_step_slug
                                THEN p_step_error END
     WHERE ss.run_id = p_run_id AND ss.status IN ('created', 'started');
END
$$;

/*
 * _fail_task_final
 *		A task has used its last attempt: fail it, its step and its run.
 *		The caller holds the run lock and the task's row lock.
 */
CREATE FUNCTION quantum_flow._fail_task_final(p_run_id uuid,
                                              p_step_slug text,
                                              p_task_index integer,
                                              p_error text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
    UPDATE quantum_flow.workflow_step_tasks AS t
       SET status = 'failed', failed_at = quantum_flow.now(),
           error_message = p_error
     WHERE t.run_id = p_run_id AND t.step_slug = p_step_slug
       AND t.task_index = p_task_index;

    PERFORM quantum_flow._fail_run(
        p_run_id, p_step_slug, p_error,
        format('step "%s" failed: %s', p_step_slug, p_error));
END
$$;

/* ------------------------------------------------------------------------
 * Running: the C part
 * ------------------------------------------------------------------------ */

CREATE FUNCTION quantum_flow.start_ready_steps(run_id uuid)
RETURNS integer
AS 'MODULE_PATHNAME', 'qf_start_ready_steps'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION quantum_flow.start_ready_steps(uuid) IS
'starts the ready steps of a run and creates their tasks, once; returns the number of tasks created';

/* ------------------------------------------------------------------------
 * Defining workflows
 * ------------------------------------------------------------------------ */

/*
 * create_workflow
 *		Create a workflow, or return it unchanged when it exists with the
 *		same options.
 */
CREATE FUNCTION quantum_flow.create_workflow(workflow_slug text,
                                             max_attempts integer DEFAULT 3,
                                             base_delay integer DEFAULT 1,
                                             timeout integer DEFAULT 60)
RETURNS quantum_flow.workflows
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_row quantum_flow.workflows;
BEGIN
    /* Validate everything before writing anything. */
    PERFORM quantum_flow._check_slug($1, 'workflow slug');
    PERFORM quantum_flow._require($2, 'max_attempts');
    PERFORM quantum_flow._require($3, 'base_delay');
    PERFORM quantum_flow._require($4, 'timeout');
    PERFORM quantum_flow._check_option($2, 'max_attempts', 1);
    PERFORM quantum_flow._check_option($3, 'base_delay', 0);
    PERFORM quantum_flow._check_option($4, 'timeout', 1);

    /* Insert, or find the row a previous call inserted. */
    INSERT INTO quantum_flow.workflows AS w
           (workflow_slug, max_attempts, base_delay, timeout)
    VALUES ($1, $2, $3, $4)
    ON CONFLICT ON CONSTRAINT workflows_pkey DO NOTHING
    RETURNING w.* INTO v_row;
    IF FOUND THEN
        RETURN v_row;
    END IF;

    SELECT w.* INTO v_row
      FROM quantum_flow.workflows AS w
     WHERE w.workflow_slug = $1;
    IF (v_row.max_attempts, v_row.base_delay, v_row.timeout)
       IS DISTINCT FROM ($2, $3, $4) THEN
        RAISE EXCEPTION 'workflow "%" already exists with different options', $1
            USING ERRCODE = 'duplicate_object',
                  DETAIL = format('The existing workflow has max_attempts %s, '
                                  'base_delay %s and timeout %s.',
                                  v_row.max_attempts, v_row.base_delay,
                                  v_row.timeout);
    END IF;
    RETURN v_row;
END
$$;

/*
 * add_step
 *		Add a step to a workflow, or return it unchanged when it exists
 *		with the same type, options and dependencies.
 */
CREATE FUNCTION quantum_flow.add_step(workflow_slug text,
                                      step_slug text,
                                      depends_on text[] DEFAULT '{}',
                                      step_type text DEFAULT 'single',
                                      max_attempts integer DEFAULT NULL,
                                      base_delay integer DEFAULT NULL,
                                      timeout integer DEFAULT NULL,
                                      start_delay integer DEFAULT NULL)
RETURNS quantum_flow.workflow_steps
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_row       quantum_flow.workflow_steps;
    v_deps      text[];
    v_old_deps  text[];
    v_dep       text;
BEGIN
    /* Arguments. */
    PERFORM quantum_flow._check_slug($1, 'workflow slug');
    PERFORM quantum_flow._check_slug($2, 'step slug');
    PERFORM quantum_flow._require($3, 'depends_on');
    PERFORM quantum_flow._require($4, 'step_type');
    IF $4 NOT IN ('single', 'map') THEN
        RAISE EXCEPTION 'invalid step type "%"', $4
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A step type is "single" or "map".';
    END IF;
    PERFORM quantum_flow._check_option($5, 'max_attempts', 1);
    PERFORM quantum_flow._check_option($6, 'base_delay', 0);
    PERFORM quantum_flow._check_option($7, 'timeout', 1);
    PERFORM quantum_flow._check_option($8, 'start_delay', 0);

    /* Dependencies: valid, distinct, not the step itself. */
    IF array_ndims($3) > 1 THEN
        RAISE EXCEPTION 'depends_on must be a one-dimensional array'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOREACH v_dep IN ARRAY $3 LOOP
        PERFORM quantum_flow._check_slug(v_dep, 'dependency slug');
        IF v_dep = $2 THEN
            RAISE EXCEPTION 'step "%" cannot depend on itself', $2
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;
    SELECT coalesce(array_agg(DISTINCT d ORDER BY d), '{}')
      INTO v_deps
      FROM unnest($3) AS d;
    IF cardinality(v_deps) <> cardinality($3) THEN
        RAISE EXCEPTION 'step "%" lists a dependency more than once', $2
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF $4 = 'map' AND cardinality(v_deps) > 1 THEN
        RAISE EXCEPTION 'map step "%" has % dependencies', $2,
                        cardinality(v_deps)
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A map step maps over the run input or over the '
                           'output of exactly one step.';
    END IF;

    /* The workflow, locked so that step indexes are handed out in turn. */
    PERFORM 1 FROM quantum_flow.workflows AS w
     WHERE w.workflow_slug = $1
       FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'workflow "%" does not exist', $1
            USING ERRCODE = 'undefined_object';
    END IF;

    /* An existing step must match exactly. */
    SELECT s.* INTO v_row
      FROM quantum_flow.workflow_steps AS s
     WHERE s.workflow_slug = $1 AND s.step_slug = $2;
    IF FOUND THEN
        SELECT coalesce(array_agg(d.dep_slug ORDER BY d.dep_slug), '{}')
          INTO v_old_deps
          FROM quantum_flow.workflow_step_deps AS d
         WHERE d.workflow_slug = $1 AND d.step_slug = $2;
        IF (v_row.step_type, v_row.max_attempts, v_row.base_delay,
            v_row.timeout, v_row.start_delay, v_old_deps)
           IS DISTINCT FROM ($4, $5, $6, $7, $8, v_deps) THEN
            RAISE EXCEPTION 'step "%" of workflow "%" already exists with a different definition',
                            $2, $1
                USING ERRCODE = 'duplicate_object';
        END IF;
        RETURN v_row;
    END IF;

    /* Every dependency must already be a step of the workflow. */
    SELECT d INTO v_dep
      FROM unnest(v_deps) AS d
     WHERE NOT EXISTS (SELECT 1 FROM quantum_flow.workflow_steps AS s
                        WHERE s.workflow_slug = $1 AND s.step_slug = d)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'step "%" of workflow "%" does not exist', v_dep, $1
            USING ERRCODE = 'undefined_object',
                  DETAIL = format('Step "%s" depends on it.', $2),
                  HINT = 'Add a step after the steps it depends on.';
    END IF;

    /* Insert the step and its dependencies. */
    INSERT INTO quantum_flow.workflow_steps AS s
           (workflow_slug, step_slug, step_index, step_type, deps_count,
            max_attempts, base_delay, timeout, start_delay)
    SELECT $1, $2,
           coalesce((SELECT max(s2.step_index) + 1
                       FROM quantum_flow.workflow_steps AS s2
                      WHERE s2.workflow_slug = $1), 0),
           $4, cardinality(v_deps), $5, $6, $7, $8
    RETURNING s.* INTO v_row;

    INSERT INTO quantum_flow.workflow_step_deps (workflow_slug, step_slug,
                                                 dep_slug)
    SELECT $1, $2, d FROM unnest(v_deps) AS d;

    RETURN v_row;
END
$$;

/*
 * define_workflow
 *		Create a whole workflow from one JSON document, atomically.  Steps
 *		may come in any order; they are added in dependency order, ties
 *		broken by their order in the document.  Repeating an identical
 *		definition is a no-op; a different one for an existing workflow is
 *		duplicate_object.
 */
CREATE FUNCTION quantum_flow.define_workflow(workflow_slug text,
                                             definition jsonb)
RETURNS quantum_flow.workflows
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_steps     jsonb;
    v_step      jsonb;
    v_key       text;
    v_slugs     text[] := '{}';
    v_deps      jsonb := '{}';       -- slug -> array of dependency slugs
    v_done      text[] := '{}';
    v_order     text[] := '{}';
    v_progress  boolean;
    v_slug      text;
    v_exists    boolean;
    v_row       quantum_flow.workflows;
    v_defined   integer;
    i           integer;
BEGIN
    PERFORM quantum_flow._check_slug($1, 'workflow slug');
    PERFORM quantum_flow._require($2, 'definition');

    /* The document: an object with known keys and a steps array. */
    IF jsonb_typeof($2) <> 'object' THEN
        RAISE EXCEPTION 'workflow definition must be a JSON object'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('The definition is of type %s.',
                                  jsonb_typeof($2));
    END IF;
    FOR v_key IN SELECT jsonb_object_keys($2) LOOP
        IF v_key NOT IN ('max_attempts', 'base_delay', 'timeout', 'steps') THEN
            RAISE EXCEPTION 'unknown key "%" in workflow definition', v_key
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Known keys are max_attempts, base_delay, '
                             'timeout and steps.';
        END IF;
    END LOOP;
    v_steps := coalesce($2 -> 'steps', '[]');
    IF jsonb_typeof(v_steps) <> 'array' THEN
        RAISE EXCEPTION '"steps" must be a JSON array'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    /* Each step: an object with a new slug and well-formed fields. */
    FOR v_step IN SELECT e FROM jsonb_array_elements(v_steps) AS e LOOP
        IF jsonb_typeof(v_step) <> 'object' THEN
            RAISE EXCEPTION 'each step must be a JSON object'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        FOR v_key IN SELECT jsonb_object_keys(v_step) LOOP
            IF v_key NOT IN ('slug', 'depends_on', 'type', 'max_attempts',
                             'base_delay', 'timeout', 'start_delay') THEN
                RAISE EXCEPTION 'unknown key "%" in step definition', v_key
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'Known keys are slug, depends_on, type, '
                                 'max_attempts, base_delay, timeout and '
                                 'start_delay.';
            END IF;
        END LOOP;
        IF jsonb_typeof(v_step -> 'slug') IS DISTINCT FROM 'string' THEN
            RAISE EXCEPTION 'each step must have a string "slug"'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        v_slug := v_step ->> 'slug';
        PERFORM quantum_flow._check_slug(v_slug, 'step slug');
        IF v_slug = ANY (v_slugs) THEN
            RAISE EXCEPTION 'step "%" is defined more than once', v_slug
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF v_step ? 'depends_on' AND
           (jsonb_typeof(v_step -> 'depends_on') <> 'array' OR
            EXISTS (SELECT 1
                      FROM jsonb_array_elements(v_step -> 'depends_on') AS d
                     WHERE jsonb_typeof(d) <> 'string')) THEN
            RAISE EXCEPTION '"depends_on" of step "%" must be an array of strings',
                            v_slug
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF v_step ? 'type' AND
           jsonb_typeof(v_step -> 'type') <> 'string' THEN
            RAISE EXCEPTION '"type" of step "%" must be a string', v_slug
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        FOREACH v_key IN ARRAY ARRAY['max_attempts', 'base_delay',
                                     'timeout', 'start_delay'] LOOP
            IF v_step ? v_key AND
               jsonb_typeof(v_step -> v_key) <> 'null' AND
               (jsonb_typeof(v_step -> v_key) <> 'number' OR
                (v_step ->> v_key)::numeric <>
                    trunc((v_step ->> v_key)::numeric) OR
                abs((v_step ->> v_key)::numeric) > 2147483647) THEN
                RAISE EXCEPTION '"%" of step "%" must be an integer',
                                v_key, v_slug
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
        END LOOP;
        v_slugs := v_slugs || v_slug;
        v_deps := v_deps || jsonb_build_object(
            v_slug, coalesce(v_step -> 'depends_on', '[]'));
    END LOOP;
    FOREACH v_key IN ARRAY ARRAY['max_attempts', 'base_delay', 'timeout']
    LOOP
        IF $2 ? v_key AND
           (jsonb_typeof($2 -> v_key) <> 'number' OR
            ($2 ->> v_key)::numeric <> trunc(($2 ->> v_key)::numeric) OR
            abs(($2 ->> v_key)::numeric) > 2147483647) THEN
            RAISE EXCEPTION '"%" of workflow "%" must be an integer',
                            v_key, $1
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;

    /* Unknown dependencies are undefined objects. */
    SELECT d.key, dep.slug INTO v_slug, v_key
      FROM jsonb_each(v_deps) AS d,
           jsonb_array_elements_text(d.value) AS dep(slug)
     WHERE dep.slug <> ALL (v_slugs)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'step "%" of workflow "%" does not exist', v_key, $1
            USING ERRCODE = 'undefined_object',
                  DETAIL = format('Step "%s" depends on it.', v_slug);
    END IF;

    /* Order the steps so that each comes after its dependencies. */
    LOOP
        v_progress := false;
        FOREACH v_slug IN ARRAY v_slugs LOOP
            CONTINUE WHEN v_slug = ANY (v_done);
            IF NOT EXISTS (
                SELECT 1
                  FROM jsonb_array_elements_text(v_deps -> v_slug) AS dep(slug)
                 WHERE dep.slug <> ALL (v_done)) THEN
                v_done := v_done || v_slug;
                v_order := v_order || v_slug;
                v_progress := true;
            END IF;
        END LOOP;
        EXIT WHEN NOT v_progress;
    END LOOP;
    IF cardinality(v_order) < cardinality(v_slugs) THEN
        RAISE EXCEPTION 'workflow "%" has a dependency cycle', $1
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('These steps cannot be ordered: %s.',
                                  array_to_string(ARRAY(
                                      SELECT s FROM unnest(v_slugs) AS s
                                       WHERE s <> ALL (v_done)), ', '));
    END IF;

    /* An existing workflow must have exactly the steps defined here. */
    SELECT true INTO v_exists
      FROM quantum_flow.workflows AS w WHERE w.workflow_slug = $1;
    v_exists := coalesce(v_exists, false);

    v_row := quantum_flow.create_workflow(
        $1,
        coalesce(($2 ->> 'max_attempts')::integer, 3),
        coalesce(($2 ->> 'base_delay')::integer, 1),
        coalesce(($2 ->> 'timeout')::integer, 60));

    IF v_exists THEN
        SELECT count(*) INTO v_defined
          FROM quantum_flow.workflow_steps AS s
         WHERE s.workflow_slug = $1;
        IF v_defined <> cardinality(v_slugs) THEN
            RAISE EXCEPTION 'workflow "%" already exists with different steps', $1
                USING ERRCODE = 'duplicate_object',
                      DETAIL = format('It has %s steps; the definition has %s.',
                                      v_defined, cardinality(v_slugs));
        END IF;
    END IF;

    /* Add the steps; add_step checks that existing ones match. */
    FOR i IN 1 .. coalesce(cardinality(v_order), 0) LOOP
        SELECT e INTO v_step
          FROM jsonb_array_elements(v_steps) AS e
         WHERE e ->> 'slug' = v_order[i];
        PERFORM quantum_flow.add_step(
            $1, v_order[i],
            ARRAY(SELECT jsonb_array_elements_text(
                      coalesce(v_step -> 'depends_on', '[]'))),
            coalesce(v_step ->> 'type', 'single'),
            (v_step ->> 'max_attempts')::integer,
            (v_step ->> 'base_delay')::integer,
            (v_step ->> 'timeout')::integer,
            (v_step ->> 'start_delay')::integer);
    END LOOP;

    RETURN v_row;
END
$$;

/* ------------------------------------------------------------------------
 * Running
 * ------------------------------------------------------------------------ */

/*
 * start_run
 *		Create a run, its step states, and the tasks of its root steps, in
 *		one transaction.  With an idempotency key already used for the
 *		workflow, return that run if the input is the same, and fail with
 *		unique_violation if it is not.
 */
CREATE FUNCTION quantum_flow.start_run(workflow_slug text,
                                       input jsonb DEFAULT '{}',
                                       run_id uuid DEFAULT NULL,
                                       idempotency_key text DEFAULT NULL)
RETURNS quantum_flow.workflow_runs
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_run       quantum_flow.workflow_runs;
    v_nsteps    integer;
    v_map_root  text;
BEGIN
    /* Arguments and the workflow. */
    PERFORM quantum_flow._require($1, 'workflow_slug');
    PERFORM quantum_flow._require($2, 'input');
    PERFORM 1 FROM quantum_flow.workflows AS w WHERE w.workflow_slug = $1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'workflow "%" does not exist', $1
            USING ERRCODE = 'undefined_object';
    END IF;

    SELECT count(*),
           min(s.step_slug) FILTER (WHERE s.step_type = 'map'
                                      AND s.deps_count = 0)
      INTO v_nsteps, v_map_root
      FROM quantum_flow.workflow_steps AS s
     WHERE s.workflow_slug = $1;
    IF v_nsteps = 0 THEN
        RAISE EXCEPTION 'workflow "%" has no steps', $1
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Add steps with add_step() or define_workflow().';
    END IF;
    IF v_map_root IS NOT NULL AND jsonb_typeof($2) <> 'array' THEN
        RAISE EXCEPTION 'input of workflow "%" must be a JSON array', $1
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Root step "%s" is a map step; the input '
                                  'is of type %s.', v_map_root,
                                  jsonb_typeof($2));
    END IF;

    /*
     * Insert the run.  With an idempotency key, a concurrent start with
     * the same key waits here for the other to commit, then finds its run.
     */
    INSERT INTO quantum_flow.workflow_runs AS r
           (run_id, workflow_slug, status, input, remaining_steps,
            idempotency_key)
    VALUES (coalesce($3, gen_random_uuid()), $1, 'started', $2, v_nsteps, $4)
    ON CONFLICT (workflow_slug, idempotency_key)
       WHERE idempotency_key IS NOT NULL
    DO NOTHING
    RETURNING r.* INTO v_run;

    IF NOT FOUND THEN
        SELECT r.* INTO v_run
          FROM quantum_flow.workflow_runs AS r
         WHERE r.workflow_slug = $1 AND r.idempotency_key = $4;
        IF v_run.input IS DISTINCT FROM $2 THEN
            RAISE EXCEPTION 'idempotency key "%" was already used for a run of workflow "%" with a different input',
                            $4, $1
                USING ERRCODE = 'unique_violation',
                      DETAIL = format('The existing run is %s.', v_run.run_id);
        END IF;
        RETURN v_run;
    END IF;

    /* One state per step. */
    INSERT INTO quantum_flow.workflow_step_states
           (run_id, step_slug, workflow_slug, status, remaining_deps)
    SELECT v_run.run_id, s.step_slug, s.workflow_slug, 'created',
           s.deps_count
      FROM quantum_flow.workflow_steps AS s
     WHERE s.workflow_slug = $1
     ORDER BY s.step_index;

    /* Start the root steps; this may even complete the run. */
    PERFORM quantum_flow.start_ready_steps(v_run.run_id);

    SELECT r.* INTO v_run
      FROM quantum_flow.workflow_runs AS r
     WHERE r.run_id = v_run.run_id;
    RETURN v_run;
END
$$;

/* ------------------------------------------------------------------------
 * Working
 * ------------------------------------------------------------------------ */

/*
 * poll_tasks
 *		Claim up to batch_size claimable tasks of a workflow, oldest first,
 *		skipping tasks that concurrent pollers hold.  A started task whose
 *		lease expired is claimable again while it has attempts left; one on
 *		its last attempt is failed here as timed out, with its run.
 */
CREATE FUNCTION quantum_flow.poll_tasks(workflow_slug text,
                                        worker_id text DEFAULT NULL,
                                        batch_size integer DEFAULT 10,
                                        lease interval DEFAULT NULL)
RETURNS SETOF quantum_flow.claimed_task
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_now       timestamptz := quantum_flow.now();
    v_expired   record;
BEGIN
    /* Arguments and the workflow. */
    IF $1 IS NULL OR $3 IS NULL THEN
        PERFORM quantum_flow._require($1, 'workflow_slug');
        PERFORM quantum_flow._require($3, 'batch_size');
    END IF;
    IF $3 < 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF $4 IS NOT NULL AND $4 <= interval '0' THEN
        RAISE EXCEPTION 'lease must be positive'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('The lease given was %s.', $4);
    END IF;
    /*
     * Every lease that ran out on the last attempt fails its run.  The
     * candidates are read without locks; each run is then locked before
     * its task, the engine's lock order, and a run another session holds
     * is left to the next poll.  A task whose run this loop already failed
     * was cancelled with it and no longer qualifies.
     */
    FOR v_expired IN
        SELECT t.run_id, t.step_slug, t.task_index, t.attempts_count
          FROM quantum_flow.workflow_step_tasks AS t
         WHERE t.workflow_slug = $1
           AND t.status = 'started'
           AND t.attempts_count >= t.max_attempts
           AND t.visible_at <= v_now
         ORDER BY t.visible_at
    LOOP
        PERFORM 1 FROM quantum_flow.workflow_runs AS r
         WHERE r.run_id = v_expired.run_id AND r.status = 'started'
           FOR NO KEY UPDATE SKIP LOCKED;
        CONTINUE WHEN NOT FOUND;

        PERFORM 1 FROM quantum_flow.workflow_step_tasks AS t
         WHERE t.run_id = v_expired.run_id
           AND t.step_slug = v_expired.step_slug
           AND t.task_index = v_expired.task_index
           AND t.status = 'started'
           AND t.attempts_count >= t.max_attempts
           AND t.visible_at <= v_now
           FOR UPDATE;
        CONTINUE WHEN NOT FOUND;

        PERFORM quantum_flow._fail_task_final(
            v_expired.run_id, v_expired.step_slug, v_expired.task_index,
            format('timed out: the lease of attempt %s expired',
                   v_expired.attempts_count));
    END LOOP;

    /* Claim: queued tasks, and leased ones that have attempts left. */
    RETURN QUERY
    WITH candidates AS (
        SELECT t.run_id, t.step_slug, t.task_index
          FROM quantum_flow.workflow_step_tasks AS t
         WHERE t.workflow_slug = $1
           AND t.status IN ('queued', 'started')
           AND t.visible_at <= v_now
           AND t.attempts_count < t.max_attempts
         ORDER BY t.visible_at
         LIMIT $3
           FOR UPDATE SKIP LOCKED
    ), claimed AS (
        UPDATE quantum_flow.workflow_step_tasks AS t
           SET status = 'started',
               attempts_count = t.attempts_count + 1,
               started_at = v_now,
               worker_id = $2,
               visible_at = v_now + coalesce(
                   $4, make_interval(secs => coalesce(s.timeout, w.timeout)))
          FROM candidates AS c,
               quantum_flow.workflow_steps AS s,
               quantum_flow.workflows AS w
         WHERE t.run_id = c.run_id
           AND t.step_slug = c.step_slug
           AND t.task_index = c.task_index
           AND s.workflow_slug = t.workflow_slug
           AND s.step_slug = t.step_slug
           AND w.workflow_slug = t.workflow_slug
        RETURNING t.run_id, t.step_slug, t.task_index, t.attempts_count,
                  t.idempotency_key, t.input, t.visible_at
    )
    SELECT c.run_id, c.step_slug, c.task_index, c.attempts_count,
           c.idempotency_key, coalesce(c.input, r.input), r.input,
           c.visible_at
      FROM claimed AS c
      JOIN quantum_flow.workflow_runs AS r ON r.run_id = c.run_id
     ORDER BY c.run_id, c.step_slug, c.task_index;

    /* Nothing claimed: make sure it is not for want of a workflow. */
    IF NOT FOUND THEN
        PERFORM 1 FROM quantum_flow.workflows AS w WHERE w.workflow_slug = $1;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'workflow "%" does not exist', $1
                USING ERRCODE = 'undefined_object';
        END IF;
    END IF;
END
$$;

/*
 * extend_lease
 *		Heartbeat: push the lease of a running attempt forward.  False
 *		means the attempt is no longer the worker's to run.
 */
CREATE FUNCTION quantum_flow.extend_lease(run_id uuid,
                                          step_slug text,
                                          task_index integer,
                                          attempt integer,
                                          lease interval)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_status text;
BEGIN
    PERFORM quantum_flow._require($1, 'run_id');
    PERFORM quantum_flow._require($2, 'step_slug');
    PERFORM quantum_flow._require($3, 'task_index');
    PERFORM quantum_flow._require($4, 'attempt');
    PERFORM quantum_flow._require($5, 'lease');
    IF $5 <= interval '0' THEN
        RAISE EXCEPTION 'lease must be positive'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('The lease given was %s.', $5);
    END IF;

    /*
     * The run first: that is the lock order.  Without it, a transaction
     * that heartbeats and then completes could deadlock with a final
     * failure of the same run.
     */
    SELECT r.status INTO v_status
      FROM quantum_flow.workflow_runs AS r
     WHERE r.run_id = $1
       FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        PERFORM quantum_flow._no_run($1);
    END IF;

    UPDATE quantum_flow.workflow_step_tasks AS t
       SET visible_at = quantum_flow.now() + $5
     WHERE t.run_id = $1 AND t.step_slug = $2 AND t.task_index = $3
       AND t.status = 'started' AND t.attempts_count = $4
       AND v_status = 'started';
    IF FOUND THEN
        RETURN true;
    END IF;

    PERFORM 1 FROM quantum_flow.workflow_step_tasks AS t
     WHERE t.run_id = $1 AND t.step_slug = $2 AND t.task_index = $3;
    IF NOT FOUND THEN
        PERFORM quantum_flow._no_task($1, $2, $3);
    END IF;
    RETURN false;
END
$$;

/*
 * _count_off_tasks
 *		Count completed tasks off their step; a step left with no task
 *		completes, its dependents and run are told, and the steps that
 *		became ready start (C, src/queue.c).  The caller holds the run lock.
 */
CREATE FUNCTION quantum_flow._count_off_tasks(run_id uuid, step_slug text,
                                              ntasks integer)
RETURNS void
AS 'MODULE_PATHNAME', 'qf_count_off_tasks_sql'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

/*
 * complete_task
 *		Record a task's output (C, src/queue.c).  Applies only to a started
 *		task of a started run, and, when attempt is given, only to that
 *		attempt; otherwise returns the row unchanged, so that late or
 *		duplicate callbacks are harmless.
 */
CREATE FUNCTION quantum_flow.complete_task(run_id uuid,
                                           step_slug text,
                                           task_index integer,
                                           output jsonb DEFAULT 'null',
                                           attempt integer DEFAULT NULL)
RETURNS quantum_flow.workflow_step_tasks
AS 'MODULE_PATHNAME', 'qf_complete_task'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

/*
 * complete_tasks
 *		complete_task for many tasks in one call and one transaction.
 *		Runs are locked in run_id order, so that two batches that share
 *		runs cannot deadlock.  Returns how many tasks were completed.
 */
CREATE FUNCTION quantum_flow.complete_tasks(run_ids uuid[],
                                            step_slugs text[],
                                            task_indexes integer[],
                                            outputs jsonb[],
                                            attempts integer[] DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_n         integer;
    v_missing   record;
    v_applied   integer := 0;
    v_step      record;
BEGIN
    PERFORM quantum_flow._require($1, 'run_ids');
    PERFORM quantum_flow._require($2, 'step_slugs');
    PERFORM quantum_flow._require($3, 'task_indexes');
    PERFORM quantum_flow._require($4, 'outputs');
    v_n := coalesce(cardinality($1), 0);
    IF cardinality($2) <> v_n OR cardinality($3) <> v_n OR
       cardinality($4) <> v_n OR
       ($5 IS NOT NULL AND cardinality($5) <> v_n) THEN
        RAISE EXCEPTION 'arrays passed to complete_tasks must have the same length'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_n = 0 THEN
        RETURN 0;
    END IF;

    /* Every element must name an existing task; else nothing applies. */
    /*
     * The lookup is a plain anti-join, one primary-key probe per element:
     * an OR here would let the planner hash the whole task table instead.
     */
    SELECT b.* INTO v_missing
      FROM unnest($1, $2, $3) WITH ORDINALITY
           AS b(run_id, step_slug, task_index, ord)
     WHERE NOT EXISTS (SELECT 1 FROM quantum_flow.workflow_step_tasks AS t
                        WHERE t.run_id = b.run_id
                          AND t.step_slug = b.step_slug
                          AND t.task_index = b.task_index)
     ORDER BY b.ord
     LIMIT 1;
    IF FOUND THEN
        IF v_missing.run_id IS NULL OR v_missing.step_slug IS NULL OR
           v_missing.task_index IS NULL THEN
            RAISE EXCEPTION 'element % of the batch has a null task reference',
                            v_missing.ord
                USING ERRCODE = 'null_value_not_allowed';
        END IF;
        PERFORM quantum_flow._no_task(v_missing.run_id, v_missing.step_slug,
                                      v_missing.task_index);
    END IF;

    /* Lock the runs in a fixed order. */
    PERFORM 1 FROM quantum_flow.workflow_runs AS r
     WHERE r.run_id = ANY ($1)
     ORDER BY r.run_id
       FOR NO KEY UPDATE;

    /* Complete what may be completed, then count it off per step. */
    FOR v_step IN
        WITH done AS (
            UPDATE quantum_flow.workflow_step_tasks AS t
               SET status = 'completed', completed_at = quantum_flow.now(),
                   output = coalesce(b.output, 'null')
              FROM unnest($1, $2, $3, $4, $5)
                   AS b(run_id, step_slug, task_index, output, attempt),
                   quantum_flow.workflow_runs AS r
             WHERE t.run_id = b.run_id AND t.step_slug = b.step_slug
               AND t.task_index = b.task_index
               AND t.status = 'started'
               AND (b.attempt IS NULL OR t.attempts_count = b.attempt)
               AND r.run_id = t.run_id AND r.status = 'started'
            RETURNING t.run_id, t.step_slug
        )
        SELECT d.run_id, d.step_slug, count(*)::integer AS n
          FROM done AS d
         GROUP BY d.run_id, d.step_slug
         ORDER BY d.run_id, d.step_slug
    LOOP
        PERFORM quantum_flow._count_off_tasks(v_step.run_id, v_step.step_slug,
                                              v_step.n);
        v_applied := v_applied + v_step.n;
    END LOOP;

    RETURN v_applied;
END
$$;

/*
 * fail_task
 *		Record a failed attempt.  With attempts left the task is queued
 *		again after base_delay * 2^(attempts_count - 1) seconds; otherwise
 *		the task, its step and its run fail and the run's other open tasks
 *		are cancelled.  Same guards as complete_task.
 */
CREATE FUNCTION quantum_flow.fail_task(run_id uuid,
                                       step_slug text,
                                       task_index integer,
                                       error_message text,
                                       attempt integer DEFAULT NULL)
RETURNS quantum_flow.workflow_step_tasks
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_status    text;
    v_task      quantum_flow.workflow_step_tasks;
    v_delay     double precision;
    v_now       timestamptz := quantum_flow.now();
BEGIN
    PERFORM quantum_flow._require($1, 'run_id');
    PERFORM quantum_flow._require($2, 'step_slug');
    PERFORM quantum_flow._require($3, 'task_index');
    PERFORM quantum_flow._require($4, 'error_message');

    /* The run first: that is the lock order. */
    SELECT r.status INTO v_status
      FROM quantum_flow.workflow_runs AS r
     WHERE r.run_id = $1
       FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        PERFORM quantum_flow._no_run($1);
    END IF;

    SELECT t.* INTO v_task
      FROM quantum_flow.workflow_step_tasks AS t
     WHERE t.run_id = $1 AND t.step_slug = $2 AND t.task_index = $3
       FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM quantum_flow._no_task($1, $2, $3);
    END IF;

    /* Late, duplicate or stale callbacks change nothing. */
    IF v_task.status <> 'started' OR v_status <> 'started' OR
       ($5 IS NOT NULL AND v_task.attempts_count <> $5) THEN
        RETURN v_task;
    END IF;

    IF v_task.attempts_count < v_task.max_attempts THEN
        /* Retry after an exponential backoff, capped to stay finite. */
        SELECT coalesce(s.base_delay, w.base_delay)::double precision
               * power(2::double precision, v_task.attempts_count - 1)
          INTO v_delay
          FROM quantum_flow.workflow_steps AS s
          JOIN quantum_flow.workflows AS w
            ON w.workflow_slug = s.workflow_slug
         WHERE s.workflow_slug = v_task.workflow_slug
           AND s.step_slug = $2;
        v_delay := least(v_delay, 2147483647);

        UPDATE quantum_flow.workflow_step_tasks AS t
           SET status = 'queued', error_message = $4,
               visible_at = v_now + make_interval(secs => v_delay),
               worker_id = NULL
         WHERE t.run_id = $1 AND t.step_slug = $2 AND t.task_index = $3
        RETURNING t.* INTO v_task;
        PERFORM pg_notify('quantum_flow', v_task.workflow_slug)
          WHERE current_setting('quantum_flow.notify')::boolean;
        RETURN v_task;
    END IF;

    PERFORM quantum_flow._fail_task_final($1, $2, $3, $4);
    SELECT t.* INTO v_task
      FROM quantum_flow.workflow_step_tasks AS t
     WHERE t.run_id = $1 AND t.step_slug = $2 AND t.task_index = $3;
    RETURN v_task;
END
$$;

/*
 * cancel_run
 *		Cancel a run with its open steps and tasks.  A run that already
 *		ended is returned unchanged.
 */
CREATE FUNCTION quantum_flow.cancel_run(run_id uuid, reason text DEFAULT NULL)
RETURNS quantum_flow.workflow_runs
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_run   quantum_flow.workflow_runs;
    v_now   timestamptz := quantum_flow.now();
BEGIN
    PERFORM quantum_flow._require($1, 'run_id');

    SELECT r.* INTO v_run
      FROM quantum_flow.workflow_runs AS r
     WHERE r.run_id = $1
       FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        PERFORM quantum_flow._no_run($1);
    END IF;
    IF v_run.status <> 'started' THEN
        RETURN v_run;
    END IF;

    UPDATE quantum_flow.workflow_step_tasks AS t
       SET status = 'cancelled', cancelled_at = v_now
     WHERE t.run_id = $1 AND t.status IN ('queued', 'started');

    UPDATE quantum_flow.workflow_step_states AS ss
       SET status = 'cancelled', cancelled_at = v_now
     WHERE ss.run_id = $1 AND ss.status IN ('created', 'started');

    UPDATE quantum_flow.workflow_runs AS r
       SET status = 'cancelled', cancelled_at = v_now,
           error_message = coalesce($2, 'cancelled')
     WHERE r.run_id = $1
    RETURNING r.* INTO v_run;
    RETURN v_run;
END
$$;

/* ------------------------------------------------------------------------
 * Operating
 *
 * Statistics that stay cheap however much history the tables hold.  A
 * finished run and its tasks never change again, so they are counted
 * once, after the fact, into one row per workflow (workflow_totals):
 * a trigger logs every run that ends in workflow_run_ends, an insert-only
 * table on which no two sessions wait for each other, and tally_runs()
 * (which prune_runs calls first) moves the logged runs and their tasks
 * into the totals.  Completing a task writes nothing more than before.
 * workflow_stats adds to the totals what is not yet in them, all of it
 * the size of the work in flight rather than of history: runs logged
 * but not yet tallied, open runs (their completed tasks are initial_tasks
 * minus remaining_tasks of their step states), and open tasks, found
 * through the partial indexes.  The finished counts are cumulative, like
 * those of pg_stat_user_tables: pruning does not lower them.
 * ------------------------------------------------------------------------ */

/* Finished runs and tasks per workflow, as far as they are tallied. */
CREATE TABLE quantum_flow.workflow_totals (
    workflow_slug   text        NOT NULL PRIMARY KEY
                    REFERENCES quantum_flow.workflows (workflow_slug)
                    ON DELETE CASCADE,
    runs_completed  bigint      NOT NULL DEFAULT 0,
    runs_failed     bigint      NOT NULL DEFAULT 0,
    runs_cancelled  bigint      NOT NULL DEFAULT 0,
    tasks_completed bigint      NOT NULL DEFAULT 0,
    tasks_failed    bigint      NOT NULL DEFAULT 0,
    tasks_cancelled bigint      NOT NULL DEFAULT 0
);

/*
 * Runs that have ended and are not yet counted in workflow_totals.  No
 * foreign key: a run deleted by hand before it was tallied leaves a row
 * here that the next tally discards.
 */
CREATE TABLE quantum_flow.workflow_run_ends (
    run_id          uuid        NOT NULL PRIMARY KEY,
    workflow_slug   text        NOT NULL
);

CREATE INDEX workflow_run_ends_workflow_idx
    ON quantum_flow.workflow_run_ends (workflow_slug);

/*
 * _log_run_end
 *		Trigger function on workflow_runs: log a run that has just ended
 *		(or was inserted ended) for the next tally.  SECURITY DEFINER, so
 *		that a role allowed to finish runs needs no privilege on the log.
 */
CREATE FUNCTION quantum_flow._log_run_end()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO quantum_flow.workflow_run_ends (run_id, workflow_slug)
    VALUES (NEW.run_id, NEW.workflow_slug)
    ON CONFLICT (run_id) DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER workflow_runs_log_end_insert
    AFTER INSERT ON quantum_flow.workflow_runs
    FOR EACH ROW
    WHEN (NEW.status <> 'started')
    EXECUTE FUNCTION quantum_flow._log_run_end();

CREATE TRIGGER workflow_runs_log_end_update
    AFTER UPDATE OF status ON quantum_flow.workflow_runs
    FOR EACH ROW
    WHEN (OLD.status = 'started' AND NEW.status <> 'started')
    EXECUTE FUNCTION quantum_flow._log_run_end();

/*
 * tally_runs
 *		Count the logged runs that have ended, and their tasks, into
 *		workflow_totals, and take them off the log; returns the number of
 *		runs counted.  One statement: log rows a concurrent tally holds
 *		are skipped, and the totals rows are locked in workflow order, so
 *		that concurrent tallies neither count a run twice nor deadlock.
 *		Cheap to call often; prune_runs calls it first.
 */
CREATE FUNCTION quantum_flow.tally_runs()
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_count bigint;
BEGIN
    WITH taken AS (
        DELETE FROM quantum_flow.workflow_run_ends AS e
         WHERE e.run_id IN (SELECT x.run_id
                              FROM quantum_flow.workflow_run_ends AS x
                               FOR UPDATE SKIP LOCKED)
        RETURNING e.run_id
    ), counted AS (
        /* Runs deleted by hand since they ended drop out here. */
        SELECT r.workflow_slug,
               count(*) FILTER (WHERE r.status = 'completed')
                   AS runs_completed,
               count(*) FILTER (WHERE r.status = 'failed') AS runs_failed,
               count(*) FILTER (WHERE r.status = 'cancelled')
                   AS runs_cancelled,
               sum(t.completed) AS tasks_completed,
               sum(t.failed) AS tasks_failed,
               sum(t.cancelled) AS tasks_cancelled
          FROM taken AS k
          JOIN quantum_flow.workflow_runs AS r ON r.run_id = k.run_id
         CROSS JOIN LATERAL (
               SELECT count(*) FILTER (WHERE x.status = 'completed')
                          AS completed,
                      count(*) FILTER (WHERE x.status = 'failed') AS failed,
                      count(*) FILTER (WHERE x.status = 'cancelled')
                          AS cancelled
                 FROM quantum_flow.workflow_step_tasks AS x
                WHERE x.run_id = r.run_id) AS t
         GROUP BY r.workflow_slug
    ), added AS (
        INSERT INTO quantum_flow.workflow_totals AS w
               (workflow_slug, runs_completed, runs_failed, runs_cancelled,
                tasks_completed, tasks_failed, tasks_cancelled)
        SELECT c.workflow_slug, c.runs_completed, c.runs_failed,
               c.runs_cancelled, c.tasks_completed, c.tasks_failed,
               c.tasks_cancelled
          FROM counted AS c
         ORDER BY c.workflow_slug
        ON CONFLICT (workflow_slug) DO UPDATE
           SET runs_completed = w.runs_completed + excluded.runs_completed,
               runs_failed = w.runs_failed + excluded.runs_failed,
               runs_cancelled = w.runs_cancelled + excluded.runs_cancelled,
               tasks_completed = w.tasks_completed + excluded.tasks_completed,
               tasks_failed = w.tasks_failed + excluded.tasks_failed,
               tasks_cancelled = w.tasks_cancelled + excluded.tasks_cancelled
        RETURNING 1
    )
    SELECT coalesce(sum(c.runs_completed + c.runs_failed + c.runs_cancelled),
                    0)
      INTO v_count
      FROM counted AS c;
    RETURN v_count;
END
$$;

/*
 * prune_runs
 *		Delete terminal runs that ended before now() - older_than, with
 *		their step states and tasks; returns the number of runs deleted.
 *
 * Ended runs are tallied first, so that pruning never loses a count.  A
 * run still on the log (its tally is in progress elsewhere) or locked by
 * a concurrent session is left for the next call.  Runs go oldest first
 * in batches of 1000, each batch starting where the last one ended, so
 * that no batch walks the index entries of the rows deleted before it.
 *
 * The step states and tasks go by the ON DELETE CASCADE of their foreign
 * keys.  Deleting them explicitly first was measured and is no faster:
 * the referential triggers fire for every deleted state and run anyway,
 * and then walk the index entries of the tasks just deleted.  Their cost
 * per state is small next to deleting the task rows themselves.
 *
 * The whole call is one transaction.  To work off a large backlog in
 * short transactions, call it repeatedly with a decreasing older_than.
 */
CREATE FUNCTION quantum_flow.prune_runs(older_than interval)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_cutoff    timestamptz;
    v_floor     timestamptz := '-infinity';
    v_ids       uuid[];
    v_batch     bigint;
    v_total     bigint := 0;
BEGIN
    PERFORM quantum_flow._require($1, 'older_than');
    IF $1 < interval '0' THEN
        RAISE EXCEPTION 'older_than must not be negative'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('The interval given was %s.', $1);
    END IF;
    /* An interval reaching before the first timestamp spares every run. */
    BEGIN
        v_cutoff := quantum_flow.now() - $1;
    EXCEPTION WHEN datetime_field_overflow THEN
        v_cutoff := '-infinity';
    END;

    /* Count what ended before deleting any of it. */
    PERFORM quantum_flow.tally_runs();

    LOOP
        /* The next batch, through workflow_runs_ended_idx. */
        SELECT array_agg(b.run_id), max(b.ended_at)
          INTO v_ids, v_floor
          FROM (SELECT r.run_id,
                       COALESCE(r.completed_at, r.failed_at,
                                r.cancelled_at) AS ended_at
                  FROM quantum_flow.workflow_runs AS r
                 WHERE r.status <> 'started'
                   AND COALESCE(r.completed_at, r.failed_at, r.cancelled_at)
                       < v_cutoff
                   AND COALESCE(r.completed_at, r.failed_at, r.cancelled_at)
                       >= v_floor
                   AND NOT EXISTS (
                       SELECT 1 FROM quantum_flow.workflow_run_ends AS e
                        WHERE e.run_id = r.run_id)
                 ORDER BY COALESCE(r.completed_at, r.failed_at,
                                   r.cancelled_at)
                 LIMIT 1000
                   FOR UPDATE OF r SKIP LOCKED) AS b;
        EXIT WHEN v_ids IS NULL;

        DELETE FROM quantum_flow.workflow_runs AS r
         WHERE r.run_id = ANY (v_ids);
        GET DIAGNOSTICS v_batch = ROW_COUNT;
        v_total := v_total + v_batch;
        EXIT WHEN cardinality(v_ids) < 1000;
    END LOOP;

    RETURN v_total;
END
$$;

/*
 * workflow_stats
 *		One row per workflow: runs by status, tasks by status, and the age
 *		of the oldest claimable task.
 *
 * runs_started, tasks_queued and tasks_started count what is open now;
 * the other counts are cumulative, the tallied totals plus what is not
 * tallied yet (see the head of this section).  A task is claimable as
 * poll_tasks sees it: queued, or leased with its lease expired, visible,
 * and with attempts left; oldest_claimable_age is how long the oldest
 * one has waited, NULL when none waits.  Every part reads through an
 * index and costs in proportion to the work in flight, so the plan has
 * no sequential scan of runs, step states or tasks.
 */
CREATE VIEW quantum_flow.workflow_stats AS
SELECT w.workflow_slug,
       o.runs AS runs_started,
       coalesce(tot.runs_completed, 0) + pr.completed AS runs_completed,
       coalesce(tot.runs_failed, 0) + pr.failed AS runs_failed,
       coalesce(tot.runs_cancelled, 0) + pr.cancelled AS runs_cancelled,
       q.queued AS tasks_queued,
       q.started AS tasks_started,
       coalesce(tot.tasks_completed, 0) + pt.completed + od.completed
           AS tasks_completed,
       coalesce(tot.tasks_failed, 0) + pt.failed AS tasks_failed,
       coalesce(tot.tasks_cancelled, 0) + pt.cancelled AS tasks_cancelled,
       quantum_flow.now() - c.visible_at AS oldest_claimable_age
  FROM quantum_flow.workflows AS w
  LEFT JOIN quantum_flow.workflow_totals AS tot
    ON tot.workflow_slug = w.workflow_slug
 CROSS JOIN LATERAL (
       /* Open runs, through workflow_runs_open_idx. */
       SELECT count(*) AS runs
         FROM quantum_flow.workflow_runs AS r
        WHERE r.workflow_slug = w.workflow_slug
          AND r.status = 'started') AS o
 CROSS JOIN LATERAL (
       /*
        * Tasks completed in open runs, from their step states: an open
        * run has no failed or cancelled task, and a started or completed
        * step has completed initial_tasks - remaining_tasks of its tasks.
        */
       SELECT coalesce(sum(ss.initial_tasks - ss.remaining_tasks), 0)
                  AS completed
         FROM quantum_flow.workflow_runs AS r
         JOIN quantum_flow.workflow_step_states AS ss
           ON ss.run_id = r.run_id
        WHERE r.workflow_slug = w.workflow_slug
          AND r.status = 'started'
          AND ss.status IN ('started', 'completed')) AS od
 CROSS JOIN LATERAL (
       /* Ended runs not yet tallied. */
       SELECT count(*) FILTER (WHERE r.status = 'completed') AS completed,
              count(*) FILTER (WHERE r.status = 'failed') AS failed,
              count(*) FILTER (WHERE r.status = 'cancelled') AS cancelled
         FROM quantum_flow.workflow_run_ends AS e
         JOIN quantum_flow.workflow_runs AS r ON r.run_id = e.run_id
        WHERE e.workflow_slug = w.workflow_slug) AS pr
 CROSS JOIN LATERAL (
       /* Their tasks. */
       SELECT count(*) FILTER (WHERE t.status = 'completed') AS completed,
              count(*) FILTER (WHERE t.status = 'failed') AS failed,
              count(*) FILTER (WHERE t.status = 'cancelled') AS cancelled
         FROM quantum_flow.workflow_run_ends AS e
         JOIN quantum_flow.workflow_step_tasks AS t ON t.run_id = e.run_id
        WHERE e.workflow_slug = w.workflow_slug) AS pt
 CROSS JOIN LATERAL (
       /* Open tasks, through workflow_step_tasks_claim_idx. */
       SELECT count(*) FILTER (WHERE t.status = 'queued') AS queued,
              count(*) FILTER (WHERE t.status = 'started') AS started
         FROM quantum_flow.workflow_step_tasks AS t
        WHERE t.workflow_slug = w.workflow_slug
          AND t.status IN ('queued', 'started')) AS q
  LEFT JOIN LATERAL (
       /* The oldest claimable task: the head of the queue. */
       SELECT t.visible_at
         FROM quantum_flow.workflow_step_tasks AS t
        WHERE t.workflow_slug = w.workflow_slug
          AND t.status IN ('queued', 'started')
          AND t.visible_at <= quantum_flow.now()
          AND t.attempts_count < t.max_attempts
        ORDER BY t.visible_at
        LIMIT 1) AS c ON true;

/*
 * run_status
 *		A run, its steps and their task counts by status, as one JSON
 *		document.
 *
 * Reads the run, its step states and, through the primary key, the tasks
 * of its open, failed and cancelled steps: the cost is that of one run,
 * whatever the size of the tables.  A created step has no task yet, and
 * a completed step has initial_tasks completed ones, so neither is read.
 */
CREATE FUNCTION quantum_flow.run_status(run_id uuid)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_result jsonb;
BEGIN
    PERFORM quantum_flow._require($1, 'run_id');

    SELECT jsonb_build_object(
               'run_id', r.run_id,
               'workflow_slug', r.workflow_slug,
               'status', r.status,
               'input', r.input,
               'output', r.output,
               'error_message', r.error_message,
               'remaining_steps', r.remaining_steps,
               'started_at', r.started_at,
               'completed_at', r.completed_at,
               'failed_at', r.failed_at,
               'cancelled_at', r.cancelled_at,
               'steps', coalesce((
                   SELECT jsonb_agg(jsonb_build_object(
                              'step_slug', ss.step_slug,
                              'status', ss.status,
                              'remaining_deps', ss.remaining_deps,
                              'initial_tasks', ss.initial_tasks,
                              'remaining_tasks', ss.remaining_tasks,
                              'error_message', ss.error_message,
                              'tasks', CASE
                                  WHEN ss.status = 'created' THEN '{}'
                                  WHEN ss.status = 'completed' THEN
                                      CASE WHEN ss.initial_tasks > 0
                                           THEN jsonb_build_object(
                                                    'completed',
                                                    ss.initial_tasks)
                                           ELSE '{}' END
                                  ELSE (
                                  SELECT coalesce(jsonb_object_agg(c.status,
                                                                   c.n), '{}')
                                    FROM (SELECT t.status, count(*) AS n
                                            FROM quantum_flow
                                                 .workflow_step_tasks AS t
                                           WHERE t.run_id = ss.run_id
                                             AND t.step_slug = ss.step_slug
                                           GROUP BY t.status) AS c)
                                  END)
                              ORDER BY s.step_index)
                     FROM quantum_flow.workflow_step_states AS ss
                     JOIN quantum_flow.workflow_steps AS s
                       ON s.workflow_slug = ss.workflow_slug
                      AND s.step_slug = ss.step_slug
                    WHERE ss.run_id = r.run_id), '[]'))
      INTO v_result
      FROM quantum_flow.workflow_runs AS r
     WHERE r.run_id = $1;
    IF v_result IS NULL THEN
        PERFORM quantum_flow._no_run($1);
    END IF;
    RETURN v_result;
END
$$;

/* ------------------------------------------------------------------------
 * Invariants
 * ------------------------------------------------------------------------ */

/*
 * check_invariants
 *		Every inconsistency between the engine's counters, states and rows,
 *		one row per finding; no row means the data is consistent.
 *
 * Each branch of the query below is one invariant, checked with one
 * set-based pass, so that the whole check costs a few sequential scans
 * and can run after every test or on a schedule.  It reads without
 * locking: run it when no engine call is in flight (a test between
 * steps, or a quiet database) or inside a REPEATABLE READ transaction,
 * which sees one consistent snapshot.
 *
 * A task key is compared with compute_idempotency_key only when it has
 * the form of an engine-made key (32 lower-case hex digits); a custom
 * key inserted by hand in another form is the caller's business.
 */
CREATE FUNCTION quantum_flow.check_invariants()
RETURNS TABLE (invariant text, detail text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
WITH task_counts AS (
    /* Per step state: its tasks, by status, and their index range. */
    SELECT t.run_id, t.step_slug,
           count(*) AS n,
           count(*) FILTER (WHERE t.status = 'completed') AS n_completed,
           count(*) FILTER (WHERE t.status IN ('queued', 'started'))
               AS n_open,
           min(t.task_index) AS min_index,
           max(t.task_index) AS max_index
      FROM quantum_flow.workflow_step_tasks AS t
     GROUP BY t.run_id, t.step_slug
), step_counts AS (
    /* Per run: its step states, by status. */
    SELECT ss.run_id,
           count(*) FILTER (WHERE ss.status <> 'completed') AS n_open,
           count(*) FILTER (WHERE ss.status = 'failed') AS n_failed
      FROM quantum_flow.workflow_step_states AS ss
     GROUP BY ss.run_id
), dep_counts AS (
    /* Per step state: its dependencies that have not completed. */
    SELECT ss.run_id, ss.step_slug,
           count(*) FILTER (WHERE ds.status IS DISTINCT FROM 'completed')
               AS n_pending
      FROM quantum_flow.workflow_step_states AS ss
      JOIN quantum_flow.workflow_step_deps AS d
        ON d.workflow_slug = ss.workflow_slug
       AND d.step_slug = ss.step_slug
      LEFT JOIN quantum_flow.workflow_step_states AS ds
        ON ds.run_id = ss.run_id
       AND ds.step_slug = d.dep_slug
     GROUP BY ss.run_id, ss.step_slug
)

/* A started or completed run counts the steps that have not completed. */
SELECT 'run_remaining_steps',
       format('run %s (%s) has remaining_steps %s but %s steps not completed',
              r.run_id, r.status, r.remaining_steps,
              coalesce(sc.n_open, 0))
  FROM quantum_flow.workflow_runs AS r
  LEFT JOIN step_counts AS sc ON sc.run_id = r.run_id
 WHERE r.status IN ('started', 'completed')
   AND r.remaining_steps <> coalesce(sc.n_open, 0)

UNION ALL
/* A completed run's output maps each leaf step to its output. */
SELECT 'run_output',
       format('run %s is completed with output %s, expected %s',
              r.run_id, r.output, l.output)
  FROM quantum_flow.workflow_runs AS r
 CROSS JOIN LATERAL (
       SELECT coalesce(jsonb_object_agg(ss.step_slug, ss.output), '{}')
                  AS output
         FROM quantum_flow.workflow_step_states AS ss
        WHERE ss.run_id = r.run_id
          AND NOT EXISTS (
              SELECT 1
                FROM quantum_flow.workflow_step_deps AS d
                JOIN quantum_flow.workflow_step_states AS x
                  ON x.run_id = r.run_id AND x.step_slug = d.step_slug
               WHERE d.workflow_slug = r.workflow_slug
                 AND d.dep_slug = ss.step_slug)) AS l
 WHERE r.status = 'completed'
   AND r.output IS DISTINCT FROM l.output

UNION ALL
/* A terminal run has no open step and no open task. */
SELECT 'terminal_run_open_work',
       format('run %s is %s but has %s open steps and %s open tasks',
              r.run_id, r.status,
              (SELECT count(*) FROM quantum_flow.workflow_step_states AS ss
                WHERE ss.run_id = r.run_id
                  AND ss.status IN ('created', 'started')),
              (SELECT count(*) FROM quantum_flow.workflow_step_tasks AS t
                WHERE t.run_id = r.run_id
                  AND t.status IN ('queued', 'started')))
  FROM quantum_flow.workflow_runs AS r
 WHERE r.status <> 'started'
   AND (EXISTS (SELECT 1 FROM quantum_flow.workflow_step_states AS ss
                 WHERE ss.run_id = r.run_id
                   AND ss.status IN ('created', 'started'))
        OR EXISTS (SELECT 1 FROM quantum_flow.workflow_step_tasks AS t
                    WHERE t.run_id = r.run_id
                      AND t.status IN ('queued', 'started')))

UNION ALL
/* A started run has no failed or cancelled step or task. */
SELECT 'started_run_closed_work',
       format('run %s is started but its %s "%s" is %s',
              x.run_id, x.kind, x.name, x.status)
  FROM quantum_flow.workflow_runs AS r
  JOIN (SELECT ss.run_id, 'step' AS kind, ss.step_slug AS name, ss.status
          FROM quantum_flow.workflow_step_states AS ss
         WHERE ss.status IN ('failed', 'cancelled')
        UNION ALL
        SELECT t.run_id, 'task', t.step_slug || '[' || t.task_index || ']',
               t.status
          FROM quantum_flow.workflow_step_tasks AS t
         WHERE t.status IN ('failed', 'cancelled')) AS x
    ON x.run_id = r.run_id
 WHERE r.status = 'started'

UNION ALL
/* A failed run has exactly one failed step, the one that failed it. */
SELECT 'failed_run_step',
       format('run %s is failed with %s failed steps',
              r.run_id, coalesce(sc.n_failed, 0))
  FROM quantum_flow.workflow_runs AS r
  LEFT JOIN step_counts AS sc ON sc.run_id = r.run_id
 WHERE r.status = 'failed'
   AND coalesce(sc.n_failed, 0) <> 1

UNION ALL
/* Each status has its timestamp. */
SELECT 'missing_timestamp',
       format('%s %s is %s without its timestamp', x.kind, x.name, x.status)
  FROM (SELECT 'run' AS kind, r.run_id::text AS name, r.status,
               CASE r.status WHEN 'completed' THEN r.completed_at
                             WHEN 'failed' THEN r.failed_at
                             WHEN 'cancelled' THEN r.cancelled_at
                             ELSE r.started_at END AS at
          FROM quantum_flow.workflow_runs AS r
        UNION ALL
        SELECT 'step', ss.run_id || '/' || ss.step_slug, ss.status,
               CASE ss.status WHEN 'started' THEN ss.started_at
                              WHEN 'completed' THEN ss.completed_at
                              WHEN 'failed' THEN ss.failed_at
                              WHEN 'cancelled' THEN ss.cancelled_at
                              ELSE ss.created_at END
          FROM quantum_flow.workflow_step_states AS ss
        UNION ALL
        SELECT 'task',
               t.run_id || '/' || t.step_slug || '[' || t.task_index || ']',
               t.status,
               CASE t.status WHEN 'started' THEN t.started_at
                             WHEN 'completed' THEN t.completed_at
                             WHEN 'failed' THEN t.failed_at
                             WHEN 'cancelled' THEN t.cancelled_at
                             ELSE t.queued_at END
          FROM quantum_flow.workflow_step_tasks AS t) AS x
 WHERE x.at IS NULL

UNION ALL
/* A step state and its tasks belong to the workflow of their run. */
SELECT 'workflow_mismatch',
       format('%s of run %s belongs to workflow "%s", the run to "%s"',
              x.name, r.run_id, x.workflow_slug, r.workflow_slug)
  FROM quantum_flow.workflow_runs AS r
  JOIN (SELECT ss.run_id, 'step "' || ss.step_slug || '"' AS name,
               ss.workflow_slug
          FROM quantum_flow.workflow_step_states AS ss
        UNION ALL
        SELECT t.run_id,
               'task "' || t.step_slug || '"[' || t.task_index || ']',
               t.workflow_slug
          FROM quantum_flow.workflow_step_tasks AS t) AS x
    ON x.run_id = r.run_id
 WHERE x.workflow_slug <> r.workflow_slug

UNION ALL
/* A created step waits for exactly its dependencies not yet completed. */
SELECT 'step_remaining_deps',
       format('step "%s" of run %s has remaining_deps %s but %s dependencies not completed',
              ss.step_slug, ss.run_id, ss.remaining_deps,
              coalesce(dc.n_pending, 0))
  FROM quantum_flow.workflow_step_states AS ss
  LEFT JOIN dep_counts AS dc
    ON dc.run_id = ss.run_id AND dc.step_slug = ss.step_slug
 WHERE ss.status = 'created'
   AND ss.remaining_deps <> coalesce(dc.n_pending, 0)

UNION ALL
/* A step that has started did so after all its dependencies completed. */
SELECT 'step_started_early',
       format('step "%s" of run %s is %s with remaining_deps %s and %s dependencies not completed',
              ss.step_slug, ss.run_id, ss.status, ss.remaining_deps,
              coalesce(dc.n_pending, 0))
  FROM quantum_flow.workflow_step_states AS ss
  LEFT JOIN dep_counts AS dc
    ON dc.run_id = ss.run_id AND dc.step_slug = ss.step_slug
 WHERE ss.status IN ('started', 'completed')
   AND (ss.remaining_deps <> 0 OR coalesce(dc.n_pending, 0) <> 0)

UNION ALL
/*
 * A step has tasks only once it has started: then exactly initial_tasks
 * of them, numbered from 0.  A step that its run's failure cut short
 * before its tasks were made (so now failed or cancelled) has none.
 */
SELECT 'step_task_count',
       format('step "%s" of run %s is %s with initial_tasks %s and %s tasks numbered %s to %s',
              ss.step_slug, ss.run_id, ss.status,
              coalesce(ss.initial_tasks::text, 'null'),
              coalesce(tc.n, 0), tc.min_index, tc.max_index)
  FROM quantum_flow.workflow_step_states AS ss
  LEFT JOIN task_counts AS tc
    ON tc.run_id = ss.run_id AND tc.step_slug = ss.step_slug
 WHERE (ss.status = 'created' AND
        (ss.initial_tasks IS NOT NULL OR tc.n IS NOT NULL))
    OR (ss.status IN ('started', 'completed') AND ss.initial_tasks IS NULL)
    OR (ss.initial_tasks IS NULL AND tc.n IS NOT NULL)
    OR (ss.initial_tasks > 0 AND tc.n IS NULL AND
        ss.status IN ('started', 'completed'))
    OR (ss.initial_tasks IS NOT NULL AND tc.n IS NOT NULL AND
        (tc.n <> ss.initial_tasks OR tc.min_index <> 0 OR
         tc.max_index <> ss.initial_tasks - 1))

UNION ALL
/* A started step still waits for the tasks that have not completed. */
SELECT 'step_remaining_tasks',
       format('step "%s" of run %s has remaining_tasks %s, initial_tasks %s and %s completed tasks',
              ss.step_slug, ss.run_id,
              coalesce(ss.remaining_tasks::text, 'null'),
              coalesce(ss.initial_tasks::text, 'null'),
              coalesce(tc.n_completed, 0))
  FROM quantum_flow.workflow_step_states AS ss
  LEFT JOIN task_counts AS tc
    ON tc.run_id = ss.run_id AND tc.step_slug = ss.step_slug
 WHERE ss.status = 'started'
   AND ss.remaining_tasks IS DISTINCT FROM
       ss.initial_tasks - coalesce(tc.n_completed, 0)

UNION ALL
/* A completed step has every task completed and none remaining. */
SELECT 'step_completed_tasks',
       format('step "%s" of run %s is completed with remaining_tasks %s and %s of %s tasks completed',
              ss.step_slug, ss.run_id,
              coalesce(ss.remaining_tasks::text, 'null'),
              coalesce(tc.n_completed, 0), coalesce(tc.n, 0))
  FROM quantum_flow.workflow_step_states AS ss
  LEFT JOIN task_counts AS tc
    ON tc.run_id = ss.run_id AND tc.step_slug = ss.step_slug
 WHERE ss.status = 'completed'
   AND (ss.remaining_tasks IS DISTINCT FROM 0 OR
        coalesce(tc.n_completed, 0) <> coalesce(tc.n, 0))

UNION ALL
/* A closed step leaves no task queued or running. */
SELECT 'step_open_tasks',
       format('step "%s" of run %s is %s but has %s open tasks',
              ss.step_slug, ss.run_id, ss.status, tc.n_open)
  FROM quantum_flow.workflow_step_states AS ss
  JOIN task_counts AS tc
    ON tc.run_id = ss.run_id AND tc.step_slug = ss.step_slug
 WHERE ss.status IN ('completed', 'failed', 'cancelled')
   AND tc.n_open > 0

UNION ALL
/*
 * A completed step's output is its task's output (single), or the array
 * of its task outputs in task_index order (map).
 */
SELECT 'step_output',
       format('step "%s" of run %s has output %s, its tasks give %s',
              ss.step_slug, ss.run_id, ss.output, o.output)
  FROM quantum_flow.workflow_step_states AS ss
  JOIN quantum_flow.workflow_steps AS s
    ON s.workflow_slug = ss.workflow_slug AND s.step_slug = ss.step_slug
 CROSS JOIN LATERAL (
       SELECT CASE WHEN s.step_type = 'map'
                   THEN coalesce(jsonb_agg(t.output ORDER BY t.task_index),
                                 '[]')
                   ELSE (array_agg(t.output) FILTER (
                             WHERE t.task_index = 0))[1]
              END AS output
         FROM quantum_flow.workflow_step_tasks AS t
        WHERE t.run_id = ss.run_id AND t.step_slug = ss.step_slug) AS o
 WHERE ss.status = 'completed'
   AND ss.output IS DISTINCT FROM o.output

UNION ALL
/* A started map step has one task per element of the array it maps. */
SELECT 'map_initial_tasks',
       format('map step "%s" of run %s has initial_tasks %s over an array of %s elements',
              ss.step_slug, ss.run_id,
              coalesce(ss.initial_tasks::text, 'null'),
              coalesce(jsonb_array_length(src.arr)::text, 'no'))
  FROM quantum_flow.workflow_step_states AS ss
  JOIN quantum_flow.workflow_steps AS s
    ON s.workflow_slug = ss.workflow_slug AND s.step_slug = ss.step_slug
  JOIN quantum_flow.workflow_runs AS r ON r.run_id = ss.run_id
 CROSS JOIN LATERAL (
       SELECT CASE WHEN s.deps_count = 0 THEN r.input
                   ELSE (SELECT ds.output
                           FROM quantum_flow.workflow_step_deps AS d
                           JOIN quantum_flow.workflow_step_states AS ds
                             ON ds.run_id = ss.run_id
                            AND ds.step_slug = d.dep_slug
                          WHERE d.workflow_slug = ss.workflow_slug
                            AND d.step_slug = ss.step_slug
                          LIMIT 1)
              END AS arr) AS m
 CROSS JOIN LATERAL (
       SELECT CASE WHEN jsonb_typeof(m.arr) = 'array' THEN m.arr END
                  AS arr) AS src
 WHERE s.step_type = 'map'
   AND ss.status IN ('started', 'completed')
   AND ss.initial_tasks IS DISTINCT FROM jsonb_array_length(src.arr)

UNION ALL
/* Attempts stay within bounds that depend on the task's status. */
SELECT 'task_attempts',
       format('task "%s"[%s] of run %s is %s with attempts_count %s of max_attempts %s',
              t.step_slug, t.task_index, t.run_id, t.status,
              t.attempts_count, t.max_attempts)
  FROM quantum_flow.workflow_step_tasks AS t
 WHERE t.attempts_count > t.max_attempts
    OR (t.status = 'queued' AND t.attempts_count >= t.max_attempts)
    OR (t.status IN ('started', 'completed', 'failed') AND
        t.attempts_count < 1)

UNION ALL
/* An engine-made key is the one compute_idempotency_key gives. */
SELECT 'task_idempotency_key',
       format('task "%s"[%s] of run %s has key %s, expected %s',
              t.step_slug, t.task_index, t.run_id, t.idempotency_key,
              quantum_flow.compute_idempotency_key(t.workflow_slug,
                                                   t.step_slug, t.run_id,
                                                   t.task_index))
  FROM quantum_flow.workflow_step_tasks AS t
 WHERE t.idempotency_key ~ '^[0-9a-f]{32}$'
   AND t.idempotency_key <>
       quantum_flow.compute_idempotency_key(t.workflow_slug, t.step_slug,
                                            t.run_id, t.task_index)
$$;

COMMENT ON FUNCTION quantum_flow.check_invariants() IS
'every inconsistency between counters, states and rows; no row means consistent';

/* ------------------------------------------------------------------------
 * Privileges
 *
 * The API functions run with the rights of the extension's owner
 * (SECURITY DEFINER), so a role needs nothing but USAGE on the schema
 * and EXECUTE on the API functions it calls: no privilege on the tables,
 * and none on the internal helpers.  A worker therefore changes states
 * only through the API's rules; it cannot fail a run it does not work
 * on, or rewrite a row, because it can neither call _fail_run nor write
 * to a table.  README.md lists the grants of a worker and an admin role.
 *
 * A SECURITY DEFINER function must not let its caller choose what its
 * names mean.  Each one has search_path = pg_catalog, pg_temp: pg_temp
 * is named last, so that no temporary table or type can shadow a name,
 * and PostgreSQL never looks up functions or operators in pg_temp.  The
 * PL/pgSQL functions carry that setting from their CREATE FUNCTION; the
 * C ones get it here, on top of their schema-qualified SPI queries.
 *
 * The clock functions stay SECURITY INVOKER on purpose: they set
 * quantum_flow.clock_override, a SUSET parameter, with the caller's own
 * right to set it, so that EXECUTE on set_clock alone moves nothing.  The
 * internal helpers (names starting with "_", is_valid_slug and the
 * trigger function fill_idempotency_key) are for the API's use only and
 * are granted to no one.
 * ------------------------------------------------------------------------ */

/* The C functions that run SPI: a fixed search_path, as defense in depth. */
ALTER FUNCTION quantum_flow.complete_task(uuid, text, integer, jsonb,
                                          integer)
    SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION quantum_flow.start_ready_steps(uuid)
    SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION quantum_flow._count_off_tasks(uuid, text, integer)
    SET search_path = pg_catalog, pg_temp;

/* Defining workflows. */
ALTER FUNCTION quantum_flow.create_workflow(text, integer, integer, integer)
    SECURITY DEFINER;
ALTER FUNCTION quantum_flow.add_step(text, text, text[], text, integer,
                                     integer, integer, integer)
    SECURITY DEFINER;
ALTER FUNCTION quantum_flow.define_workflow(text, jsonb)
    SECURITY DEFINER;

/* Running. */
ALTER FUNCTION quantum_flow.start_run(text, jsonb, uuid, text)
    SECURITY DEFINER;
ALTER FUNCTION quantum_flow.start_ready_steps(uuid)
    SECURITY DEFINER;
ALTER FUNCTION quantum_flow.cancel_run(uuid, text)
    SECURITY DEFINER;

/* Working. */
ALTER FUNCTION quantum_flow.poll_tasks(text, text, integer, interval)
    SECURITY DEFINER;
ALTER FUNCTION quantum_flow.extend_lease(uuid, text, integer, integer,
                                         interval)
    SECURITY DEFINER;
ALTER FUNCTION quantum_flow.complete_task(uuid, text, integer, jsonb,
                                          integer)
    SECURITY DEFINER;
ALTER FUNCTION quantum_flow.complete_tasks(uuid[], text[], integer[],
                                           jsonb[], integer[])
    SECURITY DEFINER;
ALTER FUNCTION quantum_flow.fail_task(uuid, text, integer, text, integer)
    SECURITY DEFINER;

/* Operating. */
ALTER FUNCTION quantum_flow.tally_runs()
    SECURITY DEFINER;
ALTER FUNCTION quantum_flow.prune_runs(interval)
    SECURITY DEFINER;
ALTER FUNCTION quantum_flow.run_status(uuid)
    SECURITY DEFINER;
ALTER FUNCTION quantum_flow.check_invariants()
    SECURITY DEFINER;

/*
 * Nothing for PUBLIC.  The view workflow_stats reads the tables with its
 * owner's rights, so SELECT on the view is all a reader needs besides
 * EXECUTE on quantum_flow.now(), which the view calls with the reader's.
 */
REVOKE ALL ON SCHEMA quantum_flow FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA quantum_flow FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA quantum_flow FROM PUBLIC;
