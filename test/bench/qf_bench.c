/*-------------------------------------------------------------------------
 *
 * qf_bench.c
 *		Benchmark driver of quantum_flow, with the baselines it is judged
 *		against.
 *
 * One program runs both sides of every comparison, so that quantum_flow
 * and its baseline share the client code, the connection settings, the
 * worker count and the server.  It has two modes:
 *
 *   qf_bench run WORKLOAD [options]
 *		Runs one workload once against the database that the libpq
 *		environment (PGHOST, PGDATABASE, ...) names, checks that every
 *		task was done exactly once, and prints its figures as lines
 *		"RESULT key value".  A failed check prints FAILED and exits 1.
 *
 *   qf_bench report SAMPLES JSON
 *		Reads the RESULT lines of many runs (and "setting name value"
 *		lines), prints one table of medians with baselines, ratios and
 *		targets, and writes the same as JSON.
 *
 * Workloads:
 *	 chain3, chain3-batch	quantum_flow: three single steps a -> b -> c;
 *							complete_task per task, or complete_tasks per
 *							polled batch
 *	 rawqueue, rawqueue-batch
 *							the same chain on a bare job table claimed with
 *							FOR UPDATE SKIP LOCKED; completing a job inserts
 *							the next one, per job or per batch
 *	 fanout					one run of a root map step over N elements:
 *							start_run, then processing by 4 workers
 *	 fanout-bare			the same N task rows inserted by one INSERT ...
 *							SELECT generate_series into a copy of the task
 *							table with the same indexes, then processed by
 *							bare UPDATE statements
 *	 history-empty			poll + complete latency of one worker, with no
 *							finished runs in the tables
 *	 history-full			the same with finished runs of the workflow
 *							added first (-H, 1,000,000)
 *
 * Every hot statement is prepared, and each worker thread has its own
 * connection.  Peak backend memory is sampled from /proc/<pid>/status of
 * the backend that creates the fanout tasks (RssAnon: its private memory;
 * VmHWM also counts the shared buffers it touched), so the driver must
 * run on the database server's machine.
 *
 * Copyright (c) 2026, the quantum_flow authors
 *
 * IDENTIFICATION
 *		test/bench/qf_bench.c
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "libpq-fe.h"

/* Task output that every worker reports; small, like most real outputs. */
#define TASK_OUTPUT "{\"ok\": true}"

/* Run id of the single run of the fanout-bare workload. */
#define BARE_RUN_ID "00000000-0000-4000-8000-000000000001"

/* How long the workers may go without completing anything. */
#define STALL_SECONDS 120

/* Options of the run mode, with their defaults. */
typedef struct BenchOptions
{
	int			workers;		/* worker threads (-w) */
	int			runs;			/* runs to start (-r) */
	int			batch;			/* poll batch size (-b) */
	int			fanout_tasks;	/* elements of the fanout run (-n) */
	int			cycles;			/* history: poll+complete cycles (-c) */
	long		history;		/* history: finished runs to add (-H) */
	bool		star;			/* fanout: SELECT * from poll_tasks (-S) */
} BenchOptions;

static BenchOptions opts = {1, 3000, 10, 100000, 5000, 1000000, false};

/* How a worker claims and completes work. */
typedef enum QueueKind
{
	KIND_QF_TASK,				/* poll_tasks, complete_task per task */
	KIND_QF_BATCH,				/* poll_tasks, complete_tasks per batch */
	KIND_RAW_TASK,				/* bench_jobs, one statement per job */
	KIND_RAW_BATCH,				/* bench_jobs, one statement per batch */
	KIND_BARE_BATCH				/* bench_fanout_tasks, per batch */
} QueueKind;

/* What the worker threads of one workload share. */
typedef struct WorkShared
{
	QueueKind	kind;
	const char *slug;			/* workflow slug, for quantum_flow */
	int			batch;			/* poll batch size */
	bool		star;			/* SELECT * from poll_tasks */
	long		expected;		/* tasks to complete in all */
	atomic_long completed;		/* tasks whose completion applied */
	atomic_long polled;			/* tasks handed out by polls */
	atomic_llong progress_us;	/* when the last completion applied */
	pthread_barrier_t ready;	/* workers connected and prepared */
} WorkShared;

typedef struct WorkerArg
{
	WorkShared *shared;
	int			id;
	pthread_t	thread;
} WorkerArg;

/* Peak memory of one backend, sampled from /proc while a call runs. */
typedef struct MemSampler
{
	int			pid;
	atomic_int	stop;
	long		peak_anon_kb;	/* largest RssAnon seen: private memory */
	long		peak_rss_kb;	/* largest VmRSS seen */
	pthread_t	thread;
} MemSampler;

/* A growable string, for array literals and JSON. */
typedef struct StrBuf
{
	char	   *data;
	size_t		len;
	size_t		cap;
} StrBuf;

/* ------------------------------------------------------------------------
 * Statements
 * ------------------------------------------------------------------------ */

static const char *const qf_chain3_definition =
"{\"steps\": [{\"slug\": \"a\"},"
"            {\"slug\": \"b\", \"depends_on\": [\"a\"]},"
"            {\"slug\": \"c\", \"depends_on\": [\"b\"]}]}";

static const char *const qf_start_sql =
"SELECT run_id FROM quantum_flow.start_run($1, $2::jsonb)";

static const char *const qf_start_all_sql =
"SELECT count(quantum_flow.start_run('chain3', jsonb_build_object('run', g)))"
"  FROM generate_series(0, $1::integer - 1) AS g";

static const char *const qf_poll_sql =
"SELECT * FROM quantum_flow.poll_tasks($1, $2, $3::integer)";

/*
 * The columns a map task's worker needs.  Not run_input: for a root map
 * step that is the whole array, which SELECT * would send with every task.
 */
static const char *const qf_poll_columns_sql =
"SELECT run_id, step_slug, task_index, attempt, idempotency_key, input"
"  FROM quantum_flow.poll_tasks($1, $2, $3::integer)";

static const char *const qf_complete_sql =
"SELECT status FROM quantum_flow.complete_task($1::uuid, $2, $3::integer,"
"                                              $4::jsonb, $5::integer)";

static const char *const qf_complete_batch_sql =
"SELECT quantum_flow.complete_tasks($1::uuid[], $2::text[], $3::integer[],"
"                                   $4::jsonb[], $5::integer[])";

/*
 * The raw queue: one row per job and nothing else.  Completing a job of
 * step 1 or 2 inserts the job of the next step, carrying the output as
 * its input; that is the least a 3-step chain can write.
 */
static const char *const raw_setup_sql =
"DROP TABLE IF EXISTS bench_jobs;"
"CREATE TABLE bench_jobs ("
"    id           bigserial PRIMARY KEY,"
"    run_id       bigint NOT NULL,"
"    step         integer NOT NULL,"
"    status       text NOT NULL DEFAULT 'queued',"
"    attempts     integer NOT NULL DEFAULT 0,"
"    worker_id    text,"
"    input        jsonb,"
"    output       jsonb,"
"    queued_at    timestamptz NOT NULL DEFAULT now(),"
"    started_at   timestamptz,"
"    completed_at timestamptz);"
"CREATE INDEX bench_jobs_queued_idx ON bench_jobs (id)"
"    WHERE status = 'queued';";

static const char *const raw_start_sql =
"INSERT INTO bench_jobs (run_id, step, input) VALUES ($1::bigint, 1, $2)";

static const char *const raw_start_all_sql =
"INSERT INTO bench_jobs (run_id, step, input)"
"SELECT g, 1, jsonb_build_object('run', g)"
"  FROM generate_series(0, $1::integer - 1) AS g";

static const char *const raw_poll_sql =
"UPDATE bench_jobs AS j"
"   SET status = 'started', attempts = j.attempts + 1,"
"       worker_id = $1, started_at = now()"
" WHERE j.id IN (SELECT q.id FROM bench_jobs AS q"
"                 WHERE q.status = 'queued'"
"                 ORDER BY q.id"
"                 LIMIT $2::integer"
"                   FOR UPDATE SKIP LOCKED)"
" RETURNING j.id, j.attempts, j.run_id, j.step, j.input";

static const char *const raw_complete_sql =
"WITH done AS ("
"    UPDATE bench_jobs AS j"
"       SET status = 'done', output = $2::jsonb, completed_at = now()"
"     WHERE j.id = $1::bigint AND j.status = 'started'"
"    RETURNING j.run_id, j.step, j.output"
"), next AS ("
"    INSERT INTO bench_jobs (run_id, step, input)"
"    SELECT d.run_id, d.step + 1,"
"           jsonb_build_object('step' || d.step, d.output)"
"      FROM done AS d WHERE d.step < 3"
")"
"SELECT count(*) FROM done";

static const char *const raw_complete_batch_sql =
"WITH done AS ("
"    UPDATE bench_jobs AS j"
"       SET status = 'done', output = b.output, completed_at = now()"
"      FROM unnest($1::bigint[], $2::jsonb[]) AS b(id, output)"
"     WHERE j.id = b.id AND j.status = 'started'"
"    RETURNING j.run_id, j.step, j.output"
"), next AS ("
"    INSERT INTO bench_jobs (run_id, step, input)"
"    SELECT d.run_id, d.step + 1,"
"           jsonb_build_object('step' || d.step, d.output)"
"      FROM done AS d WHERE d.step < 3"
")"
"SELECT count(*) FROM done";

/* fanout: one root map step. */
static const char *const qf_fanout_definition =
"{\"steps\": [{\"slug\": \"items\", \"type\": \"map\"}]}";

/*
 * fanout-bare: a copy of the task table with the same columns, indexes
 * and fillfactor, but none of the engine's triggers or foreign keys.
 */
static const char *const bare_setup_sql =
"DROP TABLE IF EXISTS bench_fanout_tasks;"
"CREATE TABLE bench_fanout_tasks"
"    (LIKE quantum_flow.workflow_step_tasks INCLUDING INDEXES)"
"    WITH (fillfactor = 80);";

/* The same rows start_run creates: key, status, times, one input each. */
static const char *const bare_insert_sql =
"INSERT INTO bench_fanout_tasks"
"       (run_id, step_slug, task_index, workflow_slug, idempotency_key,"
"        status, attempts_count, max_attempts, visible_at, queued_at,"
"        input)"
"SELECT $1::uuid, 'items', g, 'fanout',"
"       quantum_flow.compute_idempotency_key('fanout', 'items',"
"                                            $1::uuid, g),"
"       'queued', 0, 3, now(), now(), jsonb_build_object('i', g)"
"  FROM generate_series(0, $2::integer - 1) AS g";

/* Claim like poll_tasks does, without steps, runs or expired leases. */
static const char *const bare_poll_sql =
"UPDATE bench_fanout_tasks AS t"
"   SET status = 'started', attempts_count = t.attempts_count + 1,"
"       started_at = now(), worker_id = $1,"
"       visible_at = now() + interval '60 seconds'"
"  FROM (SELECT q.run_id, q.step_slug, q.task_index"
"          FROM bench_fanout_tasks AS q"
"         WHERE q.workflow_slug = 'fanout'"
"           AND q.status IN ('queued', 'started')"
"           AND q.visible_at <= now()"
"           AND q.attempts_count < q.max_attempts"
"         ORDER BY q.visible_at"
"         LIMIT $2::integer"
"           FOR UPDATE SKIP LOCKED) AS c"
" WHERE t.run_id = c.run_id AND t.step_slug = c.step_slug"
"   AND t.task_index = c.task_index"
" RETURNING t.run_id, t.step_slug, t.task_index, t.attempts_count,"
"           t.idempotency_key, t.input";

static const char *const bare_complete_batch_sql =
"WITH done AS ("
"    UPDATE bench_fanout_tasks AS t"
"       SET status = 'completed', completed_at = now(), output = b.output"
"      FROM unnest($1::uuid[], $2::text[], $3::integer[], $4::jsonb[],"
"                  $5::integer[])"
"           AS b(run_id, step_slug, task_index, output, attempt)"
"     WHERE t.run_id = b.run_id AND t.step_slug = b.step_slug"
"       AND t.task_index = b.task_index AND t.status = 'started'"
"       AND t.attempts_count = b.attempt"
"    RETURNING 1"
")"
"SELECT count(*) FROM done";

/* history: one single step. */
static const char *const qf_history_definition =
"{\"steps\": [{\"slug\": \"only\"}]}";

static const char *const history_prestart_sql =
"SELECT count(quantum_flow.start_run('history',"
"                                    jsonb_build_object('i', g)))"
"  FROM generate_series(1, $1::integer) AS g";

static const char *const history_poll_sql =
"SELECT * FROM quantum_flow.poll_tasks('history', 'w0', 1)";

/*
 * Finished runs of the same workflow, each with its completed step and
 * task, as the engine leaves them.  Run ids ascend with the row number,
 * so that the three statements agree and the primary keys are built in
 * order (random ids triple the time of this step, and change neither the
 * depth of the indexes nor the measured latencies); the idempotency keys
 * are the real ones, hence random.  Foreign keys are not checked
 * (session_replication_role): the rows are consistent by construction.
 */
#define HISTORY_RUN_ID \
"('00000000-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid"
#define HISTORY_AT(n) \
"now() - interval '30 days' + (g + " #n ") * interval '1 second'"

static const char *const history_insert_sql =
"SET session_replication_role = replica;"
"INSERT INTO quantum_flow.workflow_runs"
"       (run_id, workflow_slug, status, input, output, remaining_steps,"
"        started_at, completed_at)"
"SELECT " HISTORY_RUN_ID ", 'history', 'completed',"
"       jsonb_build_object('i', g), '{\"only\": {\"ok\": true}}', 0,"
"       " HISTORY_AT(0) ", " HISTORY_AT(1)
"  FROM generate_series(1, %ld) AS g;"
"INSERT INTO quantum_flow.workflow_step_states"
"       (run_id, step_slug, workflow_slug, status, remaining_deps,"
"        initial_tasks, remaining_tasks, output, created_at, started_at,"
"        completed_at)"
"SELECT " HISTORY_RUN_ID ", 'only', 'history', 'completed', 0, 1, 0,"
"       '{\"ok\": true}', " HISTORY_AT(0) ", " HISTORY_AT(0) ","
"       " HISTORY_AT(1)
"  FROM generate_series(1, %ld) AS g;"
"INSERT INTO quantum_flow.workflow_step_tasks"
"       (run_id, step_slug, task_index, workflow_slug, idempotency_key,"
"        status, attempts_count, max_attempts, visible_at, worker_id,"
"        output, queued_at, started_at, completed_at)"
"SELECT " HISTORY_RUN_ID ", 'only', 0, 'history',"
"       quantum_flow.compute_idempotency_key('history', 'only',"
"                                            " HISTORY_RUN_ID ", 0),"
"       'completed', 1, 3, " HISTORY_AT(61) ", 'w0', '{\"ok\": true}',"
"       " HISTORY_AT(0) ", " HISTORY_AT(0) ", " HISTORY_AT(1)
"  FROM generate_series(1, %ld) AS g;"
"RESET session_replication_role;";

static const char *const history_vacuum_sql =
"VACUUM ANALYZE quantum_flow.workflow_runs,"
"               quantum_flow.workflow_step_states,"
"               quantum_flow.workflow_step_tasks";

/* ------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------ */

/*
 * fail
 *		Report a failed check or error and end the process.  Called from
 *		worker threads too: the whole benchmark stops at the first failure.
 */
static void
fail(const char *fmt,...)
{
	va_list		ap;

	fprintf(stdout, "FAILED: ");
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
	exit(1);
}

/* Seconds on the monotonic clock. */
static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
sb_init(StrBuf *sb)
{
	sb->cap = 1024;
	sb->len = 0;
	sb->data = malloc(sb->cap);
	if (sb->data == NULL)
		fail("out of memory");
	sb->data[0] = '\0';
}

static void
sb_reset(StrBuf *sb)
{
	sb->len = 0;
	sb->data[0] = '\0';
}

static void
sb_reserve(StrBuf *sb, size_t more)
{
	if (sb->len + more + 1 <= sb->cap)
		return;
	while (sb->len + more + 1 > sb->cap)
		sb->cap *= 2;
	sb->data = realloc(sb->data, sb->cap);
	if (sb->data == NULL)
		fail("out of memory");
}

static void
sb_append(StrBuf *sb, const char *s)
{
	size_t		n = strlen(s);

	sb_reserve(sb, n);
	memcpy(sb->data + sb->len, s, n + 1);
	sb->len += n;
}

static void
sb_appendf(StrBuf *sb, const char *fmt,...)
{
	va_list		ap;
	int			n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		fail("vsnprintf failed");
	sb_reserve(sb, (size_t) n);
	va_start(ap, fmt);
	vsnprintf(sb->data + sb->len, (size_t) n + 1, fmt, ap);
	va_end(ap);
	sb->len += (size_t) n;
}

/* Append s as a double-quoted element of an array literal. */
static void
sb_append_element(StrBuf *sb, const char *s)
{
	sb_reserve(sb, 2 * strlen(s) + 2);
	sb->data[sb->len++] = '"';
	for (; *s; s++)
	{
		if (*s == '"' || *s == '\\')
			sb->data[sb->len++] = '\\';
		sb->data[sb->len++] = *s;
	}
	sb->data[sb->len++] = '"';
	sb->data[sb->len] = '\0';
}

/* ------------------------------------------------------------------------
 * libpq wrappers: every error ends the run
 * ------------------------------------------------------------------------ */

/* Connect with the libpq environment (PGHOST, PGPORT, PGDATABASE...). */
static PGconn *
db_connect(const char *application_name)
{
	const char *keys[] = {"application_name", NULL};
	const char *values[] = {application_name, NULL};
	PGconn	   *conn = PQconnectdbParams(keys, values, 0);

	if (PQstatus(conn) != CONNECTION_OK)
		fail("connection failed: %s", PQerrorMessage(conn));
	return conn;
}

/* Check a result; end the run with the server's message on an error. */
static PGresult *
db_check(PGconn *conn, PGresult *res, const char *what)
{
	ExecStatusType status = PQresultStatus(res);

	if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
		fail("%s: %s", what, PQerrorMessage(conn));
	return res;
}

/* Run one or more statements whose result is not needed. */
static void
db_exec(PGconn *conn, const char *sql)
{
	PQclear(db_check(conn, PQexec(conn, sql), sql));
}

/* Run a query that returns one bigint. */
static long long
db_int(PGconn *conn, const char *sql)
{
	PGresult   *res = db_check(conn, PQexec(conn, sql), sql);
	long long	v;

	if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0))
		fail("expected one value from: %s", sql);
	v = atoll(PQgetvalue(res, 0, 0));
	PQclear(res);
	return v;
}

static void
db_prepare(PGconn *conn, const char *name, const char *sql, int nparams)
{
	PQclear(db_check(conn, PQprepare(conn, name, sql, nparams, NULL), sql));
}

static PGresult *
db_run(PGconn *conn, const char *name, int nparams, const char *const *params)
{
	return db_check(conn,
					PQexecPrepared(conn, name, nparams, params, NULL, NULL, 0),
					name);
}

/*
 * expect
 *		A check at the end of a workload: sql must return want.
 */
static void
expect(PGconn *conn, const char *what, const char *sql, long long want)
{
	long long	got = db_int(conn, sql);

	if (got != want)
		fail("%s: expected %lld, got %lld", what, want, got);
	printf("# check ok: %s = %lld\n", what, got);
}

/* ------------------------------------------------------------------------
 * Memory of a backend
 * ------------------------------------------------------------------------ */

/* Read RssAnon, VmRSS and VmHWM, in kB, from /proc/<pid>/status. */
static bool
read_backend_memory(int pid, long *anon_kb, long *rss_kb, long *hwm_kb)
{
	char		path[64];
	char		line[256];
	FILE	   *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "r");
	if (f == NULL)
		return false;
	while (fgets(line, sizeof(line), f))
	{
		if (strncmp(line, "RssAnon:", 8) == 0)
			*anon_kb = atol(line + 8);
		else if (strncmp(line, "VmRSS:", 6) == 0)
			*rss_kb = atol(line + 6);
		else if (strncmp(line, "VmHWM:", 6) == 0)
			*hwm_kb = atol(line + 6);
	}
	fclose(f);
	return true;
}

static void *
sampler_main(void *arg)
{
	MemSampler *s = arg;

	while (!atomic_load(&s->stop))
	{
		long		anon = 0,
					rss = 0,
					hwm = 0;

		if (read_backend_memory(s->pid, &anon, &rss, &hwm))
		{
			if (anon > s->peak_anon_kb)
				s->peak_anon_kb = anon;
			if (rss > s->peak_rss_kb)
				s->peak_rss_kb = rss;
		}
		usleep(2000);
	}
	return NULL;
}

/*
 * sampler_start
 *		Reset the backend's VmHWM (where permitted) and sample its memory
 *		every 2 ms until sampler_stop.
 */
static void
sampler_start(MemSampler *s, int pid)
{
	char		path[64];
	FILE	   *f;

	s->pid = pid;
	s->peak_anon_kb = 0;
	s->peak_rss_kb = 0;
	atomic_store(&s->stop, 0);

	snprintf(path, sizeof(path), "/proc/%d/clear_refs", pid);
	f = fopen(path, "w");
	if (f != NULL)
	{
		fputs("5", f);
		fclose(f);
	}

	if (pthread_create(&s->thread, NULL, sampler_main, s) != 0)
		fail("pthread_create failed");
}

/* Stop sampling; print the peaks and VmHWM under the given key prefix. */
static void
sampler_stop(MemSampler *s, const char *prefix)
{
	long		anon = 0,
				rss = 0,
				hwm = 0;

	atomic_store(&s->stop, 1);
	pthread_join(s->thread, NULL);
	if (!read_backend_memory(s->pid, &anon, &rss, &hwm))
		fail("cannot read /proc/%d/status: is the server on this machine?",
			 s->pid);
	if (anon > s->peak_anon_kb)
		s->peak_anon_kb = anon;

	printf("RESULT %s.peak_anon_mb %.1f\n", prefix, s->peak_anon_kb / 1024.0);
	printf("RESULT %s.peak_rss_mb %.1f\n", prefix, s->peak_rss_kb / 1024.0);
	printf("RESULT %s.vmhwm_mb %.1f\n", prefix, hwm / 1024.0);
}

static int
backend_pid(PGconn *conn)
{
	return (int) db_int(conn, "SELECT pg_backend_pid()");
}

/* ------------------------------------------------------------------------
 * Workers
 * ------------------------------------------------------------------------ */

/* Prepare the poll and complete statements of a kind. */
static void
prepare_worker(PGconn *conn, WorkShared *sh)
{
	const char *poll = sh->star ? qf_poll_sql : qf_poll_columns_sql;

	switch (sh->kind)
	{
		case KIND_QF_TASK:
			db_prepare(conn, "poll", poll, 3);
			db_prepare(conn, "complete", qf_complete_sql, 5);
			break;
		case KIND_QF_BATCH:
			db_prepare(conn, "poll", poll, 3);
			db_prepare(conn, "complete", qf_complete_batch_sql, 5);
			break;
		case KIND_RAW_TASK:
			db_prepare(conn, "poll", raw_poll_sql, 2);
			db_prepare(conn, "complete", raw_complete_sql, 2);
			break;
		case KIND_RAW_BATCH:
			db_prepare(conn, "poll", raw_poll_sql, 2);
			db_prepare(conn, "complete", raw_complete_batch_sql, 2);
			break;
		case KIND_BARE_BATCH:
			db_prepare(conn, "poll", bare_poll_sql, 2);
			db_prepare(conn, "complete", bare_complete_batch_sql, 5);
			break;
	}
}

/* Poll once; the caller clears the result. */
static PGresult *
poll_once(PGconn *conn, WorkShared *sh, const char *worker, const char *batch)
{
	const char *params[3];

	if (sh->kind == KIND_QF_TASK || sh->kind == KIND_QF_BATCH)
	{
		params[0] = sh->slug;
		params[1] = worker;
		params[2] = batch;
		return db_run(conn, "poll", 3, params);
	}
	params[0] = worker;
	params[1] = batch;
	return db_run(conn, "poll", 2, params);
}

/*
 * complete_one_by_one
 *		Complete each polled task with its own statement; returns how many
 *		completions applied.
 */
static long
complete_one_by_one(PGconn *conn, WorkShared *sh, PGresult *polled)
{
	long		applied = 0;
	int			i;

	for (i = 0; i < PQntuples(polled); i++)
	{
		const char *params[5];
		PGresult   *res;

		if (sh->kind == KIND_QF_TASK)
		{
			/* run_id, step_slug, task_index, output, attempt */
			params[0] = PQgetvalue(polled, i, 0);
			params[1] = PQgetvalue(polled, i, 1);
			params[2] = PQgetvalue(polled, i, 2);
			params[3] = TASK_OUTPUT;
			params[4] = PQgetvalue(polled, i, 3);
			res = db_run(conn, "complete", 5, params);
			if (strcmp(PQgetvalue(res, 0, 0), "completed") == 0)
				applied++;
		}
		else
		{
			/* job id, output */
			params[0] = PQgetvalue(polled, i, 0);
			params[1] = TASK_OUTPUT;
			res = db_run(conn, "complete", 2, params);
			applied += atol(PQgetvalue(res, 0, 0));
		}
		PQclear(res);
	}
	return applied;
}

/*
 * complete_batch
 *		Complete every polled task with one statement, passing arrays as
 *		array literals; returns how many completions applied.
 */
static long
complete_batch(PGconn *conn, WorkShared *sh, PGresult *polled,
			   StrBuf *arrays)
{
	int			n = PQntuples(polled);
	const char *params[5];
	PGresult   *res;
	long		applied;
	int			col,
				i;

	if (sh->kind == KIND_RAW_BATCH)
	{
		/* job ids and outputs */
		for (col = 0; col < 2; col++)
		{
			sb_reset(&arrays[col]);
			sb_append(&arrays[col], "{");
			for (i = 0; i < n; i++)
			{
				if (i > 0)
					sb_append(&arrays[col], ",");
				sb_append_element(&arrays[col],
								  col == 0 ? PQgetvalue(polled, i, 0)
								  : TASK_OUTPUT);
			}
			sb_append(&arrays[col], "}");
			params[col] = arrays[col].data;
		}
		res = db_run(conn, "complete", 2, params);
	}
	else
	{
		/* run_ids, step_slugs, task_indexes, outputs, attempts */
		static const int source_col[5] = {0, 1, 2, -1, 3};

		for (col = 0; col < 5; col++)
		{
			sb_reset(&arrays[col]);
			sb_append(&arrays[col], "{");
			for (i = 0; i < n; i++)
			{
				if (i > 0)
					sb_append(&arrays[col], ",");
				sb_append_element(&arrays[col],
								  source_col[col] < 0 ? TASK_OUTPUT
								  : PQgetvalue(polled, i, source_col[col]));
			}
			sb_append(&arrays[col], "}");
			params[col] = arrays[col].data;
		}
		res = db_run(conn, "complete", 5, params);
	}
	applied = atol(PQgetvalue(res, 0, 0));
	PQclear(res);
	return applied;
}

/* Microseconds on the monotonic clock, for the stall check. */
static long long
now_us(void)
{
	return (long long) (now_seconds() * 1e6);
}

/*
 * worker_main
 *		Connect, prepare, wait for the others, then poll and complete
 *		until every expected task is done.  An empty poll sleeps 1 ms.
 */
static void *
worker_main(void *arg)
{
	WorkerArg  *w = arg;
	WorkShared *sh = w->shared;
	char		name[32];
	char		batch[16];
	PGconn	   *conn;
	StrBuf		arrays[5];
	int			i;

	snprintf(name, sizeof(name), "w%d", w->id);
	snprintf(batch, sizeof(batch), "%d", sh->batch);
	for (i = 0; i < 5; i++)
		sb_init(&arrays[i]);

	/* Connect and prepare before the clock starts. */
	conn = db_connect(name);
	prepare_worker(conn, sh);
	pthread_barrier_wait(&sh->ready);

	while (atomic_load(&sh->completed) < sh->expected)
	{
		PGresult   *res = poll_once(conn, sh, name, batch);
		int			n = PQntuples(res);
		long		applied;

		/* Nothing claimable now: the rest is in other workers' hands. */
		if (n == 0)
		{
			PQclear(res);
			if (now_us() - atomic_load(&sh->progress_us) >
				STALL_SECONDS * 1000000LL)
				fail("no task completed for %d seconds; %ld of %ld done",
					 STALL_SECONDS, atomic_load(&sh->completed),
					 sh->expected);
			usleep(1000);
			continue;
		}

		/* Do the work (nothing) and report it. */
		atomic_fetch_add(&sh->polled, n);
		if (sh->kind == KIND_QF_TASK || sh->kind == KIND_RAW_TASK)
			applied = complete_one_by_one(conn, sh, res);
		else
			applied = complete_batch(conn, sh, res, arrays);
		PQclear(res);

		if (applied != n)
			fail("worker %s: %ld of %d completions applied", name, applied,
				 n);
		atomic_fetch_add(&sh->completed, applied);
		atomic_store(&sh->progress_us, now_us());
	}

	PQfinish(conn);
	for (i = 0; i < 5; i++)
		free(arrays[i].data);
	return NULL;
}

/*
 * run_workers
 *		Run nworkers workers until sh->expected tasks are done; returns
 *		the seconds from the moment all were ready until the last one
 *		stopped.  Checks that every task was handed out exactly once.
 */
static double
run_workers(WorkShared *sh, int nworkers)
{
	WorkerArg  *args = calloc(nworkers, sizeof(WorkerArg));
	double		t0,
				t1;
	int			i;

	if (args == NULL)
		fail("out of memory");
	atomic_store(&sh->completed, 0);
	atomic_store(&sh->polled, 0);
	atomic_store(&sh->progress_us, now_us());
	if (pthread_barrier_init(&sh->ready, NULL, nworkers + 1) != 0)
		fail("pthread_barrier_init failed");

	for (i = 0; i < nworkers; i++)
	{
		args[i].shared = sh;
		args[i].id = i;
		if (pthread_create(&args[i].thread, NULL, worker_main, &args[i]) != 0)
			fail("pthread_create failed");
	}
	pthread_barrier_wait(&sh->ready);
	t0 = now_seconds();
	atomic_store(&sh->progress_us, now_us());
	for (i = 0; i < nworkers; i++)
		pthread_join(args[i].thread, NULL);
	t1 = now_seconds();

	pthread_barrier_destroy(&sh->ready);
	free(args);

	if (atomic_load(&sh->polled) != sh->expected)
		fail("%ld tasks were handed out for %ld tasks",
			 atomic_load(&sh->polled), sh->expected);
	if (atomic_load(&sh->completed) != sh->expected)
		fail("%ld completions applied for %ld tasks",
			 atomic_load(&sh->completed), sh->expected);
	return t1 - t0;
}

/* ------------------------------------------------------------------------
 * Workloads
 * ------------------------------------------------------------------------ */

/*
 * workload_chain
 *		chain3, chain3-batch, rawqueue and rawqueue-batch: start R runs
 *		from one connection, then let W workers do the 3R tasks.
 *
 *		chain3 and rawqueue start each run with its own statement (and
 *		transaction) and report the rate.  The batch variants would only
 *		measure the same thing again, so they start all runs with one
 *		statement, which takes a fraction of the time.
 */
static void
workload_chain(const char *name, QueueKind kind)
{
	bool		is_qf = (kind == KIND_QF_TASK || kind == KIND_QF_BATCH);
	PGconn	   *conn = db_connect("qf_bench");
	WorkShared	sh;
	char		id[32];
	char		input[64];
	const char *params[2];
	double		t0,
				elapsed;
	int			i;

	/* Schema. */
	if (is_qf)
	{
		const char *def[2] = {"chain3", qf_chain3_definition};

		db_exec(conn, "CREATE EXTENSION IF NOT EXISTS quantum_flow");
		PQclear(db_check(conn,
						 PQexecParams(conn,
									  "SELECT quantum_flow.define_workflow("
									  "$1, $2::jsonb)",
									  2, NULL, def, NULL, NULL, 0),
						 "define_workflow"));
		db_prepare(conn, "start", qf_start_sql, 2);
		db_prepare(conn, "start_all", qf_start_all_sql, 1);
	}
	else
	{
		db_exec(conn, raw_setup_sql);
		db_prepare(conn, "start", raw_start_sql, 2);
		db_prepare(conn, "start_all", raw_start_all_sql, 1);
	}
	db_exec(conn, "CHECKPOINT");

	/* Start the runs. */
	if (kind == KIND_QF_BATCH || kind == KIND_RAW_BATCH)
	{
		snprintf(id, sizeof(id), "%d", opts.runs);
		params[0] = id;
		PQclear(db_run(conn, "start_all", 1, params));
	}
	else
	{
		/* One statement (and transaction) each, timed. */
		t0 = now_seconds();
		for (i = 0; i < opts.runs; i++)
		{
			snprintf(id, sizeof(id), "%d", i);
			snprintf(input, sizeof(input), "{\"run\": %d}", i);
			params[0] = is_qf ? "chain3" : id;
			params[1] = input;
			PQclear(db_run(conn, "start", 2, params));
		}
		elapsed = now_seconds() - t0;
		printf("RESULT %s.start_per_s %.1f\n", name, opts.runs / elapsed);
	}

	/* Work through the 3R tasks. */
	sh.kind = kind;
	sh.slug = "chain3";
	sh.star = true;
	sh.batch = opts.batch;
	sh.expected = 3L * opts.runs;
	elapsed = run_workers(&sh, opts.workers);
	printf("RESULT %s.w%d.tasks_per_s %.1f\n", name, opts.workers,
		   sh.expected / elapsed);
	printf("# %s: %ld tasks by %d workers in %.3f s\n", name, sh.expected,
		   opts.workers, elapsed);

	/* Every run completed; every task done once, at the first attempt. */
	if (is_qf)
	{
		expect(conn, "runs", "SELECT count(*) FROM quantum_flow.workflow_runs"
			   " WHERE workflow_slug = 'chain3'", opts.runs);
		expect(conn, "completed runs with an output",
			   "SELECT count(*) FROM quantum_flow.workflow_runs"
			   " WHERE workflow_slug = 'chain3' AND status = 'completed'"
			   "   AND output ? 'c'", opts.runs);
		expect(conn, "completed step states",
			   "SELECT count(*) FROM quantum_flow.workflow_step_states"
			   " WHERE workflow_slug = 'chain3' AND status = 'completed'",
			   3L * opts.runs);
		expect(conn, "completed tasks",
			   "SELECT count(*) FROM quantum_flow.workflow_step_tasks"
			   " WHERE workflow_slug = 'chain3' AND status = 'completed'",
			   3L * opts.runs);
		expect(conn, "tasks not claimed exactly once",
			   "SELECT count(*) FROM quantum_flow.workflow_step_tasks"
			   " WHERE workflow_slug = 'chain3' AND attempts_count <> 1", 0);
	}
	else
	{
		expect(conn, "done jobs",
			   "SELECT count(*) FROM bench_jobs WHERE status = 'done'",
			   3L * opts.runs);
		expect(conn, "jobs", "SELECT count(*) FROM bench_jobs",
			   3L * opts.runs);
		expect(conn, "jobs not claimed exactly once",
			   "SELECT count(*) FROM bench_jobs WHERE attempts <> 1", 0);
		expect(conn, "runs without steps 1, 2 and 3",
			   "SELECT count(*) FROM (SELECT run_id FROM bench_jobs"
			   " GROUP BY run_id HAVING count(*) <> 3"
			   "   OR count(DISTINCT step) <> 3) AS x", 0);
	}
	PQfinish(conn);
}

/*
 * workload_fanout
 *		One run of a root map step over opts.fanout_tasks elements: time
 *		start_run and sample its backend's memory, then process the tasks
 *		with opts.workers workers polling opts.batch and completing each
 *		batch with one call.  With bare set, the same rows go into a copy
 *		of the task table by one INSERT, and are processed by bare UPDATEs.
 */
static void
workload_fanout(bool bare)
{
	const char *prefix = bare ? "fanout-bare" : "fanout";
	PGconn	   *conn = db_connect("qf_bench");
	MemSampler	sampler;
	WorkShared	sh;
	StrBuf		input;
	StrBuf		sql;
	char		count[16];
	const char *params[2];
	PGresult   *res;
	double		t0,
				elapsed;
	long		n = opts.fanout_tasks;
	int			i;

	/* Schema, and the input array built by the client. */
	db_exec(conn, "CREATE EXTENSION IF NOT EXISTS quantum_flow");
	if (bare)
		db_exec(conn, bare_setup_sql);
	else
	{
		const char *def[2] = {"fanout", qf_fanout_definition};

		PQclear(db_check(conn,
						 PQexecParams(conn,
									  "SELECT quantum_flow.define_workflow("
									  "$1, $2::jsonb)",
									  2, NULL, def, NULL, NULL, 0),
						 "define_workflow"));
	}
	sb_init(&input);
	sb_append(&input, "[");
	for (i = 0; i < n; i++)
		sb_appendf(&input, "%s{\"i\": %d}", i > 0 ? ", " : "", i);
	sb_append(&input, "]");
	snprintf(count, sizeof(count), "%ld", n);
	if (bare)
		db_prepare(conn, "create", bare_insert_sql, 2);
	else
		db_prepare(conn, "create", qf_start_sql, 2);
	db_exec(conn, "CHECKPOINT");

	/* Create the tasks, watching the backend's memory. */
	sampler_start(&sampler, backend_pid(conn));
	t0 = now_seconds();
	params[0] = bare ? BARE_RUN_ID : "fanout";
	params[1] = bare ? count : input.data;
	res = db_run(conn, "create", 2, params);
	elapsed = now_seconds() - t0;
	PQclear(res);
	sampler_stop(&sampler, prefix);
	printf("RESULT %s.create_s %.3f\n", prefix, elapsed);
	printf("RESULT %s.create_tasks_per_s %.1f\n", prefix, n / elapsed);

	/* Process them. */
	sh.kind = bare ? KIND_BARE_BATCH : KIND_QF_BATCH;
	sh.slug = "fanout";
	sh.star = opts.star;
	sh.batch = opts.batch;
	sh.expected = n;
	elapsed = run_workers(&sh, opts.workers);
	printf("RESULT %s.process_tasks_per_s %.1f\n", prefix, n / elapsed);
	printf("# %s: %ld tasks by %d workers in %.3f s\n", prefix, n,
		   opts.workers, elapsed);

	/* Every task done once; the run completed with every output. */
	sb_init(&sql);
	if (bare)
	{
		expect(conn, "completed tasks",
			   "SELECT count(*) FROM bench_fanout_tasks"
			   " WHERE status = 'completed'", n);
		expect(conn, "tasks not claimed exactly once",
			   "SELECT count(*) FROM bench_fanout_tasks"
			   " WHERE attempts_count <> 1", 0);
	}
	else
	{
		expect(conn, "completed tasks",
			   "SELECT count(*) FROM quantum_flow.workflow_step_tasks"
			   " WHERE workflow_slug = 'fanout' AND status = 'completed'", n);
		expect(conn, "tasks not claimed exactly once",
			   "SELECT count(*) FROM quantum_flow.workflow_step_tasks"
			   " WHERE workflow_slug = 'fanout' AND attempts_count <> 1", 0);
		expect(conn, "completed runs",
			   "SELECT count(*) FROM quantum_flow.workflow_runs"
			   " WHERE workflow_slug = 'fanout' AND status = 'completed'", 1);
		expect(conn, "elements of the run output",
			   "SELECT jsonb_array_length(output -> 'items')"
			   "  FROM quantum_flow.workflow_runs"
			   " WHERE workflow_slug = 'fanout'", n);
	}
	free(sql.data);
	free(input.data);
	PQfinish(conn);
}

static int
compare_doubles(const void *a, const void *b)
{
	double		x = *(const double *) a;
	double		y = *(const double *) b;

	return (x > y) - (x < y);
}

/* The p-th percentile of n sorted values, by the nearest-rank method. */
static double
percentile(const double *sorted, int n, int p)
{
	int			rank = (p * n + 99) / 100;

	if (rank < 1)
		rank = 1;
	return sorted[rank - 1];
}

/*
 * history_phase
 *		Start opts.cycles runs of the one-step workflow, vacuum and
 *		analyze, then time opts.cycles cycles of poll (batch 1) +
 *		complete_task from one connection.  Prints medians and p99s in
 *		milliseconds under history.<phase>.
 */
static void
history_phase(PGconn *conn, const char *phase)
{
	double	   *cycle = calloc(opts.cycles, sizeof(double));
	double	   *poll = calloc(opts.cycles, sizeof(double));
	double	   *complete = calloc(opts.cycles, sizeof(double));
	const char *done_sql =
		"SELECT count(*) FROM quantum_flow.workflow_step_tasks"
		" WHERE workflow_slug = 'history' AND status = 'completed'";
	long long	done_before;
	const char *wal_sql =
		"SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint";
	const char *fpi_sql =
		"SELECT wal_fpi FROM pg_stat_wal";
	long long	wal_before,
				fpi_before;
	char		n[16];
	const char *params[5];
	int			i;

	if (cycle == NULL || poll == NULL || complete == NULL)
		fail("out of memory");

	/* Pre-started runs, then fresh statistics and visibility map. */
	done_before = db_int(conn, done_sql);
	snprintf(n, sizeof(n), "%d", opts.cycles);
	params[0] = n;
	PQclear(db_run(conn, "prestart", 1, params));
	db_exec(conn, history_vacuum_sql);
	db_exec(conn, "CHECKPOINT");
	printf("# history.%s: %lld finished tasks, %d queued\n", phase,
		   done_before, opts.cycles);

	/*
	 * WAL written by the cycles, and full-page images among it: with
	 * random keys in large indexes, most first touches of a leaf page
	 * after the checkpoint above log the whole page.
	 */
	db_exec(conn, "SELECT pg_stat_force_next_flush()");
	wal_before = db_int(conn, wal_sql);
	fpi_before = db_int(conn, fpi_sql);

	/* The timed cycles. */
	for (i = 0; i < opts.cycles; i++)
	{
		double		t0,
					t1,
					t2;
		PGresult   *polled;
		PGresult   *res;

		t0 = now_seconds();
		polled = db_run(conn, "poll", 0, NULL);
		t1 = now_seconds();
		if (PQntuples(polled) != 1)
			fail("history: poll %d returned %d tasks", i,
				 PQntuples(polled));
		params[0] = PQgetvalue(polled, 0, 0);
		params[1] = PQgetvalue(polled, 0, 1);
		params[2] = PQgetvalue(polled, 0, 2);
		params[3] = TASK_OUTPUT;
		params[4] = PQgetvalue(polled, 0, 3);
		res = db_run(conn, "complete", 5, params);
		t2 = now_seconds();
		if (strcmp(PQgetvalue(res, 0, 0), "completed") != 0)
			fail("history: completion %d did not apply", i);
		PQclear(res);
		PQclear(polled);
		cycle[i] = (t2 - t0) * 1000.0;
		poll[i] = (t1 - t0) * 1000.0;
		complete[i] = (t2 - t1) * 1000.0;
	}

	/* WAL per cycle; the statistics are flushed at transaction end. */
	printf("RESULT history.%s.wal_bytes_per_cycle %.1f\n", phase,
		   (double) (db_int(conn, wal_sql) - wal_before) / opts.cycles);
	db_exec(conn, "SELECT pg_stat_force_next_flush()");
	printf("RESULT history.%s.fpi_per_cycle %.3f\n", phase,
		   (double) (db_int(conn, fpi_sql) - fpi_before) / opts.cycles);

	/* Percentiles. */
	qsort(cycle, opts.cycles, sizeof(double), compare_doubles);
	qsort(poll, opts.cycles, sizeof(double), compare_doubles);
	qsort(complete, opts.cycles, sizeof(double), compare_doubles);
	printf("RESULT history.%s.p50_ms %.4f\n", phase,
		   percentile(cycle, opts.cycles, 50));
	printf("RESULT history.%s.p99_ms %.4f\n", phase,
		   percentile(cycle, opts.cycles, 99));
	printf("RESULT history.%s.poll_p50_ms %.4f\n", phase,
		   percentile(poll, opts.cycles, 50));
	printf("RESULT history.%s.poll_p99_ms %.4f\n", phase,
		   percentile(poll, opts.cycles, 99));
	printf("RESULT history.%s.complete_p50_ms %.4f\n", phase,
		   percentile(complete, opts.cycles, 50));
	printf("RESULT history.%s.complete_p99_ms %.4f\n", phase,
		   percentile(complete, opts.cycles, 99));

	/* Every run of the workflow, old and new, completed exactly once. */
	expect(conn, "history: runs not completed",
		   "SELECT count(*) FROM quantum_flow.workflow_runs"
		   " WHERE workflow_slug = 'history' AND status <> 'completed'", 0);
	expect(conn, "history: tasks not completed",
		   "SELECT count(*) FROM quantum_flow.workflow_step_tasks"
		   " WHERE workflow_slug = 'history' AND status <> 'completed'", 0);
	expect(conn, "history: tasks not claimed exactly once",
		   "SELECT count(*) FROM quantum_flow.workflow_step_tasks"
		   " WHERE workflow_slug = 'history' AND attempts_count <> 1", 0);
	expect(conn, "history: tasks completed by this phase", done_sql,
		   done_before + opts.cycles);

	free(cycle);
	free(poll);
	free(complete);
}

/*
 * workload_history
 *		Poll + complete latency of one worker.  history-empty measures a
 *		database with no finished runs; history-full first adds
 *		opts.history finished runs (once: a database that has them already
 *		is reused, so that repetitions need not rebuild them).
 *
 *		The finished runs belong to the same workflow as the measured
 *		ones.  That is the hard case: their tasks share the workflow_slug
 *		prefix of every queue index, so only the indexes' status
 *		predicates keep them out of the hot path, and a plan that scanned
 *		a workflow's tasks would pay for all of them.
 */
static void
workload_history(bool full)
{
	PGconn	   *conn = db_connect("qf_bench");
	const char *def[2] = {"history", qf_history_definition};

	/* Schema and statements. */
	db_exec(conn, "CREATE EXTENSION IF NOT EXISTS quantum_flow");
	PQclear(db_check(conn,
					 PQexecParams(conn,
								  "SELECT quantum_flow.define_workflow("
								  "$1, $2::jsonb)",
								  2, NULL, def, NULL, NULL, 0),
					 "define_workflow"));
	db_prepare(conn, "prestart", history_prestart_sql, 1);
	db_prepare(conn, "poll", history_poll_sql, 0);
	db_prepare(conn, "complete", qf_complete_sql, 5);

	/* Add the finished runs, unless an earlier repetition did. */
	if (full &&
		db_int(conn, "SELECT count(*) FROM quantum_flow.workflow_runs"
			   " WHERE workflow_slug = 'history'") < opts.history)
	{
		size_t		len = strlen(history_insert_sql) + 64;
		char	   *sql = malloc(len);
		double		t0;

		if (sql == NULL)
			fail("out of memory");
		snprintf(sql, len, history_insert_sql, opts.history, opts.history,
				 opts.history);
		t0 = now_seconds();
		db_exec(conn, sql);
		printf("RESULT history.insert_s %.3f\n", now_seconds() - t0);
		free(sql);
	}

	history_phase(conn, full ? "full" : "empty");
	PQfinish(conn);
}

/* ------------------------------------------------------------------------
 * Report
 * ------------------------------------------------------------------------ */

/* One key and its samples, from the RESULT lines of many runs. */
typedef struct Series
{
	char		key[96];
	double	   *values;
	int			n;
	int			cap;
} Series;

typedef struct SeriesSet
{
	Series	   *items;
	int			n;
	int			cap;
} SeriesSet;

/* How a figure is compared. */
typedef enum TargetKind
{
	TARGET_NONE,				/* information only */
	TARGET_RATIO_AT_LEAST,		/* ratio >= target */
	TARGET_RATIO_AT_MOST,		/* ratio <= target */
	TARGET_VALUE_BELOW			/* value < target */
} TargetKind;

/*
 * A line of the table: value and baseline are medians of two keys
 * (with %d replaced by the worker count when per_workers is set), and
 * the ratio is value / baseline.
 */
typedef struct Figure
{
	const char *label;
	const char *value_key;
	const char *baseline_key;
	const char *baseline_label;
	bool		per_workers;
	TargetKind	target_kind;
	double		target;
} Figure;

static const Figure figures[] = {
	{"runs started/s (chain3)", "chain3.start_per_s", "rawqueue.start_per_s",
	"rawqueue insert", false, TARGET_NONE, 0},
	{"chain3 tasks/s, W=%d", "chain3.w%d.tasks_per_s",
		"rawqueue.w%d.tasks_per_s", "rawqueue",
	true, TARGET_RATIO_AT_LEAST, 0.5},
	{"chain3-batch tasks/s, W=%d", "chain3-batch.w%d.tasks_per_s",
		"rawqueue.w%d.tasks_per_s", "rawqueue",
	true, TARGET_RATIO_AT_LEAST, 1.0},
	{"chain3-batch tasks/s, W=%d", "chain3-batch.w%d.tasks_per_s",
		"rawqueue-batch.w%d.tasks_per_s", "rawqueue-batch",
	true, TARGET_NONE, 0},
	{"fanout creation tasks/s", "fanout.create_tasks_per_s",
		"fanout-bare.create_tasks_per_s", "bare INSERT",
	false, TARGET_RATIO_AT_LEAST, 0.5},
	{"fanout creation s", "fanout.create_s", "fanout-bare.create_s",
	"bare INSERT", false, TARGET_NONE, 0},
	{"fanout peak backend MB (RssAnon)", "fanout.peak_anon_mb",
		"fanout-bare.peak_anon_mb", "bare INSERT",
	false, TARGET_VALUE_BELOW, 256},
	{"fanout peak RSS MB (VmHWM)", "fanout.vmhwm_mb",
		"fanout-bare.vmhwm_mb", "bare INSERT",
	false, TARGET_NONE, 0},
	{"fanout processing tasks/s", "fanout.process_tasks_per_s",
		"fanout-bare.process_tasks_per_s", "bare UPDATEs",
	false, TARGET_NONE, 0},
	{"history poll+complete p50 ms", "history.full.p50_ms",
		"history.empty.p50_ms", "empty history",
	false, TARGET_RATIO_AT_MOST, 1.2},
	{"history poll+complete p99 ms", "history.full.p99_ms",
		"history.empty.p99_ms", "empty history",
	false, TARGET_RATIO_AT_MOST, 1.2},
	{"history poll p50 ms", "history.full.poll_p50_ms",
		"history.empty.poll_p50_ms", "empty history",
	false, TARGET_NONE, 0},
	{"history complete p50 ms", "history.full.complete_p50_ms",
		"history.empty.complete_p50_ms", "empty history",
	false, TARGET_NONE, 0},
	{"history WAL bytes per cycle", "history.full.wal_bytes_per_cycle",
		"history.empty.wal_bytes_per_cycle", "empty history",
	false, TARGET_NONE, 0},
	{"history full-page images per cycle", "history.full.fpi_per_cycle",
		"history.empty.fpi_per_cycle", "empty history",
	false, TARGET_NONE, 0},
};

static const int worker_counts[] = {1, 2, 4, 8, 16, 32};

static Series *
series_find(SeriesSet *set, const char *key, bool create)
{
	int			i;

	for (i = 0; i < set->n; i++)
		if (strcmp(set->items[i].key, key) == 0)
			return &set->items[i];
	if (!create)
		return NULL;
	if (set->n == set->cap)
	{
		set->cap = set->cap ? set->cap * 2 : 64;
		set->items = realloc(set->items, set->cap * sizeof(Series));
		if (set->items == NULL)
			fail("out of memory");
	}
	memset(&set->items[set->n], 0, sizeof(Series));
	snprintf(set->items[set->n].key, sizeof(set->items[set->n].key), "%s",
			 key);
	return &set->items[set->n++];
}

static void
series_add(Series *s, double v)
{
	if (s->n == s->cap)
	{
		s->cap = s->cap ? s->cap * 2 : 8;
		s->values = realloc(s->values, s->cap * sizeof(double));
		if (s->values == NULL)
			fail("out of memory");
	}
	s->values[s->n++] = v;
}

/* Median of a series; sorts it in place. */
static double
series_median(Series *s)
{
	qsort(s->values, s->n, sizeof(double), compare_doubles);
	if (s->n % 2 == 1)
		return s->values[s->n / 2];
	return (s->values[s->n / 2 - 1] + s->values[s->n / 2]) / 2;
}

static void
json_samples(FILE *f, Series *s)
{
	int			i;

	fputc('[', f);
	for (i = 0; s && i < s->n; i++)
		fprintf(f, "%s%.4f", i ? ", " : "", s->values[i]);
	fputc(']', f);
}

/* Write a string as a JSON string (the keys and labels here are ASCII). */
static void
json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++)
	{
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

/*
 * report
 *		Read samples, print the table of medians, write the JSON file.
 *		Returns 1 if a target was missed, else 0.
 */
static int
report(const char *samples_path, const char *json_path)
{
	FILE	   *in = fopen(samples_path, "r");
	FILE	   *out;
	SeriesSet	set = {NULL, 0, 0};
	char		settings[64][160];
	int			nsettings = 0;
	char		line[512];
	bool		first = true;
	int			missed = 0;
	size_t		f;
	int			i;

	if (in == NULL)
		fail("cannot open %s: %s", samples_path, strerror(errno));
	out = fopen(json_path, "w");
	if (out == NULL)
		fail("cannot open %s: %s", json_path, strerror(errno));

	/* Collect "RESULT key value" and "setting name value" lines. */
	while (fgets(line, sizeof(line), in))
	{
		char		key[96];
		char		rest[160];
		double		v;

		if (sscanf(line, "RESULT %95s %lf", key, &v) == 2)
			series_add(series_find(&set, key, true), v);
		else if (sscanf(line, "setting %159[^\n]", rest) == 1 &&
				 nsettings < 64)
			snprintf(settings[nsettings++], sizeof(settings[0]), "%s", rest);
	}
	fclose(in);

	/* The table, and the JSON figures beside it. */
	fprintf(out, "{\n  \"settings\": {");
	for (i = 0; i < nsettings; i++)
	{
		char		name[160];
		char	   *space;

		memcpy(name, settings[i], sizeof(name));
		name[sizeof(name) - 1] = '\0';
		space = strchr(name, ' ');
		if (space == NULL)
			continue;
		*space = '\0';
		fprintf(out, "%s\n    ", i ? "," : "");
		json_string(out, name);
		fprintf(out, ": ");
		json_string(out, space + 1);
	}
	fprintf(out, "\n  },\n  \"figures\": [");

	printf("%-36s %12s %12s  %-15s %7s  %-8s %s\n", "figure", "quantum_flow",
		   "baseline", "baseline is", "ratio", "target", "");
	for (f = 0; f < sizeof(figures) / sizeof(figures[0]); f++)
	{
		const Figure *fig = &figures[f];
		int			nw = fig->per_workers ?
			(int) (sizeof(worker_counts) / sizeof(int)) : 1;
		int			w;

		for (w = 0; w < nw; w++)
		{
			char		label[96];
			char		vkey[96];
			char		bkey[96];
			char		target[16] = "-";
			const char *verdict = "";
			Series	   *vs,
					   *bs;
			double		value,
						baseline,
						ratio;
			int			met = -1;

			snprintf(label, sizeof(label), fig->label, worker_counts[w]);
			snprintf(vkey, sizeof(vkey), fig->value_key, worker_counts[w]);
			snprintf(bkey, sizeof(bkey), fig->baseline_key,
					 worker_counts[w]);
			vs = series_find(&set, vkey, false);
			bs = series_find(&set, bkey, false);
			if (vs == NULL || bs == NULL)
				continue;
			value = series_median(vs);
			baseline = series_median(bs);
			ratio = baseline != 0 ? value / baseline : 0;

			/* Judge the figure against its target. */
			switch (fig->target_kind)
			{
				case TARGET_NONE:
					break;
				case TARGET_RATIO_AT_LEAST:
					snprintf(target, sizeof(target), ">= %.1fx", fig->target);
					met = ratio >= fig->target;
					break;
				case TARGET_RATIO_AT_MOST:
					snprintf(target, sizeof(target), "<= %.1fx", fig->target);
					met = ratio <= fig->target;
					break;
				case TARGET_VALUE_BELOW:
					snprintf(target, sizeof(target), "< %.0f", fig->target);
					met = value < fig->target;
					break;
			}
			if (met == 1)
				verdict = "ok";
			else if (met == 0)
			{
				verdict = "MISSED";
				missed = 1;
			}

			printf("%-36s %12.2f %12.2f  %-15s %6.2fx  %-8s %s\n", label,
				   value, baseline, fig->baseline_label, ratio, target,
				   verdict);

			fprintf(out, "%s\n    {\"figure\": ", first ? "" : ",");
			json_string(out, label);
			fprintf(out, ", \"key\": ");
			json_string(out, vkey);
			fprintf(out, ", \"value\": %.4f, \"baseline_key\": ", value);
			json_string(out, bkey);
			fprintf(out, ", \"baseline_is\": ");
			json_string(out, fig->baseline_label);
			fprintf(out, ", \"baseline\": %.4f, \"ratio\": %.4f, "
					"\"target\": ", baseline, ratio);
			json_string(out, target);
			fprintf(out, ", \"met\": %s,\n     \"samples\": ",
					met < 0 ? "null" : met ? "true" : "false");
			json_samples(out, vs);
			fprintf(out, ", \"baseline_samples\": ");
			json_samples(out, bs);
			fprintf(out, "}");
			first = false;
		}
	}

	/* Every key, for whoever wants more than the table. */
	fprintf(out, "\n  ],\n  \"medians\": {");
	for (i = 0; i < set.n; i++)
	{
		fprintf(out, "%s\n    ", i ? "," : "");
		json_string(out, set.items[i].key);
		fprintf(out, ": {\"median\": %.4f, \"samples\": ",
				series_median(&set.items[i]));
		json_samples(out, &set.items[i]);
		fprintf(out, "}");
	}
	fprintf(out, "\n  }\n}\n");
	if (fclose(out) != 0)
		fail("cannot write %s: %s", json_path, strerror(errno));
	return missed;
}

/* ------------------------------------------------------------------------
 * Main
 * ------------------------------------------------------------------------ */

static void
usage(void)
{
	fprintf(stderr,
			"usage: qf_bench run WORKLOAD [-w workers] [-r runs] [-b batch]\n"
			"                [-n fanout_tasks] [-c cycles] [-H history] [-S]\n"
			"       qf_bench report SAMPLES JSON\n"
			"WORKLOAD: chain3 chain3-batch rawqueue rawqueue-batch fanout\n"
			"          fanout-bare history-empty history-full\n"
			"The database is the one the libpq environment names.\n");
	exit(2);
}

/* A positive integer option, or usage. */
static long
positive(const char *s)
{
	char	   *end;
	long		v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 1)
		usage();
	return v;
}

int
main(int argc, char **argv)
{
	const char *workload;
	int			c;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 2 && strcmp(argv[1], "report") == 0)
	{
		if (argc != 4)
			usage();
		return report(argv[2], argv[3]) && getenv("BENCH_STRICT") ? 3 : 0;
	}
	if (argc < 3 || strcmp(argv[1], "run") != 0)
		usage();
	workload = argv[2];

	/* Options after the workload. */
	optind = 3;
	while ((c = getopt(argc, argv, "w:r:b:n:c:H:S")) != -1)
	{
		switch (c)
		{
			case 'S':
				opts.star = true;
				break;
			case 'w':
				opts.workers = (int) positive(optarg);
				break;
			case 'r':
				opts.runs = (int) positive(optarg);
				break;
			case 'b':
				opts.batch = (int) positive(optarg);
				break;
			case 'n':
				opts.fanout_tasks = (int) positive(optarg);
				break;
			case 'c':
				opts.cycles = (int) positive(optarg);
				break;
			case 'H':
				opts.history = positive(optarg);
				break;
			default:
				usage();
		}
	}

	/* One workload per process. */
	if (strcmp(workload, "chain3") == 0)
		workload_chain(workload, KIND_QF_TASK);
	else if (strcmp(workload, "chain3-batch") == 0)
		workload_chain(workload, KIND_QF_BATCH);
	else if (strcmp(workload, "rawqueue") == 0)
		workload_chain(workload, KIND_RAW_TASK);
	else if (strcmp(workload, "rawqueue-batch") == 0)
		workload_chain(workload, KIND_RAW_BATCH);
	else if (strcmp(workload, "fanout") == 0)
		workload_fanout(false);
	else if (strcmp(workload, "fanout-bare") == 0)
		workload_fanout(true);
	else if (strcmp(workload, "history-empty") == 0)
		workload_history(false);
	else if (strcmp(workload, "history-full") == 0)
		workload_history(true);
	else
		usage();
	return 0;
}
