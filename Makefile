# make run   — set everything up and run the agent feeding the local pipeline (Ctrl-C stops it all)
# make test  — set everything up and pass the whole suite (what CI runs)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: test run backends grafana-schema docs dashboards rules bench venv clean mutation

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

# Prometheus, Alertmanager, VictoriaMetrics, vmagent, vmalert, node_exporter: Debian trixie packages
# unpacked into .cache/backends (the system's apt setup is not touched).
backends: venv
	$(PY) -m pipeline.backends

# Grafana's dashboard schema (@grafana/schema + TypeScript, from the npm registry) for the dashboard type-check.
grafana-schema: venv
	PYTHONPATH=grafana $(PY) -m dashgen.schema install

test: venv backends grafana-schema
	$(PY) -m pytest

run: venv backends
	$(PY) -m pipeline.run

# Regenerate the metric reference and the naming contract from the declarations in collector/sources/.
docs: venv
	$(VENV)/bin/collector sources --format markdown > docs/metrics.md
	$(VENV)/bin/collector sources --format naming > docs/naming.md

# Regenerate grafana/dashboards/*.json from grafana/dashgen/, then lint and type-check them.
dashboards: grafana-schema
	cd grafana && ../$(PY) -m dashgen
	PYTHONPATH=grafana $(PY) -m dashgen.lint grafana/dashboards/*.json
	PYTHONPATH=grafana $(PY) -m dashgen.schema grafana/dashboards/*.json

# Re-render rules/*.rules.yml from rules/src/ and rules/thresholds.yml, then check and unit-test them on
# promtool and vmalert-tool (docs/alerting-rules.md).
rules: venv backends
	$(PY) -m rules.build
	$(PY) -m rules.check

bench: venv backends
	$(PY) -m bench

# Mutation testing with mutmut (docs/testing.md), one module of collector/ at a time (MUTATE=config for one),
# with the fast tests; not part of make test. Results stay in mutants/ (`.venv/bin/mutmut results`).
MUTATE ?= sources backlog config exporter transport units agent collection health host instruments naming problems \
	render resource spec telemetry cli
mutation: venv
	$(PY) -m pip install -q -e '.[mutation]'
	for module in $(MUTATE); do \
		HYPOTHESIS_PROFILE=mutation $(VENV)/bin/mutmut run --max-children 1 "collector.$$module.*" || exit 1; \
	done
	$(VENV)/bin/mutmut results

clean:
	rm -rf $(VENV) .pytest_cache
