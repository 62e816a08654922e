/*-------------------------------------------------------------------------
 *
 * quantum_flow.c
 *		Module entry point of the quantum_flow extension.
 *
 * This file only declares the module and lets each subsystem register
 * its configuration parameters when the library is loaded.  The work
 * itself lives in clock.c, idempotency.c and scheduler.c.
 *
 * Copyright (c) 2026, the quantum_flow authors
 *
 * IDENTIFICATION
 *		src/quantum_flow.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/guc.h"

#include "quantum_flow.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/*
 * _PG_init
 *		Register the GUCs of every subsystem, then reserve the prefix so
 *		that a misspelt quantum_flow.* setting is an error, not a silent
 *		placeholder.
 */
void
_PG_init(void)
{
	qf_clock_init();
	qf_scheduler_init();

	MarkGUCPrefixReserved("quantum_flow");
}
