/*-------------------------------------------------------------------------
 *
 * scheduler.c
 *		Starting the ready steps of a run: task creation, exactly once.
 *
 * start_ready_steps(run_id) finds the steps of a run that are still
 * 'created' and have no dependency left, marks them 'started' and creates
 * their tasks: one for a single step, one per array element for a map
 * step.  Every task gets its idempotency key here, computed in C.
 *
 * Exactly-once creation rests on two things.  The run row is locked
 * first, so that two callers on one run take turns; and a step is moved
 * from 'created' to 'started' by one UPDATE whose WHERE clause is
 * re-checked against the latest row version, so a step can be started
 * only once however often, or however concurrently, the function is
 * called.  The UNIQUE index on the idempotency key backs this up.
 *
 * A map step over an empty array completes at once with output [], which
 * may make further steps ready; they are started in the same call.  A map
 * step whose input is not an array fails the run.
 *
 * The statements are prepared once per backend and kept; every name in
 * them is schema-qualified, including operators, so the caller's
 * search_path never changes what they mean.
 *
 * Copyright (c) 2026, the quantum_flow authors
 *
 * IDENTIFICATION
 *		src/scheduler.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/async.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "quantum_flow.h"

PG_FUNCTION_INFO_V1(qf_start_ready_steps);

/* quantum_flow.notify: NOTIFY quantum_flow when tasks become claimable. */
static bool qf_notify = false;

/* A step taken from 'created' to 'started' by one round. */
typedef struct QfReadyStep
{
	char	   *step_slug;
	bool		is_map;
	int32		step_index;
	int32		start_delay;
	int32		deps_count;
	int32		max_attempts;
	bool		ntasks_null;	/* map input was not an array */
	int32		ntasks;
} QfReadyStep;

/* Saved plans, prepared on first use. */
static SPIPlanPtr lock_run_plan = NULL;
static SPIPlanPtr claim_steps_plan = NULL;
static SPIPlanPtr insert_single_plan = NULL;
static SPIPlanPtr map_source_plan = NULL;
static SPIPlanPtr insert_map_plan = NULL;
static SPIPlanPtr complete_step_plan = NULL;
static SPIPlanPtr fail_run_plan = NULL;

/* Lock the run so that concurrent callers on one run take turns. */
static const char *const lock_run_sql =
"SELECT r.workflow_slug, r.status, r.input"
"  FROM quantum_flow.workflow_runs AS r"
" WHERE r.run_id OPERATOR(pg_catalog.=) $1"
"   FOR NO KEY UPDATE";

/*
 * Start every ready step and say how many tasks each needs: 1 for a
 * single step, the array length for a map step (NULL if its input is not
 * an array).  $3 is the run input, the source of a root map step.
 */
static const char *const claim_steps_sql =
"UPDATE quantum_flow.workflow_step_states AS ss"
"   SET status = 'started',"
"       started_at = $2,"
"       initial_tasks = src.n,"
"       remaining_tasks = src.n"
"  FROM quantum_flow.workflow_steps AS s"
"  JOIN quantum_flow.workflows AS w"
"    ON w.workflow_slug OPERATOR(pg_catalog.=) s.workflow_slug"
" CROSS JOIN LATERAL ("
"       SELECT CASE"
"              WHEN s.step_type OPERATOR(pg_catalog.=) 'single' THEN 1"
"              WHEN pg_catalog.jsonb_typeof(m.arr)"
"                   OPERATOR(pg_catalog.=) 'array'"
"              THEN pg_catalog.jsonb_array_length(m.arr)"
"              END AS n"
"         FROM (SELECT CASE"
"                      WHEN s.step_type OPERATOR(pg_catalog.=) 'single'"
"                      THEN NULL"
"                      WHEN s.deps_count OPERATOR(pg_catalog.=) 0 THEN $3"
"                      ELSE (SELECT ds.output"
"                              FROM quantum_flow.workflow_step_deps AS d"
"                              JOIN quantum_flow.workflow_step_states AS ds"
"                                ON ds.run_id OPERATOR(pg_catalog.=) $1"
"                               AND ds.step_slug OPERATOR(pg_catalog.=)"
"                                   d.dep_slug"
"                             WHERE d.workflow_slug OPERATOR(pg_catalog.=)"
"                                   s.workflow_slug"
"                               AND d.step_slug OPERATOR(pg_catalog.=)"
"                                   s.step_slug)"
"                      END AS arr) AS m"
"       ) AS src"
" WHERE ss.run_id OPERATOR(pg_catalog.=) $1"
"   AND ss.status OPERATOR(pg_catalog.=) 'created'"
"   AND ss.remaining_deps OPERATOR(pg_catalog.=) 0"
"   AND s.workflow_slug OPERATOR(pg_catalog.=) ss.workflow_slug"
"   AND s.step_slug OPERATOR(pg_catalog.=) ss.step_slug"
" RETURNING ss.step_slug,"
"           s.step_type OPERATOR(pg_catalog.=) 'map',"
"           s.step_index, COALESCE(s.start_delay, 0), s.deps_count,"
"           COALESCE(s.max_attempts, w.max_attempts), src.n";

/*
 * The one task of a single step.  A root step reads the run input at
 * claim time (input NULL); a dependent one gets {dep_slug: output, ...}.
 */
static const char *const insert_single_sql =
"INSERT INTO quantum_flow.workflow_step_tasks"
"       (run_id, step_slug, task_index, workflow_slug, idempotency_key,"
"        status, attempts_count, max_attempts, visible_at, queued_at, input)"
"SELECT $1, $2, 0, $3, $4, 'queued', 0, $5, $6, $7,"
"       CASE WHEN $8 THEN NULL"
"       ELSE (SELECT pg_catalog.jsonb_object_agg(d.dep_slug, ds.output)"
"               FROM quantum_flow.workflow_step_deps AS d"
"               JOIN quantum_flow.workflow_step_states AS ds"
"                 ON ds.run_id OPERATOR(pg_catalog.=) $1"
"                AND ds.step_slug OPERATOR(pg_catalog.=) d.dep_slug"
"              WHERE d.workflow_slug OPERATOR(pg_catalog.=) $3"
"                AND d.step_slug OPERATOR(pg_catalog.=) $2)"
"       END";

/* The output of the one dependency of a dependent map step. */
static const char *const map_source_sql =
"SELECT ds.output"
"  FROM quantum_flow.workflow_step_deps AS d"
"  JOIN quantum_flow.workflow_step_states AS ds"
"    ON ds.run_id OPERATOR(pg_catalog.=) $1"
"   AND ds.step_slug OPERATOR(pg_catalog.=) d.dep_slug"
" WHERE d.workflow_slug OPERATOR(pg_catalog.=) $3"
"   AND d.step_slug OPERATOR(pg_catalog.=) $2";

/* One task per element of the map step's input array, in one statement. */
static const char *const insert_map_sql =
"INSERT INTO quantum_flow.workflow_step_tasks"
"       (run_id, step_slug, task_index, workflow_slug, idempotency_key,"
"        status, attempts_count, max_attempts, visible_at, queued_at, input)"
"SELECT $1, $2, (e.ord OPERATOR(pg_catalog.-) 1)::integer, $3,"
"       quantum_flow.compute_idempotency_key($3, $2, $1,"
"           (e.ord OPERATOR(pg_catalog.-) 1)::integer),"
"       'queued', 0, $4, $5, $6, e.value"
"  FROM pg_catalog.jsonb_array_elements($7) WITH ORDINALITY AS e(value, ord)";

static const char *const complete_step_sql =
"SELECT quantum_flow._complete_step($1, $2, '[]'::jsonb)";

static const char *const fail_run_sql =
"SELECT quantum_flow._fail_run($1, $2, $3, $3)";

/*
 * qf_scheduler_init
 *		Define quantum_flow.notify.  Called from _PG_init.
 */
void
qf_scheduler_init(void)
{
	DefineCustomBoolVariable("quantum_flow.notify",
							 gettext_noop("Sends NOTIFY quantum_flow when "
										  "tasks become claimable."),
							 gettext_noop("The payload is the workflow slug. "
										  "Off by default, because NOTIFY "
										  "serializes committing "
										  "transactions."),
							 &qf_notify,
							 false,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);
}

/*
 * qf_prepare
 *		Prepare and keep a plan the first time it is needed.
 */
static SPIPlanPtr
qf_prepare(SPIPlanPtr *plan, const char *sql, int nargs, Oid *argtypes)
{
	if (*plan == NULL)
	{
		SPIPlanPtr	p = SPI_prepare(sql, nargs, argtypes);

		if (p == NULL)
			elog(ERROR, "SPI_prepare failed: %s",
				 SPI_result_code_string(SPI_result));
		if (SPI_keepplan(p) != 0)
			elog(ERROR, "SPI_keepplan failed");
		*plan = p;
	}
	return *plan;
}

/*
 * qf_exec
 *		Run a saved plan, failing loudly on an SPI error.
 */
static void
qf_exec(SPIPlanPtr plan, Datum *values, const char *nulls, int expected)
{
	int			ret = SPI_execute_plan(plan, values, nulls, false, 0);

	if (ret != expected)
		elog(ERROR, "SPI_execute_plan returned %s",
			 SPI_result_code_string(ret));
}

/*
 * qf_notify_workflow
 *		Wake idle workers of a workflow, if asked to.  PostgreSQL folds
 *		identical notifications of one transaction into one.
 */
void
qf_notify_workflow(const char *workflow_slug)
{
	if (qf_notify)
		Async_Notify("quantum_flow", workflow_slug);
}

/*
 * qf_step_cmp
 *		Order ready steps by their index in the definition, so that tasks
 *		are created in a stable order.
 */
static int
qf_step_cmp(const void *a, const void *b)
{
	const QfReadyStep *sa = (const QfReadyStep *) a;
	const QfReadyStep *sb = (const QfReadyStep *) b;

	return (sa->step_index > sb->step_index) -
		(sa->step_index < sb->step_index);
}

/*
 * qf_claim_ready_steps
 *		Move the ready steps of the run to 'started' and return them,
 *		sorted, in *steps.  Returns how many there are.
 */
static int
qf_claim_ready_steps(Datum run_id, TimestampTz now, Datum run_input,
					 QfReadyStep **steps)
{
	Oid			argtypes[3] = {UUIDOID, TIMESTAMPTZOID, JSONBOID};
	Datum		values[3];
	QfReadyStep *result;
	uint64		i;
	int			n;

	values[0] = run_id;
	values[1] = TimestampTzGetDatum(now);
	values[2] = run_input;
	qf_exec(qf_prepare(&claim_steps_plan, claim_steps_sql, 3, argtypes),
			values, NULL, SPI_OK_UPDATE_RETURNING);

	n = (int) SPI_processed;
	if (n == 0)
		return 0;

	/* Copy the rows out before the next statement reuses SPI_tuptable. */
	result = palloc(sizeof(QfReadyStep) * n);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		QfReadyStep *s = &result[i];

		s->step_slug = SPI_getvalue(tup, desc, 1);
		s->is_map = DatumGetBool(SPI_getbinval(tup, desc, 2, &isnull));
		s->step_index = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
		s->start_delay = DatumGetInt32(SPI_getbinval(tup, desc, 4, &isnull));
		s->deps_count = DatumGetInt32(SPI_getbinval(tup, desc, 5, &isnull));
		s->max_attempts = DatumGetInt32(SPI_getbinval(tup, desc, 6,
													  &isnull));
		s->ntasks = DatumGetInt32(SPI_getbinval(tup, desc, 7,
												&s->ntasks_null));
	}
	qsort(result, n, sizeof(QfReadyStep), qf_step_cmp);

	*steps = result;
	return n;
}

/*
 * qf_insert_single_task
 *		Create the one task of a single step.
 */
static void
qf_insert_single_task(Datum run_id, const char *workflow_slug,
					  QfReadyStep *step, TimestampTz now)
{
	Oid			argtypes[8] = {UUIDOID, TEXTOID, TEXTOID, TEXTOID, INT4OID,
							   TIMESTAMPTZOID, TIMESTAMPTZOID, BOOLOID};
	Datum		values[8];
	char		key[QF_KEY_LEN + 1];

	qf_compute_key(workflow_slug, step->step_slug, DatumGetUUIDP(run_id), 0,
				   key);

	values[0] = run_id;
	values[1] = CStringGetTextDatum(step->step_slug);
	values[2] = CStringGetTextDatum(workflow_slug);
	values[3] = CStringGetTextDatum(key);
	values[4] = Int32GetDatum(step->max_attempts);
	values[5] = TimestampTzGetDatum(now +
									(int64) step->start_delay * USECS_PER_SEC);
	values[6] = TimestampTzGetDatum(now);
	values[7] = BoolGetDatum(step->deps_count == 0);
	qf_exec(qf_prepare(&insert_single_plan, insert_single_sql, 8, argtypes),
			values, NULL, SPI_OK_INSERT);
}

/*
 * qf_insert_map_tasks
 *		Create one task per element of a map step's input array.
 */
static void
qf_insert_map_tasks(Datum run_id, const char *workflow_slug,
					QfReadyStep *step, TimestampTz now, Datum run_input)
{
	Oid			argtypes[7] = {UUIDOID, TEXTOID, TEXTOID, INT4OID,
							   TIMESTAMPTZOID, TIMESTAMPTZOID, JSONBOID};
	Datum		values[7];
	Datum		source = run_input;

	values[0] = run_id;
	values[1] = CStringGetTextDatum(step->step_slug);
	values[2] = CStringGetTextDatum(workflow_slug);

	/* A dependent map step maps over its dependency's output. */
	if (step->deps_count > 0)
	{
		Oid			srctypes[3] = {UUIDOID, TEXTOID, TEXTOID};
		bool		isnull;

		qf_exec(qf_prepare(&map_source_plan, map_source_sql, 3, srctypes),
				values, NULL, SPI_OK_SELECT);
		if (SPI_processed != 1)
			elog(ERROR, "map step \"%s\" has no dependency output",
				 step->step_slug);
		source = SPI_getbinval(SPI_tuptable->vals[0],
							   SPI_tuptable->tupdesc, 1, &isnull);
	}

	values[3] = Int32GetDatum(step->max_attempts);
	values[4] = TimestampTzGetDatum(now +
									(int64) step->start_delay * USECS_PER_SEC);
	values[5] = TimestampTzGetDatum(now);
	values[6] = source;
	qf_exec(qf_prepare(&insert_map_plan, insert_map_sql, 7, argtypes),
			values, NULL, SPI_OK_INSERT);

	if (SPI_processed != (uint64) step->ntasks)
		elog(ERROR, "map step \"%s\" created " UINT64_FORMAT
			 " tasks instead of %d",
			 step->step_slug, SPI_processed, step->ntasks);
}

/*
 * qf_fail_type_violation
 *		Fail the run because a map step's input is not an array.  No retry
 *		can change a finished step's output, so the run fails at once.
 */
static void
qf_fail_type_violation(Datum run_id, QfReadyStep *step)
{
	Oid			argtypes[3] = {UUIDOID, TEXTOID, TEXTOID};
	Datum		values[3];
	char	   *message;

	if (step->deps_count == 0)
		message = psprintf("map step \"%s\" expected an array as the run "
						   "input", step->step_slug);
	else
		message = psprintf("map step \"%s\" expected an array from the "
						   "step it depends on", step->step_slug);

	values[0] = run_id;
	values[1] = CStringGetTextDatum(step->step_slug);
	values[2] = CStringGetTextDatum(message);
	qf_exec(qf_prepare(&fail_run_plan, fail_run_sql, 3, argtypes),
			values, NULL, SPI_OK_SELECT);
}

/*
 * qf_complete_empty_map
 *		A map step over [] has nothing to do: complete it with [].
 */
static void
qf_complete_empty_map(Datum run_id, QfReadyStep *step)
{
	Oid			argtypes[2] = {UUIDOID, TEXTOID};
	Datum		values[2];

	values[0] = run_id;
	values[1] = CStringGetTextDatum(step->step_slug);
	qf_exec(qf_prepare(&complete_step_plan, complete_step_sql, 2, argtypes),
			values, NULL, SPI_OK_SELECT);
}

/*
 * qf_start_ready_steps_internal
 *		The work of start_ready_steps; the caller is connected to SPI.
 *		Returns the number of tasks created.
 */
static int64
qf_start_ready_steps_internal(Datum run_id)
{
	Oid			argtypes[1] = {UUIDOID};
	char	   *workflow_slug;
	char	   *status;
	Datum		run_input;
	bool		isnull;
	TimestampTz now = qf_clock_now();
	int64		created = 0;

	/* Lock the run; a missing run is the caller's error. */
	qf_exec(qf_prepare(&lock_run_plan, lock_run_sql, 1, argtypes),
			&run_id, NULL, SPI_OK_SELECT);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("run \"%s\" does not exist",
						DatumGetCString(DirectFunctionCall1(uuid_out,
															run_id)))));
	workflow_slug = SPI_getvalue(SPI_tuptable->vals[0],
								 SPI_tuptable->tupdesc, 1);
	status = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	run_input = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
							  3, &isnull);
	run_input = PointerGetDatum(PG_DETOAST_DATUM_COPY(run_input));

	/* A finished or cancelled run starts nothing. */
	if (strcmp(status, "started") != 0)
		return 0;

	/* Start ready steps until no empty map step makes more of them ready. */
	for (;;)
	{
		QfReadyStep *steps;
		int			nsteps;
		int			i;
		bool		cascaded = false;

		nsteps = qf_claim_ready_steps(run_id, now, run_input, &steps);
		if (nsteps == 0)
			break;

		for (i = 0; i < nsteps; i++)
		{
			QfReadyStep *step = &steps[i];

			/* A map step whose input is not an array fails the run. */
			if (step->is_map && step->ntasks_null)
			{
				qf_fail_type_violation(run_id, step);
				return created;
			}

			/* An empty map step completes now and may free its dependents. */
			if (step->is_map && step->ntasks == 0)
			{
				qf_complete_empty_map(run_id, step);
				cascaded = true;
				continue;
			}

			/* Otherwise create the step's tasks. */
			if (step->is_map)
				qf_insert_map_tasks(run_id, workflow_slug, step, now,
									run_input);
			else
				qf_insert_single_task(run_id, workflow_slug, step, now);
			created += step->ntasks;
		}

		if (!cascaded)
			break;
	}

	if (created > 0)
		qf_notify_workflow(workflow_slug);
	return created;
}

/*
 * start_ready_steps(run_id uuid) RETURNS integer
 *		Start every ready step of the run; return the number of tasks
 *		created.  A second call, or a concurrent one, returns 0.
 */
Datum
qf_start_ready_steps(PG_FUNCTION_ARGS)
{
	int64		created;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("run_id must not be null")));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	created = qf_start_ready_steps_internal(PG_GETARG_DATUM(0));
	SPI_finish();

	if (created > PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("too many tasks created in one call")));
	PG_RETURN_INT32((int32) created);
}
