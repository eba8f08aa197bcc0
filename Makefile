# make run   — set everything up and run the agent feeding the local pipeline (Ctrl-C stops it all)
# make test  — set everything up and pass the whole suite (what CI runs)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: test lint run soak backends otelcol viewer chromium screenshots grafana-schema semconv-model docs dashboards rules bench venv clean mutation

# A virtualenv at $(2) made by the interpreter $(1), with the agent (editable) and everything the tests use.
# The tools (pipeline, rules, bench, viewer; dashgen in grafana/) come from the working tree: the agent's
# distribution leaves them out (pyproject.toml).
define make-venv
	$(1) -m venv $(2)
	$(2)/bin/python -m pip install -q --upgrade pip
	$(2)/bin/python -m pip install -q -e '.[test]'
	printf '%s\n' "$(CURDIR)" "$(CURDIR)/grafana" > "$$($(2)/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/hostagent-tools.pth"
	touch $(2)/.installed
endef

$(VENV)/.installed: pyproject.toml
	$(call make-venv,$(PYTHON),$(VENV))

venv: $(VENV)/.installed

# Prometheus, Alertmanager, VictoriaMetrics, vmagent, vmalert, node_exporter: Debian trixie packages
# unpacked into .cache/backends (the system's apt setup is not touched).
backends: venv
	$(PY) -m pipeline.backends

# The project's OpenTelemetry Collector distribution (otel-config/builder-config.yaml), built with Go into
# .cache/otelcol/ once per manifest: a no-op while the manifest is unchanged.
otelcol: venv
	$(PY) -m pipeline.otelcol

# The dashboard viewer's browser libraries (uPlot, marked) and the browser tests' driver (playwright-core), from
# npm at the versions viewer/package-lock.json pins.
viewer/node_modules/.package-lock.json: viewer/package.json viewer/package-lock.json
	npm ci --prefix viewer --no-audit --no-fund

viewer: viewer/node_modules/.package-lock.json

# Debian's Chromium for the browser tests (tests/ui/); playwright-core downloads no browser of its own here.
chromium:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] || { echo "install Debian's chromium (apt-get install chromium) as root" >&2; exit 1; }; \
		apt-get update -q && apt-get install -y -q --no-install-recommends chromium; }

# Screenshots of every dashboard in the viewer, against a stack the browser test starts, into docs/screenshots/.
screenshots: venv backends otelcol viewer chromium
	VIEWER_SCREENSHOTS=docs/screenshots $(PY) -m pytest -q tests/ui/test_viewer.py -k every_panel

# Grafana's dashboard schema (@grafana/schema + TypeScript, from the npm registry) for the dashboard type-check.
grafana-schema: venv
	$(PY) -m dashgen.schema install

# opentelemetry-semantic-conventions of the model the agent follows, unpacked into .cache/semconv-model/ on its own
# (the venv's comes with the unpinned SDK and follows its releases): tests/collector/test_semconv_package.py.
SEMCONV_PACKAGE := $(shell sed -n 's/^PACKAGE_OF_VERSION = "\(.*\)"/\1/p' tests/collector/semconv.py)
SEMCONV_MODEL := .cache/semconv-model/$(SEMCONV_PACKAGE)
$(SEMCONV_MODEL)/.installed: tests/collector/semconv.py | venv
	$(PY) -m pip install -q --no-deps --target $(SEMCONV_MODEL) 'opentelemetry-semantic-conventions==$(SEMCONV_PACKAGE)'
	touch $@

semconv-model: $(SEMCONV_MODEL)/.installed

test: lint venv backends otelcol grafana-schema semconv-model viewer chromium
	$(PY) -m pytest

# The lint gate: ruff with the rule set in pyproject.toml ([tool.ruff]), over the whole repository.
lint: venv
	$(VENV)/bin/ruff check .

run: venv backends otelcol viewer
	$(PY) -m pipeline.run

# Regenerate the metric reference (with the rules and panels that read each metric) and the naming contract from
# the declarations in collector/sources/.
docs: venv
	$(VENV)/bin/collector sources --format markdown --used-by rules grafana/dashboards > docs/metrics.md
	$(VENV)/bin/collector sources --format naming > docs/naming.md

# Regenerate grafana/dashboards/*.json from grafana/dashgen/, then lint and type-check them.
dashboards: grafana-schema
	$(PY) -m dashgen
	$(PY) -m dashgen.lint grafana/dashboards/*.json
	$(PY) -m dashgen.schema grafana/dashboards/*.json

# Re-render rules/*.rules.yml from rules/src/ and rules/thresholds.yml and the timing tests and table from
# rules/timing.py, then check and unit-test them on promtool and vmalert-tool (docs/alerting-rules.md).
rules: venv backends
	$(PY) -m rules.build
	$(PY) -m rules.timing
	$(PY) -m rules.check

# The agent at 1 s through the real pipeline while the gateway is stopped, frozen and restarted on a schedule;
# not part of `make test`. SOAK_DURATION=10m for a shorter run (docs/reliability.md, "Soak").
SOAK_DURATION ?= 1h
soak: venv backends otelcol
	$(PY) -m pipeline.soak --duration $(SOAK_DURATION)

# The benchmark runs on the interpreter the agent is deployed on: the system's python3, as the systemd unit's
# virtualenv is made (docs/deploy.md), built with PGO and LTO like the container image's. pyenv builds without
# them by default; such an interpreter runs the agent ~15 % slower (docs/benchmarks.md, "The interpreter").
DEPLOY_PYTHON ?= /usr/bin/python3
BENCH_VENV := .cache/bench-venv

$(BENCH_VENV)/.installed: pyproject.toml
	@test -x $(DEPLOY_PYTHON) || { echo "no $(DEPLOY_PYTHON): make bench DEPLOY_PYTHON=<the interpreter the agent is deployed on>" >&2; exit 1; }
	$(call make-venv,$(DEPLOY_PYTHON),$(BENCH_VENV))

bench: venv backends otelcol $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python -m bench

# Mutation testing with mutmut (docs/testing.md), one module of collector/ at a time (MUTATE=config for one),
# with the fast tests; not part of make test. Results stay in mutants/ (`.venv/bin/mutmut results`).
MUTATE ?= sources backlog config exporter transport units agent collection health host instruments naming problems \
	render resource spec telemetry cli
mutation: venv
	$(PY) -m pip install -q -e '.[mutation]'
	# mutmut copies tests/ following symbolic links; the fixture tree's sysfs links must stay links
	mkdir -p mutants && cp -a tests mutants/
	for module in $(MUTATE); do \
		HYPOTHESIS_PROFILE=mutation $(VENV)/bin/mutmut run --max-children 1 "collector.$$module.*" || exit 1; \
	done
	$(VENV)/bin/mutmut results

clean:
	rm -rf $(VENV) .pytest_cache
