/*-------------------------------------------------------------------------
 *
 * quantum_flow.h
 *		Declarations shared by the modules of the quantum_flow extension.
 *
 * Each module owns one concern: clock.c the deterministic clock,
 * idempotency.c the task idempotency key, scheduler.c the creation of
 * tasks for ready steps, queue.c the completion of tasks and steps.  This
 * header lists what one module offers the others; SQL-callable entry
 * points are declared next to their code.
 *
 * Copyright (c) 2026, the quantum_flow authors
 *
 * IDENTIFICATION
 *		src/quantum_flow.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef QUANTUM_FLOW_H
#define QUANTUM_FLOW_H

#include "postgres.h"

#include "executor/spi.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

/* Length of an idempotency key: an MD5 digest in hexadecimal. */
#define QF_KEY_LEN 32

/* clock.c */
extern void qf_clock_init(void);
extern TimestampTz qf_clock_now(void);

/* idempotency.c */
extern void qf_compute_key(const char *workflow_slug, const char *step_slug,
						   const pg_uuid_t *run_id, int32 task_index,
						   char *key);

/* A step taken from 'created' to 'started' by one round. */
typedef struct QfReadyStep
{
	char	   *step_slug;
	bool		is_map;
	int32		step_index;
	int32		start_delay;
	int32		deps_count;
	int32		max_attempts;
	int32		ntasks;			/* tasks to create; -1: input not an array */
	char	   *source_step;	/* the step a dependent map maps over */
	char	   *source_type;	/* JSON type of the map input */
} QfReadyStep;

/* scheduler.c; the callers of these are connected to SPI */
extern void qf_scheduler_init(void);
extern SPIPlanPtr qf_prepare(SPIPlanPtr *plan, const char *sql, int nargs,
							 Oid *argtypes);
extern void qf_exec(SPIPlanPtr plan, Datum *values, const char *nulls,
					int expected);
extern int	qf_read_steps(QfReadyStep **steps);
extern int64 qf_start_steps(Datum run_id, const char *workflow_slug,
							Datum run_input, TimestampTz now,
							QfReadyStep *steps, int nsteps);

/* queue.c; the callers of these are connected to SPI and hold the run lock */
extern void qf_step_completed(Datum run_id, const char *step_slug,
							  const char *workflow_slug, TimestampTz now);
extern void qf_count_off_tasks(Datum run_id, Datum step_slug, int32 ntasks,
							   TimestampTz now);
extern void qf_notify_workflow(const char *workflow_slug);

#endif							/* QUANTUM_FLOW_H */
