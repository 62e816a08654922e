/*-------------------------------------------------------------------------
 *
 * clock.c
 *		The deterministic clock of quantum_flow.
 *
 * Every timestamp the engine writes, every lease, retry delay, start
 * delay and timeout is read from quantum_flow.now().  By default that is
 * the start time of the current transaction, like pg_catalog.now().  When
 * the GUC quantum_flow.clock_override holds a timestamp, the clock is
 * frozen at that instant, so that a test can move time forward with
 * advance_clock() instead of sleeping.
 *
 * The override is an ordinary GUC: SET LOCAL scopes it to a transaction,
 * and a rolled back transaction restores the previous value.  It is
 * PGC_SUSET so that a worker role cannot move its own clock unless it has
 * been granted SET on the parameter.  The check hook parses the literal
 * once, so reading the frozen clock costs no parsing.
 *
 * Copyright (c) 2026, the quantum_flow authors
 *
 * IDENTIFICATION
 *		src/clock.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

#include "access/xact.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "quantum_flow.h"

#define QF_CLOCK_GUC "quantum_flow.clock_override"

/*
 * Parsed form of the override, kept as the GUC's "extra" so that it is
 * saved and restored together with the string on ROLLBACK and SET LOCAL.
 */
typedef struct QfClockState
{
	bool		frozen;			/* is an override in force? */
	TimestampTz at;				/* the frozen instant, if so */
} QfClockState;

static char *qf_clock_override = NULL;
static QfClockState qf_clock_state = {false, 0};

static bool qf_clock_check(char **newval, void **extra, GucSource source);
static void qf_clock_assign(const char *newval, void *extra);
static bool qf_parse_instant(const char *text, TimestampTz *result,
							 const char **detail);
static void qf_clock_store(TimestampTz at);

PG_FUNCTION_INFO_V1(qf_now);
PG_FUNCTION_INFO_V1(qf_set_clock);
PG_FUNCTION_INFO_V1(qf_advance_clock);
PG_FUNCTION_INFO_V1(qf_reset_clock);

/*
 * qf_clock_init
 *		Define quantum_flow.clock_override.  Called from _PG_init.
 */
void
qf_clock_init(void)
{
	DefineCustomStringVariable(QF_CLOCK_GUC,
							   gettext_noop("Freezes quantum_flow.now() at "
											"the given timestamp."),
							   gettext_noop("Empty means real time.  Used by "
											"tests to control leases, "
											"retries and delays."),
							   &qf_clock_override,
							   "",
							   PGC_SUSET,
							   0,
							   qf_clock_check,
							   qf_clock_assign,
							   NULL);
}

/*
 * qf_clock_now
 *		The current time as the engine sees it: the override when one is
 *		set, else the start of the current transaction.
 */
TimestampTz
qf_clock_now(void)
{
	if (qf_clock_state.frozen)
		return qf_clock_state.at;
	return GetCurrentTransactionStartTimestamp();
}

/*
 * qf_parse_instant
 *		Parse a timestamptz literal without throwing, as a GUC check hook
 *		must.  Only absolute, finite instants are accepted: words such as
 *		"now" or "today" would mean a different time in every process that
 *		re-reads the setting, and an infinite clock cannot be advanced.
 *		On failure *detail says why.
 */
static bool
qf_parse_instant(const char *text, TimestampTz *result, const char **detail)
{
	char		workbuf[MAXDATELEN + MAXDATEFIELDS];
	char	   *field[MAXDATEFIELDS];
	int			ftype[MAXDATEFIELDS];
	int			nf;
	int			dtype;
	int			tz;
	struct pg_tm tt;
	fsec_t		fsec;
	Timestamp	ts;
	char		lower[MAXDATELEN + 1];
	int			i;

	/* Reject relative words, whose meaning changes with the time read. */
	for (i = 0; text[i] != '\0' && i < MAXDATELEN; i++)
		lower[i] = pg_tolower((unsigned char) text[i]);
	lower[i] = '\0';
	if (strstr(lower, "now") || strstr(lower, "today") ||
		strstr(lower, "tomorrow") || strstr(lower, "yesterday"))
	{
		*detail = "The clock override must be an absolute timestamp, "
			"not a word relative to the current time.";
		return false;
	}

	/* Split the literal into fields and decode them. */
	if (ParseDateTime(text, workbuf, sizeof(workbuf), field, ftype,
					  MAXDATEFIELDS, &nf) != 0 ||
		DecodeDateTime(field, ftype, nf, &dtype, &tt, &fsec, &tz) != 0)
	{
		*detail = "The value is not a valid timestamp with time zone.";
		return false;
	}
	if (dtype != DTK_DATE)
	{
		*detail = "The clock override must be a finite timestamp.";
		return false;
	}

	/* DecodeDateTime applied the session's time zone if none was given. */
	if (tm2timestamp(&tt, fsec, &tz, &ts) != 0 || !IS_VALID_TIMESTAMP(ts))
	{
		*detail = "The timestamp is out of range.";
		return false;
	}
	*result = (TimestampTz) ts;
	return true;
}

/*
 * qf_clock_check
 *		GUC check hook: parse the literal and hand the result to the
 *		assign hook through *extra.
 */
static bool
qf_clock_check(char **newval, void **extra, GucSource source)
{
	QfClockState *state;
	const char *detail = NULL;
	TimestampTz at = 0;
	bool		frozen = false;

	/* An empty string, or only blanks, means real time. */
	if (*newval != NULL)
	{
		const char *p = *newval;

		while (*p && isspace((unsigned char) *p))
			p++;
		if (*p != '\0')
		{
			if (!qf_parse_instant(*newval, &at, &detail))
			{
				GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
				GUC_check_errdetail("%s", detail);
				GUC_check_errhint("Use a literal such as "
								  "'2025-01-01 00:00:00+00', or an empty "
								  "string for real time.");
				return false;
			}
			frozen = true;
		}
	}

	/* GUC "extra" data is released with free(), so use malloc(). */
	state = (QfClockState *) malloc(sizeof(QfClockState));
	if (state == NULL)
	{
		GUC_check_errcode(ERRCODE_OUT_OF_MEMORY);
		return false;
	}
	state->frozen = frozen;
	state->at = at;
	*extra = state;
	return true;
}

/*
 * qf_clock_assign
 *		GUC assign hook: install the parsed state.
 */
static void
qf_clock_assign(const char *newval, void *extra)
{
	if (extra == NULL)
	{
		qf_clock_state.frozen = false;
		return;
	}
	qf_clock_state = *(QfClockState *) extra;
}

/*
 * qf_clock_store
 *		Set the override for the session, as SET would: the change is
 *		transactional, and a role without SET privilege on the parameter
 *		gets PostgreSQL's own permission error.
 */
static void
qf_clock_store(TimestampTz at)
{
	char		buf[MAXDATELEN + 1];
	struct pg_tm tt;
	fsec_t		fsec;

	/* Spell the instant in UTC so that DateStyle and TimeZone never matter. */
	if (timestamp2tm(at, NULL, &tt, &fsec, NULL, NULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	tt.tm_isdst = 0;			/* else EncodeDateTime omits the offset */
	EncodeDateTime(&tt, fsec, true, 0, NULL, USE_ISO_DATES, buf);

	(void) set_config_option(QF_CLOCK_GUC, buf,
							 superuser() ? PGC_SUSET : PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SET, true, 0, false);
}

/*
 * now() RETURNS timestamptz
 */
Datum
qf_now(PG_FUNCTION_ARGS)
{
	PG_RETURN_TIMESTAMPTZ(qf_clock_now());
}

/*
 * set_clock(at timestamptz) RETURNS timestamptz
 *		Freeze the clock at the given instant and return it.
 */
Datum
qf_set_clock(PG_FUNCTION_ARGS)
{
	TimestampTz at;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("clock time must not be null")));
	at = PG_GETARG_TIMESTAMPTZ(0);

	if (TIMESTAMP_NOT_FINITE(at))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("clock time must be finite")));

	qf_clock_store(at);
	PG_RETURN_TIMESTAMPTZ(qf_clock_now());
}

/*
 * advance_clock(by interval) RETURNS timestamptz
 *		Move a frozen clock forward and return the new time.
 */
Datum
qf_advance_clock(PG_FUNCTION_ARGS)
{
	TimestampTz before;
	TimestampTz after;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("clock advance must not be null")));

	/* Only a frozen clock can be moved. */
	if (!qf_clock_state.frozen)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the quantum_flow clock is not frozen"),
				 errhint("Call quantum_flow.set_clock() first.")));

	/* Add the interval the way timestamptz + interval does. */
	before = qf_clock_state.at;
	after = DatumGetTimestampTz(
		DirectFunctionCall2(timestamptz_pl_interval,
							TimestampTzGetDatum(before),
							PG_GETARG_DATUM(0)));

	/* Time never runs backwards. */
	if (after < before)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("clock advance must not be negative"),
				 errdetail("The interval %s would move the clock back.",
						   DatumGetCString(
							   DirectFunctionCall1(interval_out,
												   PG_GETARG_DATUM(0))))));
	if (TIMESTAMP_NOT_FINITE(after))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));

	qf_clock_store(after);
	PG_RETURN_TIMESTAMPTZ(qf_clock_now());
}

/*
 * reset_clock() RETURNS void
 *		Return to real time.
 */
Datum
qf_reset_clock(PG_FUNCTION_ARGS)
{
	(void) set_config_option(QF_CLOCK_GUC, "",
							 superuser() ? PGC_SUSET : PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SET, true, 0, false);
	PG_RETURN_VOID();
}
