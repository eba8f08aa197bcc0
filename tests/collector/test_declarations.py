"""What is emitted equals what is declared: names, instruments, units, attribute keys."""

from pathlib import Path

import pytest
from opentelemetry.sdk.metrics.export import Gauge, InMemoryMetricReader, Sum
from opentelemetry.sdk.resources import Resource

from collector.agent import build_provider
from collector.naming import PER_UNIT_WORDS, UNIT_WORDS, prometheus_name
from collector.render import metrics_markdown, naming_markdown
from collector.sources import declared_metrics
from collector.spec import Instrument, MetricSpec
from collector.usage import uses

REPO = Path(__file__).parents[2]
DOCS = REPO / "docs"


def test_every_declared_metric_is_emitted_with_exactly_its_declared_attributes(collect_everything):
    fixture, top = collect_everything
    discovered = {spec.name for source in fixture.sources for spec in source.discovered_metrics()}
    assert discovered == {"backup_runs", "backup_last_success_timestamp_seconds", "backup_size_bytes",
                          "backup_duration_seconds_bucket", "backup_duration_seconds_sum",
                          "backup_duration_seconds_count", "raid_degraded"}
    # (source, point), without the discovered metrics: their labels are the files' (test_textfile)
    emitted = [(source.name, p) for source in fixture.sources for p in fixture.latest(source.name)
               if p.metric not in discovered] + [("top_processes", p) for p in top.collect()]
    declared = {(source, spec.name): spec for source, spec in declared_metrics()}
    assert {(source, p.metric) for source, p in emitted} == set(declared)
    for source, point in emitted:
        spec = declared[source, point.metric]
        keys = set(point.attributes)
        assert set(spec.attributes) - {"network.connection.state"} <= keys, point
        assert keys <= set(spec.attributes) | set(spec.optional_attributes), point


def test_each_metric_is_declared_once_per_source_and_alike_by_every_source():
    declared = [(source, spec.name) for source, spec in declared_metrics()]
    assert len(declared) == len(set(declared))
    assert all(spec.description for _, spec in declared_metrics())
    # top_processes and process_groups share process.* metrics (per pid, per group): one instrument serves both.
    kinds = {(spec.name, spec.instrument, spec.unit) for _, spec in declared_metrics()}
    assert len(kinds) == len({spec.name for _, spec in declared_metrics()})


KIND = {Instrument.COUNTER: (Sum, True), Instrument.UPDOWNCOUNTER: (Sum, False), Instrument.GAUGE: (Gauge, None)}


def test_the_sdk_receives_each_metric_with_its_declared_instrument_and_unit(collect_everything):
    fixture, _ = collect_everything
    reader = InMemoryMetricReader()
    provider = build_provider(Resource.create(), reader, fixture)
    specs = fixture.specs()  # declared and discovered (textfile)
    metrics = {m.name: m for rm in reader.get_metrics_data().resource_metrics
               for sm in rm.scope_metrics for m in sm.metrics}
    assert set(metrics) == {spec.name for spec in specs}
    for spec in specs:
        metric = metrics[spec.name]
        kind, monotonic = KIND[spec.instrument]
        assert isinstance(metric.data, kind), spec.name
        assert metric.unit == spec.unit and metric.description == spec.description
        if kind is Sum:
            assert metric.data.is_monotonic is monotonic, spec.name
    memory = {dict(p.attributes)["system.memory.state"]: p.value
              for p in metrics["system.memory.usage"].data.data_points}
    assert sum(memory.values()) == 8_000_000 * 1024
    provider.shutdown()


@pytest.mark.parametrize("otlp, prometheus", [
    ("system.cpu.time", "system_cpu_time_seconds_total"),
    ("system.cpu.utilization", "system_cpu_utilization_ratio"),
    ("system.memory.usage", "system_memory_usage_bytes"),
    ("system.cpu.logical.count", "system_cpu_logical_count"),
    ("system.network.packet.count", "system_network_packet_count_total"),
    ("system.cpu.load_average.1m", "system_cpu_load_average_1m"),
    ("system.uptime", "system_uptime_seconds"),
    ("hw.temperature", "hw_temperature_celsius"),
    ("system.filesystem.inodes.usage", "system_filesystem_inodes_usage"),
    ("system.cpu.linux.pressure.total", "system_cpu_linux_pressure_seconds_total"),
    ("system.cpu.linux.pressure.10s", "system_cpu_linux_pressure_10s_ratio"),
])
def test_prometheus_names_follow_the_translation_rules(otlp, prometheus):
    spec = next(spec for _, spec in declared_metrics() if spec.name == otlp)
    assert prometheus_name(spec) == prometheus


# Names no source declares yet, for the rules a new declaration would meet (otlptranslator v1.0.0's normalizeName).
@pytest.mark.parametrize("otlp, unit, instrument, prometheus", [
    ("queue.seconds.age", "s", Instrument.GAUGE, "queue_seconds_age"),
    ("cpu.busy", "us", Instrument.COUNTER, "cpu_busy_microseconds_total"),
    ("requests.total.served", "{request}", Instrument.COUNTER, "requests_served_total"),
    ("cache.ratio.hits", "1", Instrument.GAUGE, "cache_hits_ratio"),
    ("queue.fill", "1", Instrument.UPDOWNCOUNTER, "queue_fill"),
    ("link.throughput", "By/s", Instrument.GAUGE, "link_throughput_bytes_per_second"),
    ("interrupts.rate", "1/s", Instrument.GAUGE, "interrupts_rate_per_second"),
    ("volume.usage", "%", Instrument.GAUGE, "volume_usage_percent"),
    ("9p.reads--done", "{read}", Instrument.COUNTER, "_9p_reads_done_total"),
    ("battery.charge", "mAh", Instrument.GAUGE, "battery_charge_mAh"),
    # any brace makes the unit an annotation, wherever it stands (strings.ContainsAny(unit, "{}"))
    ("link.sent", "By{sent}", Instrument.COUNTER, "link_sent_total"),
    ("link.received", "By}", Instrument.UPDOWNCOUNTER, "link_received"),
])
def test_prometheus_names_of_names_yet_to_be_declared(otlp, unit, instrument, prometheus):
    assert prometheus_name(MetricSpec(otlp, instrument, unit, "")) == prometheus


# otlptranslator v1.0.0's unitMap and perUnitMap (unit_namer.go), written out here rather than read from naming.py.
UNIT_WORDS_UPSTREAM = {
    "d": "days", "h": "hours", "min": "minutes", "s": "seconds", "ms": "milliseconds", "us": "microseconds",
    "ns": "nanoseconds", "By": "bytes", "KiBy": "kibibytes", "MiBy": "mebibytes", "GiBy": "gibibytes",
    "TiBy": "tibibytes", "KBy": "kilobytes", "MBy": "megabytes", "GBy": "gigabytes", "TBy": "terabytes",
    "m": "meters", "V": "volts", "A": "amperes", "J": "joules", "W": "watts", "g": "grams", "Cel": "celsius",
    "Hz": "hertz", "1": "", "%": "percent",
}
PER_UNIT_WORDS_UPSTREAM = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week", "mo": "month",
                           "y": "year"}


def test_the_unit_tables_are_the_translator_s():
    assert (set(UNIT_WORDS), set(PER_UNIT_WORDS)) == (set(UNIT_WORDS_UPSTREAM), set(PER_UNIT_WORDS_UPSTREAM))


@pytest.mark.parametrize("unit, word", UNIT_WORDS_UPSTREAM.items())
def test_each_unit_adds_the_translator_s_word(unit, word):
    spec = MetricSpec("queue.depth", Instrument.UPDOWNCOUNTER, unit, "")
    assert prometheus_name(spec) == "_".join(filter(None, ["queue_depth", word]))


@pytest.mark.parametrize("unit, word", PER_UNIT_WORDS_UPSTREAM.items())
def test_each_per_unit_adds_the_translator_s_word(unit, word):
    spec = MetricSpec("queue.inflow", Instrument.GAUGE, f"By/{unit}", "")
    assert prometheus_name(spec) == f"queue_inflow_bytes_per_{word}"


def metrics_reference(declared) -> str:
    return metrics_markdown(declared, uses(REPO / "rules", REPO / "grafana" / "dashboards"))


@pytest.mark.parametrize("document, render", [("metrics.md", metrics_reference), ("naming.md", naming_markdown)])
def test_generated_docs_are_up_to_date(document, render):
    expected = render(declared_metrics()).strip()
    assert (DOCS / document).read_text().strip() == expected, \
        f"docs/{document} is stale: regenerate with `make docs`"


def test_no_two_points_of_a_metric_share_their_attributes(collect_everything):
    fixture, top = collect_everything
    keys = [(p.metric, tuple(sorted(p.attributes.items()))) for p in fixture.points() + top.collect()]
    assert len(keys) == len(set(keys)), "points with equal attributes would be merged by the SDK"
