# The two commands (see README.md):
#   make compare   set everything up, then run the SQLite-vs-Kafka comparison (the main job)
#   make test      set everything up, then lint, type-check and run the test suite
# Everything is installed by these targets: the venv, Apache Kafka's jars (Maven Central),
# and the Litestream and Toxiproxy binaries (go install), into .venv and $(CACHE).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
CACHE  ?= $(HOME)/.cache/sqlitequeue
export SQLITEQUEUE_CACHE := $(CACHE)
# Extra arguments for the main job, e.g. make compare ARGS=--quick
ARGS   ?=

.PHONY: setup venv kafka litestream toxiproxy compare quick reference test lint pytest lab clean

setup: venv kafka litestream toxiproxy

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[all]'
	touch $@

kafka: venv
	$(PY) -m sqlitequeue kafka install

litestream:
	bash tools/install_litestream.sh

toxiproxy:
	bash tools/install_toxiproxy.sh

compare: setup
	$(PY) -m sqlitequeue bench compare $(ARGS)

quick: setup
	$(PY) -m sqlitequeue bench compare --quick $(ARGS)

# The committed reference runs behind README.md's results section (about 2 hours on 2
# cores: the comparison, 6 backends x 3 repeats, takes about 45 minutes; the network and
# gateway runs, the failure lab, Locust, fairness and bench queue the rest).
# The report is written again once the failure lab has run, so its verdict has every figure.
reference: setup
	rm -rf results/reference results/reference-faults results/reference-locust results/reference-fairness results/reference-network results/reference-gateway results/.tmp
	$(PY) -m sqlitequeue bench compare --run-id reference
	$(PY) -m sqlitequeue bench compare --run-id reference-network --workloads steady-1kb,seed-clickstream \
		--backends sqlite-queue,sqlite-stream,kafka-confluent,kafka-confluent@cross-az,kafka-managed@cross-az \
		--repeats 2 --no-selfcheck
	$(PY) -m sqlitequeue bench compare --run-id reference-gateway --workloads steady-1kb,seed-clickstream,max-rate-1kb \
		--backends sqlite-stream,gateway-confluent,kafka-confluent --repeats 2 --no-selfcheck
	$(PY) -m sqlitequeue bench faults --out results/.tmp
	mv results/.tmp/* results/reference-faults
	$(PY) -m sqlitequeue bench locust --backend sqlite-queue,sqlite-stream,kafka,kafka-confluent --run-time 60 --out results/.tmp
	mv results/.tmp/* results/reference-locust
	$(PY) -m sqlitequeue bench fairness --out results/.tmp
	mv results/.tmp/* results/reference-fairness && rmdir results/.tmp
	$(PY) -m sqlitequeue decide examples/profiles/seed.yaml --results results/reference --results results/reference-faults --results results/reference-network
	$(PY) -m sqlitequeue bench report results/reference
	$(PY) -m sqlitequeue bench queue > results/reference-queue.txt
	$(PY) tools/render_docs.py

test: setup lint pytest

lint: venv
	$(VENV)/bin/ruff check sqlitequeue tests loadtests tools
	$(VENV)/bin/ruff format --check sqlitequeue tests loadtests tools
	$(VENV)/bin/mypy

pytest: venv
	$(VENV)/bin/pytest -q

# JupyterLab on notebooks/, for any user: root needs --allow-root, and a Linux machine without
# a display gets no browser (open the URL it prints).
LAB_FLAGS := $(if $(filter 0,$(shell id -u)),--allow-root) \
	$(if $(filter Linux,$(shell uname -s)),$(if $(DISPLAY)$(WAYLAND_DISPLAY),,--no-browser))

lab: setup
	$(VENV)/bin/jupyter lab $(LAB_FLAGS) notebooks/

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
