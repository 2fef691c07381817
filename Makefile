# The two commands: `make run` (the service on http://127.0.0.1:8888) and `make test`.
# Both install what they need first and find (or start) MariaDB and Redis.

VENV     := .venv
# The venv's interpreter: the system's CPython when it is 3.11 or newer and can make a venv
# (Debian builds it with PGO and LTO, libpython linked in), else the first python3 on the PATH.
# On a build without those (pyenv's, say) the server spends about a sixth more CPU on each
# grab (bench/README.md). Looked for only when the venv is made (`=`, not `:=`).
BASE_PY   = $(or $(firstword $(foreach p,/usr/bin/python3 python3,$(shell $(p) -c \
              'import sys, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && echo $(p)))),python3)
PY       := $(VENV)/bin/python
SERVICES := eval "$$($(PY) tools/services.py up)"
PORT     ?= 8888

.PHONY: install chromium run test bench siege chaos cluster services-down clean

install: $(VENV)/.installed node_modules/.package-lock.json chromium

$(VENV)/.installed: setup.py
	$(BASE_PY) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check 'setuptools<81' wheel
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

# The browser client's one library (@msgpack/msgpack), served from node_modules/ by the app, and
# the JS client package (clients/js, an npm workspace of package.json: its dependencies land in
# the same node_modules/). npm writes node_modules/.package-lock.json; touching it keeps it newer
# than the package files. Without npm the page still works over rp.v1.json, so that is a warning,
# not a failure (tests/test_js_client.py skips then and says why).
node_modules/.package-lock.json: package.json package-lock.json clients/js/package.json
	@if command -v npm >/dev/null; then npm install --no-audit --no-fund && touch $@; \
	else echo "install: no npm; the browser client will speak rp.v1.json" >&2; fi

# The browser tests drive Debian's Chromium (never a downloaded build), and its screenshots need a
# Chinese font. Installed where missing and we are root; elsewhere those tests skip and say why.
chromium:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    { [ ! -x /usr/bin/chromium ] || [ -z "$$(fc-list :lang=zh 2>/dev/null)" ]; }; then \
	  echo "install: Debian's chromium and a Chinese font for the browser tests" >&2; \
	  apt-get update -q >&2 && apt-get install -y -q chromium fonts-wqy-microhei >&2 || \
	  echo "install: chromium could not be installed; the browser tests will skip" >&2; \
	fi

run: install
	@$(SERVICES) && $(VENV)/bin/rtserver migrate && \
	  exec $(VENV)/bin/rtserver serve --dev --port=$(PORT)

# The layers first (.importlinter): an import against them fails the run before any test.
test: install
	@$(VENV)/bin/lint-imports --no-cache --no-logo && $(SERVICES) && $(PY) -m pytest $(PYTEST_ARGS)

# Not part of `make test`: a real server under load, against ceilings taken in the same run.
bench: install $(VENV)/.bench-installed
	@$(SERVICES) && $(PY) -m bench.run $(BENCH_ARGS)

# Not part of `make test` either: ordinary clients' service while one user attacks the server.
siege: install $(VENV)/.bench-installed
	@$(SERVICES) && $(PY) -m bench.siege $(SIEGE_ARGS)

# Not part of `make test` (but for a short run of it, tests/test_chaos.py): two nodes, the jobs
# runner, a MariaDB and a Redis of its own under ./var, broken on a schedule drawn from the seed,
# then checked. The SERVICES are bench's prerequisites; the soak itself starts its own world.
chaos: install $(VENV)/.bench-installed
	@$(SERVICES) && $(PY) -m bench.chaos $(CHAOS_ARGS)

$(VENV)/.bench-installed: setup.py
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[test,bench]'
	touch $@

# A local 3-master Redis Cluster under ./var and two rtserver nodes on it (8888 and 8889).
cluster: install
	@$(SERVICES) && $(PY) tools/cluster.py try var/cluster

services-down:
	@$(PY) tools/services.py down

clean: services-down
	rm -rf $(VENV) var *.egg-info node_modules
