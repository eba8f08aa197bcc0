# make run   — set everything up and run the agent feeding the local pipeline (Ctrl-C stops it all)
# make test  — set everything up and pass the whole suite (what CI runs)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: test run soak backends grafana-schema docs dashboards rules bench venv clean

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

# The agent at 1 s through the real pipeline while the gateway is stopped, frozen and restarted on a schedule;
# not part of `make test`. SOAK_DURATION=10m for a shorter run (docs/reliability.md, "Soak").
SOAK_DURATION ?= 1h
soak: venv backends
	$(PY) -m pipeline.soak --duration $(SOAK_DURATION)

bench: venv backends
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache
