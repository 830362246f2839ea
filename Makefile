# close_fdw: PGXS build.  "make installcheck" runs pg_regress against a
# running server and emulator; test/run sets both up (see README.md).

MODULE_big = close_fdw
OBJS = \
	src/analyze.o \
	src/answers.o \
	src/budget.o \
	src/close_fdw.o \
	src/connection.o \
	src/convert.o \
	src/costs.o \
	src/deferred.o \
	src/fields.o \
	src/fieldtypes.o \
	src/http.o \
	src/import.o \
	src/json.o \
	src/modify.o \
	src/option.o \
	src/pushdown.o \
	src/resource.o \
	src/search.o \
	src/shared.o \
	src/upper.o

EXTENSION = close_fdw
DATA = close_fdw--0.1.sql close_fdw--0.2.sql close_fdw--0.3.sql close_fdw--0.1--0.2.sql close_fdw--0.2--0.3.sql
PGFILEDESC = "close_fdw - foreign data wrapper for the Close CRM API"

SHLIB_LINK = -lcurl -ljson-c

REGRESS = setup options types read_lead read_id joins search explain connection errors resilience fuzz concurrency cancel memory writes writes_bulk writes_direct import fields upgrade edges_pushdown edges_json edges_encoding edges_writelog edges_writelog_batch edges_modify partitions invalidation security consistency planning analyze pushdown_upper budget definitions review_write review_read many_connections stats sqlstates write_log deferred pacing edges_jsonb paging_overlap review_tx review_plan deferred_gaps cache crm_read crm_write crm_import crm_search perf_json review_crm_write review_crm_read review_cache_tx review_lead adv_edges adv_spec adv_pushdown adv_tx rev_a rev_b adv_exec adv_write adv_crm rev_c rev_d
REGRESS_OPTS = --inputdir=. --outputdir=. --load-extension=close_fdw

# A VPATH build (pg_buildext's build-N directories) writes the objects
# under src/ of the build directory, which must exist first.
ifdef VPATH
$(shell mkdir -p src)
endif

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# make dist: the PGXN distribution, close_fdw-<version>.zip, from the
# committed tree (git archive), with META.json at its top.
EXTVERSION = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" close_fdw.control)
dist:
	git archive --format zip --prefix=close_fdw-$(EXTVERSION)/ -o close_fdw-$(EXTVERSION).zip HEAD
.PHONY: dist

# every object depends on the shared headers (PGXS does not track them)
$(OBJS): src/close_fdw.h src/compat.h
