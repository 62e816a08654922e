# Makefile for quantum_flow, a PGXS extension.
#
#   make            build the module
#   make install    install it into the PostgreSQL found by pg_config
#   make test       install missing packages, build, install, and run every
#                   suite (pg_regress, isolation, pgTAP, TAP) against
#                   throwaway clusters
#   make demo       the demo workflow, in a throwaway cluster
#   make bench      the benchmarks, in a throwaway cluster
#   make soak       the long crash-and-recover run
#
# PGXS is included only when it is installed, so that `make test` and
# `make demo` can run on a machine that lacks the -dev package and
# install it first.

EXTENSION    = quantum_flow
EXTVERSION   = 0.1.0
MODULE_big   = quantum_flow
OBJS         = src/quantum_flow.o src/clock.o src/idempotency.o \
               src/scheduler.o src/queue.o
DATA         = $(wildcard sql/quantum_flow--*.sql)
PG_CPPFLAGS  = -I$(srcdir)/src
PG_CFLAGS    = -Wall -Wextra -Werror -Wno-unused-parameter \
               -Wno-missing-field-initializers -Wno-sign-compare

REGRESS      = idempotency clock
REGRESS_OPTS = --inputdir=. --outputdir=test/results
ISOLATION    = start_ready_steps_race poll_poll complete_vs_reclaim \
               complete_vs_cancel start_run_idempotency notify tally_prune \
               complete_vs_fail fail_vs_cancel prune_vs_complete \
               poll_vs_fail_final deadlock_check
ISOLATION_OPTS = --inputdir=. --outputdir=test/results/isolation

ifneq ($(wildcard test/t/*.pl),)
TAP_TESTS    = 1
PROVE_TESTS  = test/t/*.pl
endif

PG_CONFIG   ?= pg_config
PGXS        := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)

ifneq ($(wildcard $(PGXS)),)
include $(PGXS)
else
all install installcheck:
	@echo "PGXS was not found: run 'make test' or 'test/deps.sh' first" >&2
	@exit 1
endif

.PHONY: test demo bench soak deps

deps:
	@test/deps.sh

test:
	@test/run.sh

demo:
	@test/demo.sh

bench:
	@test/bench/run.sh

soak:
	@test/soak.sh
