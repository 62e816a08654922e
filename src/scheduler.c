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



/* Saved plans, prepared on first use. */
static SPIPlanPtr lock_run_plan = NULL;
static SPIPlanPtr read_input_plan = NULL;
static SPIPlanPtr claim_steps_plan = NULL;
static SPIPlanPtr set_map_count_plan = NULL;
static SPIPlanPtr insert_root_single_plan = NULL;
static SPIPlanPtr insert_single_plan = NULL;
static SPIPlanPtr map_source_plan = NULL;
static SPIPlanPtr insert_map_plan = NULL;
static SPIPlanPtr complete_empty_plan = NULL;
static SPIPlanPtr fail_run_plan = NULL;

/* Lock the run so that concurrent callers on one run take turns. */
static const char *const lock_run_sql =
"SELECT r.workflow_slug, r.status, r.input"
"  FROM quantum_flow.workflow_runs AS r"
" WHERE r.run_id OPERATOR(pg_catalog.=) $1"
"   FOR NO KEY UPDATE";

/* The input of a run that is locked already. */
static const char *const read_input_sql =
"SELECT r.input FROM quantum_flow.workflow_runs AS r"
" WHERE r.run_id OPERATOR(pg_catalog.=) $1";

/*
 * Start every ready step.  A single step has one task, known now; a map
 * step's task count is set once its input array has been looked at.
 */
static const char *const claim_steps_sql =
"UPDATE quantum_flow.workflow_step_states AS ss"
"   SET status = 'started',"
"       started_at = $2,"
"       initial_tasks = CASE WHEN s.step_type OPERATOR(pg_catalog.=)"
"                                 'single' THEN 1 END,"
"       remaining_tasks = CASE WHEN s.step_type OPERATOR(pg_catalog.=)"
"                                   'single' THEN 1 END"
"  FROM quantum_flow.workflow_steps AS s"
"  JOIN quantum_flow.workflows AS w"
"    ON w.workflow_slug OPERATOR(pg_catalog.=) s.workflow_slug"
" WHERE ss.run_id OPERATOR(pg_catalog.=) $1"
"   AND ss.status OPERATOR(pg_catalog.=) 'created'"
"   AND ss.remaining_deps OPERATOR(pg_catalog.=) 0"
"   AND s.workflow_slug OPERATOR(pg_catalog.=) ss.workflow_slug"
"   AND s.step_slug OPERATOR(pg_catalog.=) ss.step_slug"
" RETURNING ss.step_slug,"
"           s.step_type OPERATOR(pg_catalog.=) 'map',"
"           s.step_index, COALESCE(s.start_delay, 0), s.deps_count,"
"           COALESCE(s.max_attempts, w.max_attempts)";

/* Record a map step's task count. */
static const char *const set_map_count_sql =
"UPDATE quantum_flow.workflow_step_states AS ss"
"   SET initial_tasks = $3, remaining_tasks = $3"
" WHERE ss.run_id OPERATOR(pg_catalog.=) $1"
"   AND ss.step_slug OPERATOR(pg_catalog.=) $2";

/* The one task of a root single step: its input is the run input. */
static const char *const insert_root_single_sql =
"INSERT INTO quantum_flow.workflow_step_tasks"
"       (run_id, step_slug, task_index, workflow_slug, idempotency_key,"
"        status, attempts_count, max_attempts, visible_at, queued_at)"
"VALUES ($1, $2, 0, $3, $4, 'queued', 0, $5, $6, $7)";

/* The one task of a dependent single step: {dep_slug: output, ...}. */
static const char *const insert_single_sql =
"INSERT INTO quantum_flow.workflow_step_tasks"
"       (run_id, step_slug, task_index, workflow_slug, idempotency_key,"
"        status, attempts_count, max_attempts, visible_at, queued_at, input)"
"SELECT $1, $2, 0, $3, $4, 'queued', 0, $5, $6, $7,"
"       pg_catalog.jsonb_object_agg(d.dep_slug, ds.output)"
"  FROM quantum_flow.workflow_step_deps AS d"
"  JOIN quantum_flow.workflow_step_states AS ds"
"    ON ds.run_id OPERATOR(pg_catalog.=) $1"
"   AND ds.step_slug OPERATOR(pg_catalog.=) d.dep_slug"
" WHERE d.workflow_slug OPERATOR(pg_catalog.=) $3"
"   AND d.step_slug OPERATOR(pg_catalog.=) $2";

/* The output of the one dependency of a dependent map step. */
static const char *const map_source_sql =
"SELECT ds.output, d.dep_slug, pg_catalog.jsonb_typeof(ds.output)"
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

static const char *const complete_empty_sql =
"UPDATE quantum_flow.workflow_step_states AS ss"
"   SET status = 'completed', completed_at = $3,"
"       output = '[]'::jsonb, remaining_tasks = 0"
" WHERE ss.run_id OPERATOR(pg_catalog.=) $1"
"   AND ss.step_slug OPERATOR(pg_catalog.=) $2";

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
 *		Prepare and keep a plan the first time it is needed.  Plans are
 *		generic: their statements are short and their parameters do not
 *		change the best plan, so re-planning per call would be waste.
 */
SPIPlanPtr
qf_prepare(SPIPlanPtr *plan, const char *sql, int nargs, Oid *argtypes)
{
	if (*plan == NULL)
	{
		SPIPlanPtr	p = SPI_prepare_cursor(sql, nargs, argtypes,
										   CURSOR_OPT_GENERIC_PLAN);

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
void
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
 * qf_read_run_input
 *		The run's input, for a root map step started by a caller that had
 *		no reason to read it.  The run is locked already.
 */
static Datum
qf_read_run_input(Datum run_id)
{
	Oid			argtypes[1] = {UUIDOID};
	bool		isnull;
	Datum		input;

	qf_exec(qf_prepare(&read_input_plan, read_input_sql, 1, argtypes),
			&run_id, NULL, SPI_OK_SELECT);
	if (SPI_processed != 1)
		elog(ERROR, "run has vanished while locked");
	input = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
						  &isnull);
	return PointerGetDatum(PG_DETOAST_DATUM_COPY(input));
}

/*
 * qf_read_steps
 *		Copy the steps a statement just moved to 'started' out of
 *		SPI_tuptable, sorted by step index.  The statement returns, in
 *		order: step_slug, is_map, step_index, start_delay, deps_count,
 *		max_attempts, and optionally a boolean saying whether the row was
 *		started at all.
 */
int
qf_read_steps(QfReadyStep **steps)
{
	QfReadyStep *result;
	TupleDesc	desc = SPI_tuptable->tupdesc;
	uint64		i;
	int			n = 0;

	result = palloc(sizeof(QfReadyStep) * (SPI_processed + 1));
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		bool		isnull;
		QfReadyStep *s = &result[n];

		if (desc->natts >= 7 &&
			!DatumGetBool(SPI_getbinval(tup, desc, 7, &isnull)))
			continue;
		s->step_slug = SPI_getvalue(tup, desc, 1);
		s->is_map = DatumGetBool(SPI_getbinval(tup, desc, 2, &isnull));
		s->step_index = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
		s->start_delay = DatumGetInt32(SPI_getbinval(tup, desc, 4, &isnull));
		s->deps_count = DatumGetInt32(SPI_getbinval(tup, desc, 5, &isnull));
		s->max_attempts = DatumGetInt32(SPI_getbinval(tup, desc, 6,
													  &isnull));
		s->ntasks = 1;
		n++;
	}
	qsort(result, n, sizeof(QfReadyStep), qf_step_cmp);

	*steps = result;
	return n;
}

/*
 * qf_claim_ready_steps
 *		Move the ready steps of the run to 'started' and return them,
 *		sorted, in *steps.  Returns how many there are.
 */
static int
qf_claim_ready_steps(Datum run_id, TimestampTz now, QfReadyStep **steps)
{
	Oid			argtypes[2] = {UUIDOID, TIMESTAMPTZOID};
	Datum		values[2];

	values[0] = run_id;
	values[1] = TimestampTzGetDatum(now);
	qf_exec(qf_prepare(&claim_steps_plan, claim_steps_sql, 2, argtypes),
			values, NULL, SPI_OK_UPDATE_RETURNING);

	return qf_read_steps(steps);
}

/*
 * qf_insert_single_task
 *		Create the one task of a single step.
 */
static void
qf_insert_single_task(Datum run_id, const char *workflow_slug,
					  QfReadyStep *step, TimestampTz now)
{
	Oid			argtypes[7] = {UUIDOID, TEXTOID, TEXTOID, TEXTOID, INT4OID,
							   TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum		values[7];
	char		key[QF_KEY_LEN + 1];
	SPIPlanPtr	plan;

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

	/* A root step reads the run input when claimed; others get their own. */
	if (step->deps_count == 0)
		plan = qf_prepare(&insert_root_single_plan, insert_root_single_sql,
						  7, argtypes);
	else
		plan = qf_prepare(&insert_single_plan, insert_single_sql,
						  7, argtypes);
	qf_exec(plan, values, NULL, SPI_OK_INSERT);
}

/*
 * qf_map_source
 *		The array a map step maps over: the run input for a root step, the
 *		output of its one dependency otherwise.  Sets step->ntasks to the
 *		array's length, or to -1 when the source is not an array.
 */
static Datum
qf_map_source(Datum run_id, const char *workflow_slug, QfReadyStep *step,
			  Datum run_input)
{
	Datum		source = run_input;
	bool		isnull = false;
	Jsonb	   *jb;

	step->source_step = NULL;
	step->source_type = NULL;

	if (step->deps_count > 0)
	{
		Oid			argtypes[3] = {UUIDOID, TEXTOID, TEXTOID};
		Datum		values[3];

		values[0] = run_id;
		values[1] = CStringGetTextDatum(step->step_slug);
		values[2] = CStringGetTextDatum(workflow_slug);
		qf_exec(qf_prepare(&map_source_plan, map_source_sql, 3, argtypes),
				values, NULL, SPI_OK_SELECT);
		if (SPI_processed != 1)
			elog(ERROR, "map step \"%s\" has no dependency output",
				 step->step_slug);
		source = SPI_getbinval(SPI_tuptable->vals[0],
							   SPI_tuptable->tupdesc, 1, &isnull);
		step->source_step = SPI_getvalue(SPI_tuptable->vals[0],
										 SPI_tuptable->tupdesc, 2);
		step->source_type = SPI_getvalue(SPI_tuptable->vals[0],
										 SPI_tuptable->tupdesc, 3);
	}

	/* A raw scalar is stored as a one-element array: rule it out. */
	step->ntasks = -1;
	if (!isnull)
	{
		jb = DatumGetJsonbP(source);
		if (JB_ROOT_IS_ARRAY(jb) && !JB_ROOT_IS_SCALAR(jb))
			step->ntasks = JB_ROOT_COUNT(jb);
		source = JsonbPGetDatum(jb);
	}
	return source;
}

/*
 * qf_insert_map_tasks
 *		Record a map step's task count and create one task per element of
 *		its input array.
 */
static void
qf_insert_map_tasks(Datum run_id, const char *workflow_slug,
					QfReadyStep *step, TimestampTz now, Datum source)
{
	Oid			argtypes[7] = {UUIDOID, TEXTOID, TEXTOID, INT4OID,
							   TIMESTAMPTZOID, TIMESTAMPTZOID, JSONBOID};
	Oid			counttypes[3] = {UUIDOID, TEXTOID, INT4OID};
	Datum		values[7];

	values[0] = run_id;
	values[1] = CStringGetTextDatum(step->step_slug);
	values[2] = Int32GetDatum(step->ntasks);
	qf_exec(qf_prepare(&set_map_count_plan, set_map_count_sql, 3,
					   counttypes),
			values, NULL, SPI_OK_UPDATE);
	if (step->ntasks == 0)
		return;

	values[2] = CStringGetTextDatum(workflow_slug);
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

	if (step->source_step == NULL)
		message = psprintf("map step \"%s\" expected an array as the run "
						   "input", step->step_slug);
	else
		message = psprintf("step \"%s\" returned %s %s, but map step "
						   "\"%s\" expected an array",
						   step->source_step,
						   step->source_type ? "a JSON" : "SQL",
						   step->source_type ? step->source_type : "NULL",
						   step->step_slug);

	values[0] = run_id;
	values[1] = CStringGetTextDatum(step->step_slug);
	values[2] = CStringGetTextDatum(message);
	qf_exec(qf_prepare(&fail_run_plan, fail_run_sql, 3, argtypes),
			values, NULL, SPI_OK_SELECT);
}

/*
 * qf_complete_empty_map
 *		A map step over [] has nothing to do: complete it with [] and tell
 *		its dependents and its run.
 */
static void
qf_complete_empty_map(Datum run_id, const char *workflow_slug,
					  QfReadyStep *step, TimestampTz now)
{
	Oid			argtypes[3] = {UUIDOID, TEXTOID, TIMESTAMPTZOID};
	Datum		values[3];

	values[0] = run_id;
	values[1] = CStringGetTextDatum(step->step_slug);
	values[2] = TimestampTzGetDatum(now);
	qf_exec(qf_prepare(&complete_empty_plan, complete_empty_sql, 3,
					   argtypes),
			values, NULL, SPI_OK_UPDATE);
	qf_step_completed(run_id, step->step_slug, workflow_slug, now);
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
	QfReadyStep *steps;
	int			nsteps;

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

	nsteps = qf_claim_ready_steps(run_id, now, &steps);
	return qf_start_steps(run_id, workflow_slug, run_input, now,
						  steps, nsteps);
}

/*
 * qf_start_steps
 *		Create the tasks of steps just moved to 'started', and keep
 *		starting ready steps for as long as an empty map step completes
 *		and so frees others.  run_input may be (Datum) 0 when the caller
 *		did not read it; it is read if a root map step needs it.  The
 *		caller holds the run lock.  Returns the number of tasks created.
 */
int64
qf_start_steps(Datum run_id, const char *workflow_slug, Datum run_input,
			   TimestampTz now, QfReadyStep *steps, int nsteps)
{
	int64		created = 0;

	while (nsteps > 0)
	{
		int			i;
		bool		cascaded = false;

		for (i = 0; i < nsteps; i++)
		{
			QfReadyStep *step = &steps[i];
			Datum		source = (Datum) 0;

			if (step->is_map)
			{
				if (step->deps_count == 0 && run_input == (Datum) 0)
					run_input = qf_read_run_input(run_id);
				source = qf_map_source(run_id, workflow_slug, step,
									   run_input);

				/* A map step whose input is not an array fails the run. */
				if (step->ntasks < 0)
				{
					qf_fail_type_violation(run_id, step);
					return created;
				}

				qf_insert_map_tasks(run_id, workflow_slug, step, now,
									source);

				/* Over [] it completes now and may free its dependents. */
				if (step->ntasks == 0)
				{
					qf_complete_empty_map(run_id, workflow_slug, step, now);
					cascaded = true;
				}
			}
			else
				qf_insert_single_task(run_id, workflow_slug, step, now);
			created += step->ntasks;
		}

		if (!cascaded)
			break;
		nsteps = qf_claim_ready_steps(run_id, now, &steps);
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
