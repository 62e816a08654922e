/*-------------------------------------------------------------------------
 *
 * quantum_flow.h
 *		Declarations shared by the modules of the quantum_flow extension.
 *
 * Each module owns one concern: clock.c the deterministic clock,
 * idempotency.c the task idempotency key, scheduler.c the creation of
 * tasks for ready steps.  This header lists what one module offers the
 * others; SQL-callable entry points are declared next to their code.
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

/* scheduler.c */
extern void qf_scheduler_init(void);
extern void qf_notify_workflow(const char *workflow_slug);

#endif							/* QUANTUM_FLOW_H */
