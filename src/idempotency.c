/*-------------------------------------------------------------------------
 *
 * idempotency.c
 *		The idempotency key of a task.
 *
 * Every task carries a key that is the same for every attempt and every
 * redelivery of that task, and that differs between any two tasks: the
 * lower-case hexadecimal MD5 of
 *
 *		workflow_slug::step_slug::run_id::task_index
 *
 * with run_id in its canonical text form.  The value is byte for byte what
 * md5(format('%s::%s::%s::%s', ...)) returns, so that any client can
 * recompute it.  Workers hand it to the outside systems they call, which
 * turns at-least-once delivery into exactly-once effects.
 *
 * The file also owns the trigger that fills a missing key when a task row
 * is inserted without one; a key given explicitly is kept.
 *
 * Copyright (c) 2026, the quantum_flow authors
 *
 * IDENTIFICATION
 *		src/idempotency.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "commands/trigger.h"
#include "common/md5.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/rel.h"

#include "quantum_flow.h"

PG_FUNCTION_INFO_V1(qf_compute_idempotency_key);
PG_FUNCTION_INFO_V1(qf_fill_idempotency_key);

/*
 * qf_append_uuid
 *		Append the canonical text form of a UUID, as uuid_out writes it.
 */
static void
qf_append_uuid(StringInfo buf, const pg_uuid_t *uuid)
{
	static const char hex[] = "0123456789abcdef";
	int			i;

	for (i = 0; i < UUID_LEN; i++)
	{
		if (i == 4 || i == 6 || i == 8 || i == 10)
			appendStringInfoChar(buf, '-');
		appendStringInfoChar(buf, hex[uuid->data[i] >> 4]);
		appendStringInfoChar(buf, hex[uuid->data[i] & 0x0F]);
	}
}

/*
 * qf_compute_key
 *		Write the key of one task into key, which must have room for
 *		QF_KEY_LEN + 1 bytes.
 */
void
qf_compute_key(const char *workflow_slug, const char *step_slug,
			   const pg_uuid_t *run_id, int32 task_index, char *key)
{
	StringInfoData buf;
	const char *errstr = NULL;

	/* Build workflow::step::run::index. */
	initStringInfo(&buf);
	appendStringInfoString(&buf, workflow_slug);
	appendStringInfoString(&buf, "::");
	appendStringInfoString(&buf, step_slug);
	appendStringInfoString(&buf, "::");
	qf_append_uuid(&buf, run_id);
	appendStringInfo(&buf, "::%d", task_index);

	/* Hash it. */
	if (!pg_md5_hash(buf.data, buf.len, key, &errstr))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not compute MD5 hash: %s", errstr)));
	pfree(buf.data);
}

/*
 * compute_idempotency_key(workflow_slug text, step_slug text, run_id uuid,
 *						   task_index integer) RETURNS varchar(64)
 *		SQL entry point; declared STRICT, so no argument is NULL here.
 */
Datum
qf_compute_idempotency_key(PG_FUNCTION_ARGS)
{
	char	   *workflow_slug = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *step_slug = text_to_cstring(PG_GETARG_TEXT_PP(1));
	pg_uuid_t  *run_id = PG_GETARG_UUID_P(2);
	int32		task_index = PG_GETARG_INT32(3);
	char		key[QF_KEY_LEN + 1];

	qf_compute_key(workflow_slug, step_slug, run_id, task_index, key);
	PG_RETURN_TEXT_P(cstring_to_text_with_len(key, QF_KEY_LEN));
}

/*
 * qf_fill_idempotency_key
 *		BEFORE INSERT row trigger on workflow_step_tasks: give a row
 *		inserted without an idempotency key the computed one.  A row that
 *		lacks one of the key's inputs is left alone, for the table's NOT
 *		NULL constraints to reject.
 */
Datum
qf_fill_idempotency_key(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	tupdesc;
	HeapTuple	tuple;
	int			attnums[5];
	Datum		values[4];
	bool		isnull[4];
	char		key[QF_KEY_LEN + 1];
	Datum		newval;
	bool		newnull = false;
	int			keyattnum;
	int			i;
	static const char *const names[] = {
		"workflow_slug", "step_slug", "run_id", "task_index",
		"idempotency_key"
	};

	/* Check how we were called. */
	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function \"%s\" must be fired BEFORE INSERT FOR EACH ROW",
						"fill_idempotency_key")));

	tupdesc = RelationGetDescr(trigdata->tg_relation);
	tuple = trigdata->tg_trigtuple;

	/* Find the columns by name; the table may gain columns over time. */
	for (i = 0; i < 5; i++)
	{
		attnums[i] = SPI_fnumber(tupdesc, names[i]);
		if (attnums[i] <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" does not exist in relation \"%s\"",
							names[i],
							RelationGetRelationName(trigdata->tg_relation))));
	}
	keyattnum = attnums[4];

	/* An explicit key is kept as it is. */
	(void) heap_getattr(tuple, keyattnum, tupdesc, &isnull[0]);
	if (!isnull[0])
		return PointerGetDatum(tuple);

	/* Read the inputs; with any of them missing there is no key to make. */
	for (i = 0; i < 4; i++)
	{
		values[i] = heap_getattr(tuple, attnums[i], tupdesc, &isnull[i]);
		if (isnull[i])
			return PointerGetDatum(tuple);
	}

	qf_compute_key(TextDatumGetCString(values[0]),
				   TextDatumGetCString(values[1]),
				   DatumGetUUIDP(values[2]),
				   DatumGetInt32(values[3]),
				   key);
	newval = PointerGetDatum(cstring_to_text_with_len(key, QF_KEY_LEN));

	return PointerGetDatum(heap_modify_tuple_by_cols(tuple, tupdesc, 1,
													 &keyattnum, &newval,
													 &newnull));
}
