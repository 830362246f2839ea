# close_fdw: PGXS build.  "make installcheck" runs pg_regress against a
# running server and emulator; test/run sets both up (see README.md).

MODULE_big = close_fdw
OBJS = \
	src/answers.o \
	src/close_fdw.o \
	src/connection.o \
	src/convert.o \
	src/http.o \
	src/import.o \
	src/json.o \
	src/modify.o \
	src/option.o \
	src/pushdown.o \
	src/search.o

EXTENSION = close_fdw
DATA = close_fdw--0.1.sql
PGFILEDESC = "close_fdw - foreign data wrapper for the Close CRM API"

SHLIB_LINK = -lcurl -ljson-c

REGRESS = setup options types read_lead read_id joins search explain connection errors resilience fuzz concurrency cancel memory writes writes_bulk writes_direct import consistency
REGRESS_OPTS = --inputdir=. --outputdir=. --load-extension=close_fdw

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# every object depends on the shared headers (PGXS does not track them)
$(OBJS): src/close_fdw.h src/compat.h
