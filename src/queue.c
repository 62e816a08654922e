/*-------------------------------------------------------------------------
 *
 * queue.c
 *		Completing tasks, and with them steps and runs.
 *
 * complete_task() is the call every worker makes once per task, so it is
 * written in C with saved generic plans: no PL/pgSQL interpretation and no
 * re-planning on the hot path.  Completing the last task of a step
 * completes the step in the same UPDATE that counts the task off, counts
 * the step off its dependents and its run, completes the run when no step
 * is left, and starts the steps that became ready, all in the caller's
 * transaction.
 *
 * Lock order, as everywhere in the engine: the run row first, then task
 * rows, then step states.
 *
 * XXX: taking the run lock on every completion means that the workers of
 * one large map step take turns on its run row, even for tasks that do
 * not complete the step.  Counting such tasks off under the step state's
 * row lock alone would let them overlap, but a final failure of the run
 * locks tasks after the run, so that path needs its own proof of freedom
 * from deadlock before it can skip the run lock.
 *
 * Copyright (c) 2026, the quantum_flow authors
 *
 * IDENTIFICATION
 *		src/queue.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "quantum_flow.h"

PG_FUNCTION_INFO_V1(qf_complete_task);
PG_FUNCTION_INFO_V1(qf_count_off_tasks_sql);

static SPIPlanPtr lock_run_plan = NULL;
static SPIPlanPtr complete_one_plan = NULL;
static SPIPlanPtr fetch_task_plan = NULL;
static SPIPlanPtr count_off_plan = NULL;
static SPIPlanPtr dependents_plan = NULL;
static SPIPlanPtr dependents_start_plan = NULL;
static SPIPlanPtr run_step_done_plan = NULL;
static SPIPlanPtr complete_run_plan = NULL;
static SPIPlanPtr complete_single_plan = NULL;
static SPIPlanPtr count_off_map_plan = NULL;
static SPIPlanPtr complete_map_plan = NULL;

/* Lock the run; true when it is still running. */
static const char *const lock_run_sql =
"SELECT r.status OPERATOR(pg_catalog.=) 'started'"
"  FROM quantum_flow.workflow_runs AS r"
" WHERE r.run_id OPERATOR(pg_catalog.=) $1"
"   FOR NO KEY UPDATE";

/*
 * Complete a started task, of the given attempt if one is given, and say
 * whether its step is a map step.
 */
static const char *const complete_one_sql =
"UPDATE quantum_flow.workflow_step_tasks AS t"
"   SET status = 'completed', completed_at = $5, output = $4"
"  FROM quantum_flow.workflow_steps AS s"
" WHERE t.run_id OPERATOR(pg_catalog.=) $1"
"   AND t.step_slug OPERATOR(pg_catalog.=) $2"
"   AND t.task_index OPERATOR(pg_catalog.=) $3"
"   AND t.status OPERATOR(pg_catalog.=) 'started'"
"   AND ($6 IS NULL OR t.attempts_count OPERATOR(pg_catalog.=) $6)"
"   AND s.workflow_slug OPERATOR(pg_catalog.=) t.workflow_slug"
"   AND s.step_slug OPERATOR(pg_catalog.=) t.step_slug"
" RETURNING t, s.step_type OPERATOR(pg_catalog.=) 'map'";

/* The task as it is, for a callback that changes nothing. */
static const char *const fetch_task_sql =
"SELECT t"
"  FROM quantum_flow.workflow_step_tasks AS t"
" WHERE t.run_id OPERATOR(pg_catalog.=) $1"
"   AND t.step_slug OPERATOR(pg_catalog.=) $2"
"   AND t.task_index OPERATOR(pg_catalog.=) $3";

/*
 * Count completed tasks off their step.  At zero the same UPDATE completes
 * the step with its output: the task's for a single step, the task
 * outputs in task_index order for a map step.
 */
static const char *const count_off_sql =
"UPDATE quantum_flow.workflow_step_states AS ss"
"   SET remaining_tasks = ss.remaining_tasks OPERATOR(pg_catalog.-) $3,"
"       status = CASE WHEN ss.remaining_tasks OPERATOR(pg_catalog.=) $3"
"                     THEN 'completed' ELSE ss.status END,"
"       completed_at = CASE WHEN ss.remaining_tasks OPERATOR(pg_catalog.=) $3"
"                           THEN $4 END,"
"       output = CASE"
"           WHEN ss.remaining_tasks OPERATOR(pg_catalog.<>) $3 THEN NULL"
"           WHEN s.step_type OPERATOR(pg_catalog.=) 'map' THEN"
"               (SELECT COALESCE(pg_catalog.jsonb_agg(t.output"
"                                ORDER BY t.task_index), '[]'::jsonb)"
"                  FROM quantum_flow.workflow_step_tasks AS t"
"                 WHERE t.run_id OPERATOR(pg_catalog.=) $1"
"                   AND t.step_slug OPERATOR(pg_catalog.=) $2)"
"           ELSE"
"               (SELECT t.output"
"                  FROM quantum_flow.workflow_step_tasks AS t"
"                 WHERE t.run_id OPERATOR(pg_catalog.=) $1"
"                   AND t.step_slug OPERATOR(pg_catalog.=) $2"
"                   AND t.task_index OPERATOR(pg_catalog.=) 0)"
"       END"
"  FROM quantum_flow.workflow_steps AS s"
" WHERE ss.run_id OPERATOR(pg_catalog.=) $1"
"   AND ss.step_slug OPERATOR(pg_catalog.=) $2"
"   AND ss.status OPERATOR(pg_catalog.=) 'started'"
"   AND s.workflow_slug OPERATOR(pg_catalog.=) ss.workflow_slug"
"   AND s.step_slug OPERATOR(pg_catalog.=) ss.step_slug"
" RETURNING ss.remaining_tasks, ss.workflow_slug";

/* The dependents of a completed step wait for one dependency fewer. */
static const char *const dependents_sql =
"UPDATE quantum_flow.workflow_step_states AS ss"
"   SET remaining_deps = ss.remaining_deps OPERATOR(pg_catalog.-) 1"
"  FROM quantum_flow.workflow_step_deps AS d"
" WHERE d.workflow_slug OPERATOR(pg_catalog.=) $3"
"   AND d.dep_slug OPERATOR(pg_catalog.=) $2"
"   AND ss.run_id OPERATOR(pg_catalog.=) $1"
"   AND ss.step_slug OPERATOR(pg_catalog.=) d.step_slug";

/*
 * The same, for a step completed by its last task: dependents left with
 * no dependency are started in the same statement, and returned with
 * what qf_start_steps needs to create their tasks.
 */
static const char *const dependents_start_sql =
"UPDATE quantum_flow.workflow_step_states AS ss"
"   SET remaining_deps = ss.remaining_deps OPERATOR(pg_catalog.-) 1,"
"       status = CASE WHEN ss.remaining_deps OPERATOR(pg_catalog.=) 1"
"                     THEN 'started' ELSE ss.status END,"
"       started_at = CASE WHEN ss.remaining_deps OPERATOR(pg_catalog.=) 1"
"                         THEN $4 ELSE ss.started_at END,"
"       initial_tasks = CASE"
"           WHEN ss.remaining_deps OPERATOR(pg_catalog.=) 1"
"            AND s.step_type OPERATOR(pg_catalog.=) 'single'"
"           THEN 1 ELSE ss.initial_tasks END,"
"       remaining_tasks = CASE"
"           WHEN ss.remaining_deps OPERATOR(pg_catalog.=) 1"
"            AND s.step_type OPERATOR(pg_catalog.=) 'single'"
"           THEN 1 ELSE ss.remaining_tasks END"
"  FROM quantum_flow.workflow_step_deps AS d"
"  JOIN quantum_flow.workflow_steps AS s"
"    ON s.workflow_slug OPERATOR(pg_catalog.=) d.workflow_slug"
"   AND s.step_slug OPERATOR(pg_catalog.=) d.step_slug"
"  JOIN quantum_flow.workflows AS w"
"    ON w.workflow_slug OPERATOR(pg_catalog.=) d.workflow_slug"
" WHERE d.workflow_slug OPERATOR(pg_catalog.=) $3"
"   AND d.dep_slug OPERATOR(pg_catalog.=) $2"
"   AND ss.run_id OPERATOR(pg_catalog.=) $1"
"   AND ss.step_slug OPERATOR(pg_catalog.=) d.step_slug"
"   AND ss.status OPERATOR(pg_catalog.=) 'created'"
" RETURNING ss.step_slug,"
"           s.step_type OPERATOR(pg_catalog.=) 'map',"
"           s.step_index, COALESCE(s.start_delay, 0), s.deps_count,"
"           COALESCE(s.max_attempts, w.max_attempts),"
"           ss.remaining_deps OPERATOR(pg_catalog.=) 0";

/*
 * The run has one step fewer.  This statement sets no status, so the
 * run-end trigger does not even look at it.
 */
static const char *const run_step_done_sql =
"UPDATE quantum_flow.workflow_runs AS r"
"   SET remaining_steps = r.remaining_steps OPERATOR(pg_catalog.-) 1"
" WHERE r.run_id OPERATOR(pg_catalog.=) $1"
" RETURNING r.remaining_steps";

/*
 * A run with no step left completes; its output maps each leaf step (one
 * that no step of the run depends on) to that step's output.
 */
static const char *const complete_run_sql =
"UPDATE quantum_flow.workflow_runs AS r"
"   SET status = 'completed', completed_at = $3,"
"       output ="
"           (SELECT COALESCE(pg_catalog.jsonb_object_agg(ss.step_slug,"
"                                                        ss.output),"
"                            '{}'::jsonb)"
"              FROM quantum_flow.workflow_step_states AS ss"
"             WHERE ss.run_id OPERATOR(pg_catalog.=) $1"
"               AND NOT EXISTS ("
"                   SELECT 1"
"                     FROM quantum_flow.workflow_step_deps AS d"
"                     JOIN quantum_flow.workflow_step_states AS dep"
"                       ON dep.run_id OPERATOR(pg_catalog.=) $1"
"                      AND dep.step_slug OPERATOR(pg_catalog.=) d.step_slug"
"                    WHERE d.workflow_slug OPERATOR(pg_catalog.=) $2"
"                      AND d.dep_slug OPERATOR(pg_catalog.=) ss.step_slug))"
" WHERE r.run_id OPERATOR(pg_catalog.=) $1";

/*
 * The last task of a single step completed with the given output: the
 * step completes with it.
 */
static const char *const complete_single_sql =
"UPDATE quantum_flow.workflow_step_states AS ss"
"   SET remaining_tasks = 0, status = 'completed', completed_at = $3,"
"       output = $4"
" WHERE ss.run_id OPERATOR(pg_catalog.=) $1"
"   AND ss.step_slug OPERATOR(pg_catalog.=) $2"
"   AND ss.status OPERATOR(pg_catalog.=) 'started'"
"   AND ss.remaining_tasks OPERATOR(pg_catalog.=) 1"
" RETURNING ss.workflow_slug";

/* A task of a map step completed: one task fewer to wait for. */
static const char *const count_off_map_sql =
"UPDATE quantum_flow.workflow_step_states AS ss"
"   SET remaining_tasks = ss.remaining_tasks OPERATOR(pg_catalog.-) 1"
" WHERE ss.run_id OPERATOR(pg_catalog.=) $1"
"   AND ss.step_slug OPERATOR(pg_catalog.=) $2"
"   AND ss.status OPERATOR(pg_catalog.=) 'started'"
" RETURNING ss.remaining_tasks, ss.workflow_slug";

/* A map step with no task left completes with its tasks' outputs. */
static const char *const complete_map_sql =
"UPDATE quantum_flow.workflow_step_states AS ss"
"   SET status = 'completed', completed_at = $3,"
"       output ="
"           (SELECT COALESCE(pg_catalog.jsonb_agg(t.output"
"                            ORDER BY t.task_index), '[]'::jsonb)"
"              FROM quantum_flow.workflow_step_tasks AS t"
"             WHERE t.run_id OPERATOR(pg_catalog.=) $1"
"               AND t.step_slug OPERATOR(pg_catalog.=) $2)"
" WHERE ss.run_id OPERATOR(pg_catalog.=) $1"
"   AND ss.step_slug OPERATOR(pg_catalog.=) $2";

/*
 * qf_count_off_run
 *		The run has one step fewer; it completes when none is left.
 */
static void
qf_count_off_run(Datum run_id, const char *workflow_slug, TimestampTz now)
{
	Oid			argtypes[3] = {UUIDOID, TEXTOID, TIMESTAMPTZOID};
	Datum		values[3];
	bool		isnull;

	values[0] = run_id;
	values[1] = CStringGetTextDatum(workflow_slug);
	values[2] = TimestampTzGetDatum(now);
	qf_exec(qf_prepare(&run_step_done_plan, run_step_done_sql, 1, argtypes),
			values, NULL, SPI_OK_UPDATE_RETURNING);
	if (SPI_processed != 1 ||
		DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
									SPI_tuptable->tupdesc, 1,
									&isnull)) != 0)
		return;

	qf_exec(qf_prepare(&complete_run_plan, complete_run_sql, 3, argtypes),
			values, NULL, SPI_OK_UPDATE);
}

/*
 * qf_step_done
 *		A step completed by its last task: count it off its dependents,
 *		starting those left with no dependency, and off its run; then
 *		create the tasks of the steps just started.
 */
static void
qf_step_done(Datum run_id, Datum step_slug, const char *workflow_slug,
			 TimestampTz now)
{
	Oid			argtypes[4] = {UUIDOID, TEXTOID, TEXTOID, TIMESTAMPTZOID};
	Datum		values[4];
	QfReadyStep *steps;
	int			nsteps;

	values[0] = run_id;
	values[1] = step_slug;
	values[2] = CStringGetTextDatum(workflow_slug);
	values[3] = TimestampTzGetDatum(now);
	qf_exec(qf_prepare(&dependents_start_plan, dependents_start_sql, 4,
					   argtypes),
			values, NULL, SPI_OK_UPDATE_RETURNING);
	nsteps = qf_read_steps(&steps);

	qf_count_off_run(run_id, workflow_slug, now);
	(void) qf_start_steps(run_id, workflow_slug, (Datum) 0, now,
						  steps, nsteps);
}

/*
 * qf_count_off_one
 *		complete_task's share of qf_count_off_tasks: one task of a step
 *		whose type is known, with its output at hand.  A single step
 *		completes in one statement with no subquery; a map step's count
 *		goes down, and only its last task pays for the aggregate.
 */
static void
qf_count_off_one(Datum run_id, Datum step_slug, bool is_map, Datum output,
				 TimestampTz now)
{
	Oid			argtypes[4] = {UUIDOID, TEXTOID, TIMESTAMPTZOID, JSONBOID};
	Datum		values[4];
	bool		isnull;
	char	   *workflow_slug;

	values[0] = run_id;
	values[1] = step_slug;
	values[2] = TimestampTzGetDatum(now);
	values[3] = output;

	if (!is_map)
	{
		qf_exec(qf_prepare(&complete_single_plan, complete_single_sql, 4,
						   argtypes),
				values, NULL, SPI_OK_UPDATE_RETURNING);
		if (SPI_processed != 1)
			return;
	}
	else
	{
		qf_exec(qf_prepare(&count_off_map_plan, count_off_map_sql, 2,
						   argtypes),
				values, NULL, SPI_OK_UPDATE_RETURNING);
		if (SPI_processed != 1 ||
			DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
										SPI_tuptable->tupdesc, 1,
										&isnull)) != 0)
			return;
	}
	workflow_slug = SPI_getvalue(SPI_tuptable->vals[0],
								 SPI_tuptable->tupdesc,
								 is_map ? 2 : 1);

	if (is_map)
		qf_exec(qf_prepare(&complete_map_plan, complete_map_sql, 3,
						   argtypes),
				values, NULL, SPI_OK_UPDATE);

	qf_step_done(run_id, step_slug, workflow_slug, now);
}

/*
 * qf_step_completed
 *		A step of the run has just completed without a task (a map step
 *		over []): count it off its dependents and its run.  The caller
 *		starts whatever became ready.
 */
void
qf_step_completed(Datum run_id, const char *step_slug,
				  const char *workflow_slug, TimestampTz now)
{
	Oid			argtypes[3] = {UUIDOID, TEXTOID, TEXTOID};
	Datum		values[3];

	values[0] = run_id;
	values[1] = CStringGetTextDatum(step_slug);
	values[2] = CStringGetTextDatum(workflow_slug);
	qf_exec(qf_prepare(&dependents_plan, dependents_sql, 3, argtypes),
			values, NULL, SPI_OK_UPDATE);
	qf_count_off_run(run_id, workflow_slug, now);
}

/*
 * qf_count_off_tasks
 *		Count ntasks completed tasks off their step; when none is left,
 *		complete the step, tell its dependents and run, and start the steps
 *		that became ready.
 */
void
qf_count_off_tasks(Datum run_id, Datum step_slug, int32 ntasks,
				   TimestampTz now)
{
	Oid			argtypes[4] = {UUIDOID, TEXTOID, INT4OID, TIMESTAMPTZOID};
	Datum		values[4];
	bool		isnull;
	int32		remaining;
	char	   *workflow_slug;

	values[0] = run_id;
	values[1] = step_slug;
	values[2] = Int32GetDatum(ntasks);
	values[3] = TimestampTzGetDatum(now);
	qf_exec(qf_prepare(&count_off_plan, count_off_sql, 4, argtypes),
			values, NULL, SPI_OK_UPDATE_RETURNING);
	if (SPI_processed != 1)
		return;

	remaining = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
											SPI_tuptable->tupdesc, 1,
											&isnull));
	if (isnull || remaining != 0)
		return;

	/* The step is complete. */
	workflow_slug = SPI_getvalue(SPI_tuptable->vals[0],
								 SPI_tuptable->tupdesc, 2);
	qf_step_done(run_id, step_slug, workflow_slug, now);
}

/*
 * _count_off_tasks(run_id uuid, step_slug text, ntasks integer)
 *		SQL entry point of qf_count_off_tasks, for complete_tasks().  The
 *		caller holds the run lock.
 */
Datum
qf_count_off_tasks_sql(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("arguments of _count_off_tasks must not be null")));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	qf_count_off_tasks(PG_GETARG_DATUM(0), PG_GETARG_DATUM(1),
					   PG_GETARG_INT32(2), qf_clock_now());
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * qf_null_argument
 *		Report a NULL where an argument is required.
 */
static void
qf_null_argument(const char *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
			 errmsg("%s must not be null", name)));
}

/*
 * complete_task(run_id uuid, step_slug text, task_index integer,
 *				 output jsonb, attempt integer) RETURNS workflow_step_tasks
 *		Record a task's output.  Applies only to a started task of a
 *		started run, and, when attempt is given, only to that attempt;
 *		otherwise the row is returned unchanged, so that late and duplicate
 *		callbacks are harmless.
 */
Datum
qf_complete_task(PG_FUNCTION_ARGS)
{
	Oid			locktypes[1] = {UUIDOID};
	Oid			argtypes[6] = {UUIDOID, TEXTOID, INT4OID, JSONBOID,
							   TIMESTAMPTZOID, INT4OID};
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	TimestampTz now = qf_clock_now();
	bool		isnull;
	bool		running;
	bool		completed = false;
	bool		is_map = false;
	Datum		result;

	/* Arguments. */
	if (PG_ARGISNULL(0))
		qf_null_argument("run_id");
	if (PG_ARGISNULL(1))
		qf_null_argument("step_slug");
	if (PG_ARGISNULL(2))
		qf_null_argument("task_index");

	values[0] = PG_GETARG_DATUM(0);
	values[1] = PG_GETARG_DATUM(1);
	values[2] = PG_GETARG_DATUM(2);
	if (PG_ARGISNULL(3))
		values[3] = DirectFunctionCall1(jsonb_in, CStringGetDatum("null"));
	else
		values[3] = PG_GETARG_DATUM(3);
	values[4] = TimestampTzGetDatum(now);
	if (PG_ARGISNULL(4))
	{
		values[5] = (Datum) 0;
		nulls[5] = 'n';
	}
	else
		values[5] = PG_GETARG_DATUM(4);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/* The run first: that is the lock order. */
	qf_exec(qf_prepare(&lock_run_plan, lock_run_sql, 1, locktypes),
			values, NULL, SPI_OK_SELECT);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("run \"%s\" does not exist",
						DatumGetCString(DirectFunctionCall1(uuid_out,
															values[0])))));
	running = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
										 SPI_tuptable->tupdesc, 1, &isnull));

	/* Complete the task if it is this call's to complete. */
	if (running)
	{
		qf_exec(qf_prepare(&complete_one_plan, complete_one_sql, 6,
						   argtypes),
				values, nulls, SPI_OK_UPDATE_RETURNING);
		completed = (SPI_processed == 1);
		if (completed)
			is_map = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
												SPI_tuptable->tupdesc, 2,
												&isnull));
	}

	/* Otherwise return the task as it is. */
	if (!completed)
	{
		qf_exec(qf_prepare(&fetch_task_plan, fetch_task_sql, 3, argtypes),
				values, NULL, SPI_OK_SELECT);
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("task %d of step \"%s\" in run \"%s\" does not exist",
							DatumGetInt32(values[2]),
							TextDatumGetCString(values[1]),
							DatumGetCString(DirectFunctionCall1(uuid_out,
																values[0])))));
	}

	/* Keep the row to return before other statements run. */
	result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
						   &isnull);
	result = SPI_datumTransfer(result, false, -1);

	/* A completed task may complete its step, its run, and start others. */
	if (completed)
		qf_count_off_one(values[0], values[1], is_map, values[3], now);

	SPI_finish();
	PG_RETURN_DATUM(result);
}
