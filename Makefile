# Wenming Cloud — the two commands a newcomer needs are `make run` and `make test`.
# Everything downloaded or built lands in .cache/ (git-ignored); local server data in .data/.

SHELL := /bin/bash
.DEFAULT_GOAL := help

ROOT      := $(CURDIR)
VENV      := $(ROOT)/.cache/venv
PY        := $(VENV)/bin/python
STACK     := infra/local/stack.sh
GEN       := build/protos/python
PROTOS    := $(shell find protos -name '*.proto')
WEB_BUILT := build/web/index.html
WEB_SRC   := $(shell find web/src web/public -type f) web/index.html web/vite.config.js web/package-lock.json
SITE      := $(VENV)/lib/python3.11/site-packages
# the test stack runs beside a `make run` stack: own ports, own data directory. TEST_SLOT=n
# gives parallel test runs on one machine separate ports and data as well.
TEST_SLOT ?= 0
TEST_DATA := $(ROOT)/.data/test$(if $(filter-out 0,$(TEST_SLOT)),-$(TEST_SLOT))
TEST_ENV  := WENMING_DATA=$(TEST_DATA) \
             KAFKA_PORT=$(shell echo $$((19092 + 10 * $(TEST_SLOT)))) \
             MONGO_PORT=$(shell echo $$((27018 + 10 * $(TEST_SLOT)))) \
             WENMING_TEST_LANE=$(shell echo $$((4 * $(TEST_SLOT))))
PYTEST_ARGS ?=
UNIT_TESTS := tests/unit
TOOLS_STATUS := $(TEST_DATA)-tools
# test packages run in parallel pytest processes (pytest-xdist), each with its own service processes,
# ports, databases and consumer groups on the one broker and database; the few tests that stop the
# broker or the database (marked serial) run one after another at the same time, on a broker and
# database of their own (SERIAL_ENV: the slot's ports + 3, and its fourth lane of service ports)
TEST_WORKERS ?= 3
SERIAL_DATA := $(TEST_DATA)-serial
SERIAL_ENV := WENMING_DATA=$(SERIAL_DATA) \
              KAFKA_PORT=$(shell echo $$((19095 + 10 * $(TEST_SLOT)))) \
              MONGO_PORT=$(shell echo $$((27021 + 10 * $(TEST_SLOT)))) \
              WENMING_TEST_LANE=$(shell echo $$((4 * $(TEST_SLOT) + 3)))
BENCH_ARGS ?=
# `make chaos` kills and freezes its broker and database: a stack of its own (slot 7's ports and
# .data/chaos), so it runs beside `make run` and `make test`; CHAOS_SEED repeats a run
CHAOS_SLOT ?= 7
CHAOS_DATA := $(ROOT)/.data/chaos$(if $(filter-out 7,$(CHAOS_SLOT)),-$(CHAOS_SLOT))
CHAOS_ENV := WENMING_DATA=$(CHAOS_DATA) \
             KAFKA_PORT=$(shell echo $$((19092 + 10 * $(CHAOS_SLOT)))) \
             MONGO_PORT=$(shell echo $$((27018 + 10 * $(CHAOS_SLOT)))) \
             WENMING_TEST_LANE=$(shell echo $$((4 * $(CHAOS_SLOT))))
CHAOS_ARGS ?=
# the district-scale data set (make seed-scale, benches at district scale): a data directory of its
# own, kept between runs, and its own broker and database ports beside the slot's
SCALE_DATA := $(ROOT)/.data/scale$(if $(filter-out 0,$(TEST_SLOT)),-$(TEST_SLOT))
SCALE_ENV := WENMING_DATA=$(SCALE_DATA) \
             KAFKA_PORT=$(shell echo $$((19097 + 10 * $(TEST_SLOT)))) \
             MONGO_PORT=$(shell echo $$((27023 + 10 * $(TEST_SLOT)))) \
             WENMING_SCALE_SLOT=$(TEST_SLOT)
SEED_ARGS ?=
# `make images`: the one image every service runs from, tagged with the chart's appVersion
APP_VERSION := $(shell sed -n 's/^appVersion: *"\{0,1\}\([^" ]*\)"\{0,1\}.*/\1/p' charts/wenming/Chart.yaml)
IMAGE ?= wenming-cloud:$(APP_VERSION)

# the contract as last released: `buf breaking` compares protos/ with it (make contract-baseline)
CONTRACT_RELEASE  ?= 0.1.0
CONTRACT_BASELINE := contract-baseline/$(CONTRACT_RELEASE).binpb
BUF = $$($(STACK) tool-path buf)

.PHONY: help deps protos web fonts browser infra images run up down backup restore test test-tools test-unit unit-first chaos bench seed-scale lint typecheck screenshots contract-baseline clean

help:
	@echo "make run     build what is missing, start Kafka + FerretDB + all services, seed the demo district (Ctrl-C stops)"
	@echo "make up      the same in the background; returns once every service is SERVING"
	@echo "make down    stop what 'make up' started"
	@echo "make test    the whole test suite: first the tests without servers, then against a real broker and database"
	@echo "make test-unit  only the tests without servers (the domain's rules, the kit's pure parts): seconds"
	@echo "make bench   benchmarks against the real broker and database"
	@echo "make chaos   seeded faults (broker down/frozen, database down, kill -9) under traffic, then the invariants"
	@echo "make seed-scale  a district of Liangzhou's size (179k volunteers, 100k orders…) in .data/scale (hours; resumable)"
	@echo "make protos  regenerate Python code from protos/"
	@echo "make web     build the app (web/ -> build/web, served by the gateway under /app/)"
	@echo "make images  build the container image $(IMAGE) from the Dockerfile (docker, podman or buildah; IMAGE=... to rename)"
	@echo "make lint    ruff, mypy (strict on the kit), buf lint, and buf breaking against the last released contract"
	@echo "make backup BACKUP=<dir>   a consistent copy of the local database, broker and keys (services may keep running)"
	@echo "make restore BACKUP=<dir>  that copy into a fresh .data (WENMING_DATA=<dir> for another), then 'make up'"

# ---- build ----

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@test -x $(PY) || python3.11 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

deps: $(VENV)/.installed

$(GEN)/.stamp: $(PROTOS) $(VENV)/.installed
	@# generated beside, then copied over: a process importing the old code never sees a gap
	@tmp=$(GEN).tmp.$$$$ && mkdir -p $$tmp $(GEN) && \
	  $(PY) -m grpc_tools.protoc -I protos --python_out=$$tmp --pyi_out=$$tmp --grpc_python_out=$$tmp $(PROTOS) && \
	  cp -a $$tmp/. $(GEN)/ && rm -rf $$tmp
	@# the repo root and the generated code are importable from the virtualenv
	@printf '%s\n%s\n' "$(ROOT)" "$(ROOT)/$(GEN)" > $(SITE)/wenming.pth
	@touch $@

protos: $(GEN)/.stamp

# the app: npm packages exactly as the lockfile pins them, then Vite (prints every chunk's size)
web/node_modules/.installed: web/package.json web/package-lock.json
	@command -v npm >/dev/null || { echo "make web: Node.js 20+ with npm is needed to build the app" >&2; exit 1; }
	cd web && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(WEB_BUILT): web/node_modules/.installed $(WEB_SRC)
	cd web && npm run --silent build

web: $(WEB_BUILT)

# the CJK font, for every target that starts points: it embeds it in PDF certificates and scorecards
# (services/common/fonts.py, which fails at start without it); the page tests draw Chinese with it.
# A CJK_FONT_PATH of your own skips it.
fonts:
	@[ -n "$$CJK_FONT_PATH" ] || [ -f /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc ] || { \
	  echo "installing Debian's CJK fonts (fonts-noto-cjk)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends fonts-noto-cjk >/dev/null; }

# the page tests drive Debian's Chromium (Playwright's own browser download is unreachable here)
browser: fonts
	@command -v chromium >/dev/null || { \
	  echo "installing Debian's chromium for the page tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

infra:
	@# the broker jars and FerretDB are fetched/built in parallel the first time (no Python needed)
	@$(STACK) install kafka & k=$$!; $(STACK) install ferretdb & f=$$!; wait $$k && wait $$f

# the engine found first: docker (when its daemon answers), podman, buildah
images:
	@engine=; for e in docker podman buildah; do \
	  command -v $$e >/dev/null 2>&1 || continue; \
	  if [ $$e = docker ] && ! docker info >/dev/null 2>&1; then docker_down=1; continue; fi; \
	  engine=$$e; break; \
	done; \
	if [ -z "$$engine" ]; then \
	  echo "make images: no usable container engine found (looked for docker, podman and buildah)." >&2; \
	  if [ -n "$$docker_down" ]; then echo "  docker is installed, but its daemon does not answer: start it (systemctl start docker) or use podman." >&2; fi; \
	  echo "  Install one, e.g. 'apt-get install podman' (rootless, no daemon) or Docker Engine, and run 'make images' again," >&2; \
	  echo "  or build on a machine or CI job that has one: docker build -t $(IMAGE) ." >&2; \
	  exit 1; \
	fi; \
	echo "$$engine build -t $(IMAGE) -f Dockerfile ."; \
	$$engine build -t $(IMAGE) -f Dockerfile . && \
	  echo "built $(IMAGE); push it to your registry and set image.* in your values (docs/deploy.md)"

# ---- run ----

run: protos web infra fonts
	@$(STACK) start
	@trap '$(STACK) stop' EXIT; eval "$$($(STACK) env)"; $(PY) infra/local/launcher.py run

up: protos web infra fonts
	@$(STACK) start
	@eval "$$($(STACK) env)"; $(PY) infra/local/launcher.py start

down:
	@test -x $(PY) && $(PY) infra/local/launcher.py stop || true
	@$(STACK) stop

# the local stack's data (the `make run` one, or WENMING_DATA's); production: docs/deploy.md
backup restore: deps
	@test -n "$(BACKUP)" || { echo "make $@: name the backup directory, BACKUP=<dir>" >&2; exit 2; }
	@$(STACK) $@ "$(BACKUP)"

# ---- test ----

# The tools start building first; then the tests without servers run while the app, the browser and
# the broker and database are fetched and built side by side (on a fresh machine the FerretDB build
# alone takes minutes): a broken rule fails the run as soon as the venv is there.
test: test-tools
	@[ $(TEST_WORKERS) -le 3 ] || { echo "make test: TEST_WORKERS is at most 3 (the serial tests take the slot's fourth lane)" >&2; exit 2; }
	@$(MAKE) --no-print-directory -j4 --output-sync=target unit-first web browser infra
	@$(TEST_ENV) $(STACK) stop >/dev/null 2>&1 || true; $(SERIAL_ENV) $(STACK) stop >/dev/null 2>&1 || true
	@rm -rf $(TEST_DATA) $(SERIAL_DATA)
	@$(TEST_ENV) $(STACK) start & shared=$$!; $(SERIAL_ENV) $(STACK) start & own=$$!; \
	  wait $$shared; started=$$?; wait $$own && exit $$started
	@trap '$(TEST_ENV) $(STACK) stop; $(SERIAL_ENV) $(STACK) stop' EXIT; \
	  ( eval "$$($(SERIAL_ENV) $(STACK) env)"; export $(SERIAL_ENV); \
	    $(PY) -m pytest -m serial --ignore=$(UNIT_TESTS) --junitxml=$(TEST_DATA)/serial.xml $(PYTEST_ARGS) \
	      > $(SERIAL_DATA)/pytest.log 2>&1 ) & serial_run=$$!; \
	  eval "$$($(TEST_ENV) $(STACK) env)"; export $(TEST_ENV) WENMING_TOOLS_STATUS=$(TOOLS_STATUS); \
	  $(PY) -m pytest -n $(TEST_WORKERS) --dist loadscope -m "not serial" --ignore=$(UNIT_TESTS) --junitxml=$(TEST_DATA)/parallel.xml $(PYTEST_ARGS); parallel=$$?; \
	  wait $$serial_run; serial=$$?; echo "---- the serial tests, on their own broker and database ----"; cat $(SERIAL_DATA)/pytest.log; \
	  [ $$serial -eq 5 ] && serial=0; [ $$parallel -eq 5 ] && parallel=0; \
	  exit $$(( parallel > serial ? parallel : serial ))

# seeded faults under order traffic, one line per fault and one overall (tests/chaos); then a
# rolling restart of every gRPC service under load (make test replaces two of them)
chaos: protos infra fonts
	@$(CHAOS_ENV) $(STACK) stop >/dev/null 2>&1 || true
	@rm -rf $(CHAOS_DATA)
	@$(CHAOS_ENV) $(STACK) start
	@trap '$(CHAOS_ENV) $(STACK) stop' EXIT; eval "$$($(CHAOS_ENV) $(STACK) env)"; export $(CHAOS_ENV); \
	  $(PY) -m tests.chaos $(CHAOS_ARGS) && \
	  ROLLING_RESTART_SERVICES=all $(PY) -m pytest -n 0 -q -s tests/kit/test_rolling_restart.py

# every test that needs no server (tests/unit/conftest.py): seconds, with the virtualenv alone
# The command-line checkers (helm, grpcurl, ghz, buf, protoc-gen-go, promtool) are needed only by
# the tests that run last, and most are Go builds of minutes: they start before anything else, in
# the background at a lower priority than the setup and the tests, each one's outcome in
# $(TOOLS_STATUS) (tests/support/tools.py waits for it).
test-tools:
	@mkdir -p $(TOOLS_STATUS) && ( nice -n 10 $(STACK) tools $(TOOLS_STATUS) >/dev/null 2>&1 & )

test-unit: protos fonts
	$(PY) -m pytest $(UNIT_TESTS) $(PYTEST_ARGS)

# make test's first step: all of them, whatever PYTEST_ARGS names for the rest
unit-first: protos fonts
	@$(PY) -m pytest -q $(UNIT_TESTS)

bench: protos infra fonts
	@$(TEST_ENV) $(STACK) start
	@trap '$(TEST_ENV) $(STACK) stop' EXIT; eval "$$($(TEST_ENV) $(STACK) env)"; export $(TEST_ENV); \
	  export SCALE_ENV="$(SCALE_ENV)"; $(PY) -m tests.bench $(BENCH_ARGS)

# python -m infra.local.seed_scale on the scale stack; SEED_ARGS="--fraction 0.01" for a smaller district
seed-scale: protos infra fonts
	@$(SCALE_ENV) $(STACK) start
	@trap '$(SCALE_ENV) $(STACK) stop' EXIT; eval "$$($(SCALE_ENV) $(STACK) env)"; export $(SCALE_ENV); \
	  $(PY) -m infra.local.seed_scale $(SEED_ARGS)

# docs/screenshots from a running `make up` stack (the demo district)
screenshots: deps browser
	$(PY) -m tests.app.demo_screenshots

# ruff (with the complexity limits), mypy, and the contract's buf lint and buf breaking
lint: deps typecheck
	$(VENV)/bin/ruff check services tests infra
	@$(STACK) install buf
	$(BUF) lint
	$(BUF) breaking --against $(CONTRACT_BASELINE)

# mypy as pyproject.toml sets it: strict on the kit (services/common), the default checks on the
# services except the modules listed there as not yet clean; generated code only through its stubs
typecheck: protos
	$(VENV)/bin/mypy

# after a release: make contract-baseline CONTRACT_RELEASE=0.2.0 REF=<the released commit>
contract-baseline:
	@test -n "$(REF)" || { echo "make contract-baseline: name the released commit, REF=<commit>" >&2; exit 2; }
	@$(STACK) install buf
	@tmp=$$(mktemp -d) && git archive "$(REF)" protos | tar -x -C $$tmp && mkdir -p contract-baseline && \
	  $(BUF) build $$tmp/protos --exclude-source-info -o $(CONTRACT_BASELINE) && rm -rf $$tmp && \
	  echo "wrote $(CONTRACT_BASELINE) from $(REF)"

clean:
	rm -rf build .data/test*
