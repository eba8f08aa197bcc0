"""The textfile source: *.prom files of the fixture tree, with malformed, conflicting and half-written files."""

import logging
import math
import os
import shutil
import signal
import subprocess
import sys

import pytest
from opentelemetry.sdk.metrics.export import Gauge, InMemoryMetricReader, Sum
from opentelemetry.sdk.resources import Resource

from collector.agent import build_provider
from collector.collection import Collection
from collector.host import Host
from collector.naming import prometheus_name
from collector.sources.base import PartialFailure, Unavailable
from collector.sources.prometheus_text import format_float, parse
from collector.sources.textfile import TextfileOptions, TextfileSource
from collector.spec import Instrument
from collector.telemetry import AgentTelemetry
from pipeline.otlp_receiver import OtlpReceiver
from pipeline.stack import free_port
from tests.collector.conftest import FIXTURE_ROOT
from tests.collector.test_cli import agent_environment, wait_until

DIRECTORY = "/var/lib/node_exporter/textfile_collector"
MTIME = 1_764_590_000


@pytest.fixture
def root(tmp_path):
    root = shutil.copytree(FIXTURE_ROOT, tmp_path / "hostfs")
    for path in (root / DIRECTORY.lstrip("/")).iterdir():
        os.utime(path, (MTIME, MTIME))
    return root


def collect(root, **options):
    source = TextfileSource(Host(root), TextfileOptions(enabled=True, **options))
    with pytest.raises(PartialFailure) as partial:
        source.collect()
    return source, partial.value


def series(points, metric):
    return {tuple(sorted(p.attributes.items())): p.value for p in points if p.metric == metric}


def test_each_family_becomes_its_instrument_with_labels_as_attributes(root):
    source, partial = collect(root)
    points = partial.points
    assert series(points, "backup_runs") == {(("outcome", "success"),): 41, (("outcome", "failure"),): 2}
    assert series(points, "backup_last_success_timestamp_seconds") == {(): 1764590400}
    assert series(points, "backup_size_bytes") == {(("path", '/srv/a "b"'), ("volume", "db")): 5.5e9}
    assert series(points, "backup_duration_seconds_bucket") == {(("le", "60"),): 30, (("le", "+Inf"),): 43}
    assert series(points, "backup_duration_seconds_sum") == {(): 2150.5}
    assert series(points, "backup_duration_seconds_count") == {(): 43}
    assert series(points, "raid_degraded") == {(): 0}
    specs = {spec.name: spec for spec in source.discovered_metrics()}
    assert {name: (spec.instrument, spec.unit) for name, spec in specs.items()} == {
        "backup_runs": (Instrument.COUNTER, ""),
        "backup_last_success_timestamp_seconds": (Instrument.GAUGE, "s"),
        "backup_size_bytes": (Instrument.GAUGE, "By"),
        "backup_duration_seconds_bucket": (Instrument.GAUGE, ""),
        "backup_duration_seconds_sum": (Instrument.GAUGE, ""),
        "backup_duration_seconds_count": (Instrument.GAUGE, ""),
        "raid_degraded": (Instrument.GAUGE, ""),
    }
    assert specs["backup_runs"].description == "Backup runs by outcome."
    assert {spec.condition for spec in specs.values()} == {"when a *.prom file of the textfile directory has it"}
    # Through either gateway each series keeps the name it has in the file.
    assert {prometheus_name(spec) for spec in specs.values()} == {
        "backup_runs_total", "backup_last_success_timestamp_seconds", "backup_size_bytes",
        "backup_duration_seconds_bucket", "backup_duration_seconds_sum", "backup_duration_seconds_count",
        "raid_degraded"}


@pytest.mark.parametrize("text, names", [
    # node_exporter serves jobs_processed: the gateways add _total to every counter (collector/naming.py)
    ("# TYPE jobs_processed counter\njobs_processed 42\n", {"jobs_processed_total"}),
    ("# TYPE jobs_processed_total counter\njobs_processed_total 42\n", {"jobs_processed_total"}),
    ("# TYPE jobs_processed counter\njobs_processed_total 42\n", {"jobs_processed_total"}),
    ("# TYPE wait_total_seconds counter\nwait_total_seconds 1\n", {"wait_seconds_total"}),
    ("# TYPE queue__depth_ gauge\nqueue__depth_ 1\n", {"queue_depth"}),
    ("# TYPE jobs_total gauge\njobs_total 1\n# TYPE wait_seconds gauge\nwait_seconds 1\nraid 0\n",
     {"jobs_total", "wait_seconds", "raid"}),
    ('# TYPE d_seconds histogram\nd_seconds_bucket{le="1"} 1\nd_seconds_sum 1\nd_seconds_count 1\n',
     {"d_seconds_bucket", "d_seconds_sum", "d_seconds_count"}),
])
def test_names_through_the_gateways_are_the_files_but_for_total_on_counters_and_runs_of_underscores(
        tmp_path, text, names):
    (tmp_path / "a.prom").write_text(text)
    source = TextfileSource(Host("/"), TextfileOptions(enabled=True, directory=str(tmp_path)))
    source.collect()
    assert {prometheus_name(spec) for spec in source.discovered_metrics()} == names


def test_bad_files_are_skipped_whole_counted_and_named_and_half_written_files_never_read(root):
    _, partial = collect(root)
    assert str(partial) == (
        "skipped broken.prom: line 2: not a sample: 'apt_upgrades_pending{origin=\"debian\" 3'; "
        "conflict.prom: backup_runs is a gauge here, a counter elsewhere; "
        "stamped.prom: line 1: smart_healthy has a timestamp (not supported, as in node_exporter)")
    files = ["backup.prom", "broken.prom", "conflict.prom", "stamped.prom"]
    assert series(partial.points, "hostagent.textfile.mtime") == {(("file.name", f),): MTIME for f in files}
    assert series(partial.points, "hostagent.textfile.errors") == {
        (("file.name", "backup.prom"),): 0, (("file.name", "broken.prom"),): 1,
        (("file.name", "conflict.prom"),): 1, (("file.name", "stamped.prom"),): 1}
    assert not {p.metric for p in partial.points} & {"apt_upgrades_pending", "smart_healthy", "cron_half_written"}


def test_errors_count_every_collection_and_a_fixed_file_is_read_again(root):
    directory = root / DIRECTORY.lstrip("/")
    source = TextfileSource(Host(root), TextfileOptions(enabled=True))
    for _ in range(2):
        with pytest.raises(PartialFailure):
            source.collect()
    (directory / "broken.prom").write_text('apt_upgrades_pending{origin="debian"} 3\n')
    for name in ("conflict.prom", "stamped.prom"):
        (directory / name).unlink()
    points = source.collect()
    assert series(points, "apt_upgrades_pending") == {(("origin", "debian"),): 3}
    assert series(points, "hostagent.textfile.errors")[(("file.name", "broken.prom"),)] == 2


def test_the_same_series_in_two_files_and_reserved_labels_are_conflicts(tmp_path):
    (tmp_path / "a.prom").write_text("queue_depth 1\n")
    (tmp_path / "b.prom").write_text("queue_depth 2\n")
    (tmp_path / "c.prom").write_text('queue_size{instance="x"} 2\n')
    source = TextfileSource(Host("/"), TextfileOptions(enabled=True, directory=str(tmp_path)))
    with pytest.raises(PartialFailure) as partial:
        source.collect()
    assert str(partial.value) == ("skipped b.prom: queue_depth has a series already written by another file; "
                                  "c.prom: label instance of queue_size is reserved for the host's identity")
    assert series(partial.value.points, "queue_depth") == {(): 1}


def test_a_name_opentelemetry_refuses_skips_its_file_and_every_other_file_reaches_the_sdk(tmp_path, caplog):
    (tmp_path / "a.prom").write_text("job:requests:rate5m 3\n")
    (tmp_path / "b.prom").write_text("_private 1\n")
    (tmp_path / "c.prom").write_text("backup_last_success_seconds 1700000000\n")
    collection = Collection([TextfileSource(Host("/"), TextfileOptions(enabled=True, directory=str(tmp_path)))],
                            AgentTelemetry())
    reader = InMemoryMetricReader()
    provider = build_provider(Resource.create({}), reader, collection)
    with caplog.at_level(logging.WARNING, logger="collector.collection"):
        collection.refresh()
    exported = {m.name for rm in reader.get_metrics_data().resource_metrics for sm in rm.scope_metrics
                for m in sm.metrics}
    provider.shutdown()
    assert "backup_last_success_seconds" in exported and not exported & {"job:requests:rate5m", "_private"}
    assert collection.telemetry.sources["textfile"].outcomes == {"error": 1}
    assert [r.getMessage() for r in caplog.records] == [
        "source textfile: skipped a.prom: job:requests:rate5m is not a metric name OpenTelemetry takes (a letter, "
        "then at most 254 letters, digits and _ . - /); b.prom: _private is not a metric name OpenTelemetry takes "
        "(a letter, then at most 254 letters, digits and _ . - /)"]


def test_max_series_caps_whole_files(tmp_path):
    (tmp_path / "a.prom").write_text("".join(f'jobs{{n="{n}"}} {n}\n' for n in range(3)))
    (tmp_path / "b.prom").write_text("other 1\n")
    source = TextfileSource(Host("/"), TextfileOptions(enabled=True, directory=str(tmp_path), max_series=3))
    with pytest.raises(PartialFailure, match="b.prom: over max_series=3"):
        source.collect()


def test_a_missing_directory_is_unavailable_not_an_error(tmp_path):
    with pytest.raises(Unavailable) as unavailable:
        TextfileSource(Host(tmp_path), TextfileOptions(enabled=True)).collect()
    assert str(unavailable.value) == f"no directory {tmp_path}{DIRECTORY}"


def test_a_file_that_cannot_be_read_or_is_not_utf8_is_skipped_counted_and_the_next_ones_are_read(tmp_path):
    (tmp_path / "a.prom").symlink_to("/proc/self/mem")  # a regular file whose read fails (EIO)
    (tmp_path / "b.prom").write_bytes(b"x 1\n\xff\n")
    (tmp_path / "c.prom").write_text("y 2\n")
    _, partial = collect("/", directory=str(tmp_path))
    assert str(partial) == ("skipped a.prom: Input/output error; b.prom: 'utf-8' codec can't decode byte 0xff "
                            "in position 4: invalid start byte")
    assert series(partial.points, "y") == {(): 2} and series(partial.points, "x") == {}
    assert series(partial.points, "hostagent.textfile.errors") == {
        (("file.name", "a.prom"),): 1, (("file.name", "b.prom"),): 1, (("file.name", "c.prom"),): 0}
    # stat works where read does not: HostTextfileStale still sees an unreadable file's age
    assert series(partial.points, "hostagent.textfile.mtime").keys() == {
        (("file.name", "a.prom"),), (("file.name", "b.prom"),), (("file.name", "c.prom"),)}


def test_a_prom_entry_that_is_not_a_regular_file_is_skipped_unopened_counted_and_named(tmp_path):
    """A FIFO would block the collection if opened, /dev/zero would be read up to max_file_size: neither is opened.
    A directory named *.prom is no file and is left alone."""
    (tmp_path / "dangling.prom").symlink_to(tmp_path / "gone")
    (tmp_path / "loop1.prom").symlink_to("loop2.prom")
    (tmp_path / "loop2.prom").symlink_to("loop1.prom")
    os.mkfifo(tmp_path / "fifo.prom")
    (tmp_path / "zero.prom").symlink_to("/dev/zero")
    (tmp_path / "dir.prom").mkdir()
    (tmp_path / "good.prom").write_text("y 2\n")
    os.utime(tmp_path / "fifo.prom", (MTIME, MTIME))
    os.utime(tmp_path / "dangling.prom", (MTIME + 1, MTIME + 1), follow_symlinks=False)
    source, partial = collect("/", directory=str(tmp_path))
    assert str(partial) == ("skipped dangling.prom: dangling symlink; fifo.prom: not a regular file (a named pipe); "
                            "loop1.prom: symlink loop; loop2.prom: symlink loop; "
                            "zero.prom: not a regular file (a character device)")
    errors = {"dangling.prom": 1, "fifo.prom": 1, "good.prom": 0, "loop1.prom": 1,
              "loop2.prom": 1, "zero.prom": 1}
    assert series(partial.points, "hostagent.textfile.errors") == {
        (("file.name", name),): count for name, count in errors.items()}
    mtimes = {dict(key)["file.name"]: value
              for key, value in series(partial.points, "hostagent.textfile.mtime").items()}
    assert mtimes.keys() == errors.keys()
    assert (mtimes["fifo.prom"], mtimes["dangling.prom"]) == (MTIME, MTIME + 1)  # a broken link's is its own
    assert series(partial.points, "y") == {(): 2}


def test_summaries_become_gauges_per_series_and_families_of_one_file_must_agree(tmp_path):
    (tmp_path / "rpc.prom").write_text('# TYPE rpc summary\nrpc{quantile="0.5"} 0.2\nrpc_sum 10\nrpc_count 40\n')
    (tmp_path / "jobs.prom").write_text("# TYPE jobs_total counter\njobs_total 3\n# TYPE jobs gauge\njobs 1\n")
    source, partial = collect("/", directory=str(tmp_path))
    assert str(partial) == "skipped jobs.prom: jobs is a gauge here, a counter elsewhere"
    points = partial.points
    assert [(p.metric, dict(p.attributes), p.value) for p in points if not p.metric.startswith("hostagent.")] == [
        ("rpc", {"quantile": "0.5"}, 0.2), ("rpc_sum", {}, 10), ("rpc_count", {}, 40)]
    specs = source.discovered_metrics()
    assert [(s.name, s.instrument) for s in specs] == [(n, Instrument.GAUGE) for n in ("rpc", "rpc_sum", "rpc_count")]
    assert {s.condition for s in specs} == {"when a *.prom file of the textfile directory has it"}


@pytest.mark.parametrize("text, error", [
    ("# TYPE x gauge\n# TYPE x counter\n", "line 2: TYPE of x given twice or after its samples"),
    ("# TYPE x sometype\n", "line 1: unknown type 'sometype' for x"),
    ("x 1\nx 2\n", "line 2: x is written twice"),
    ('x{a="1",a="2"} 1\n', 'line 1: label a given twice'),
    ("x one\n", "line 1: not a number: 'one'"),
    ("bad line here\n", "line 1: not a number: 'line'"),  # not "bad has a timestamp"
    ('x{a=1} 1 1700000000\n', "line 1: malformed labels {a=1}"),
    ("x 1 soon\n", "line 1: expected a timestamp or nothing after the value, got 'soon'"),
    ("x 1 1700000000\n", "line 1: x has a timestamp (not supported, as in node_exporter)"),
    ("x 1_000\n", "line 1: not a number: '1_000'"),  # Python's float() reads these, Prometheus does not
    ("x +nan\n", "line 1: not a number: '+nan'"),
    ('# TYPE x histogram\nx_bucket{le="one"} 1\n', "line 2: le of x_bucket: not a number: 'one'"),
    ('# TYPE x summary\nx{quantile=" 0.5"} 1\n', "line 2: quantile of x: not a number: ' 0.5'"),
    ('# TYPE x histogram\nx_bucket{le="1"} 1\nx_bucket{le="1.0"} 1\n', 'line 3: x_bucket{le="1"} is written twice'),
    ("3x 1\n", "line 1: not a sample: '3x 1'"),
    ("# TYPE x\n", "line 1: unknown type '' for x"),
    ('x{a="1",b="2"} 1\nx{a="1",b="2"} 2\n', 'line 2: x{a="1",b="2"} is written twice'),
    ("x{a=1} 1\n", "line 1: malformed labels {a=1}"),
    ('x{a="1" b="2"} 1\n', 'line 1: malformed labels {a="1" b="2"}'),  # no comma between labels
    ('x{1a="1"} 1\n', 'line 1: malformed labels {1a="1"}'),  # a label name starts with a letter or _
    ("9" * 100 + "\n", f"line 1: not a sample: '{'9' * 80}'"),  # a long line is shown cut at 80 characters
])
def test_invalid_text_names_the_line_and_the_problem(text, error):
    with pytest.raises(ValueError) as invalid:
        parse(text)
    assert str(invalid.value) == error


def test_parser_reads_openmetrics_counters_summaries_and_special_values():
    families = parse('# TYPE jobs counter\njobs_total 3\n# TYPE rpc summary\nrpc{quantile="0.5"} 0.2\n'
                     'rpc_sum 10\nrpc_count 40\nload NaN\ntemp +Inf\n  \n# a comment\n')
    assert [(f.name, f.type, [(s[0], s[2]) for s in f.samples]) for f in families][:2] == [
        ("jobs", "counter", [("jobs_total", 3)]),
        ("rpc", "summary", [("rpc", 0.2), ("rpc_sum", 10), ("rpc_count", 40)])]
    assert families[3].samples[0][2] == float("inf")


def test_type_and_help_lines_need_no_space_after_the_hash_as_in_prometheus():
    [family] = parse("#HELP jobs Jobs done.\n#TYPE jobs counter\njobs 3\n#TYPEWRITER is a comment\n")
    assert (family.name, family.type, family.help, family.samples) == ("jobs", "counter", "Jobs done.",
                                                                        [("jobs", {}, 3.0)])


@pytest.mark.parametrize("value, written", [
    (1.0, "1"), (0.1, "0.1"), (0.5, "0.5"), (-0.0, "0"), (2.5, "2.5"), (-2.5e-5, "-2.5e-05"), (1e-5, "1e-05"),
    (0.0001, "0.0001"), (100000.0, "100000"), (999999.0, "999999"), (1e6, "1e+06"), (1234567.0, "1.234567e+06"),
    (1e20, "1e+20"), (1e21, "1e+21"), (123456789.0, "1.23456789e+08"), (1 / 3, "0.3333333333333333"),
    (math.inf, "+Inf"), (-math.inf, "-Inf"), (math.nan, "NaN")])
def test_floats_are_written_as_prometheus_writes_them(value, written):
    # Each expectation is Go's strconv.FormatFloat(value, 'g', -1, 64), as expfmt writes le and quantile.
    assert format_float(value) == written


def test_le_of_histograms_and_quantile_of_summaries_are_numbers_written_back_as_prometheus_does():
    families = parse('# TYPE d histogram\nd_bucket{le="1.0"} 1\nd_bucket{le="1e-1"} 0\nd_bucket{le="+inf"} 2\n'
                     'd_sum 3\nd_count 2\n# TYPE r summary\nr{quantile="0.50"} 1\nr{quantile="1E0"} 2\n'
                     '# TYPE g gauge\ng{le="1.0",quantile="0.50"} 1\n')
    assert [labels for family in families for _, labels, _ in family.samples] == [
        {"le": "1"}, {"le": "0.1"}, {"le": "+Inf"}, {}, {}, {"quantile": "0.5"}, {"quantile": "1"},
        {"le": "1.0", "quantile": "0.50"}]


def test_discovered_metrics_reach_the_sdk_with_their_instrument(root, caplog):
    collection = Collection([TextfileSource(Host(root), TextfileOptions(enabled=True))], AgentTelemetry())
    reader = InMemoryMetricReader()
    provider = build_provider(Resource.create({}), reader, collection)
    with caplog.at_level(logging.WARNING, logger="collector.collection"):
        collection.refresh()
        collection.refresh()
    metrics = {m.name: m for rm in reader.get_metrics_data().resource_metrics
               for sm in rm.scope_metrics for m in sm.metrics}
    runs = metrics["backup_runs"].data
    assert isinstance(runs, Sum) and runs.is_monotonic
    assert {dict(p.attributes)["outcome"]: p.value for p in runs.data_points} == {"success": 41, "failure": 2}
    assert isinstance(metrics["backup_size_bytes"].data, Gauge) and metrics["backup_size_bytes"].unit == "By"
    # Each file's problem is logged once, not at every collection.
    assert [r.getMessage().count("broken.prom") for r in caplog.records] == [1]
    provider.shutdown()


def test_collector_run_exports_a_file_written_after_start_with_its_instrument(tmp_path):
    receiver = OtlpReceiver()
    agent = subprocess.Popen([sys.executable, "-m", "collector", "run"], env=agent_environment(
        receiver.url, free_port(), HOSTAGENT_SOURCES__TEXTFILE__ENABLED="true",
        HOSTAGENT_SOURCES__TEXTFILE__DIRECTORY=str(tmp_path)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert receiver.wait_for(1)
        (tmp_path / "jobs.prom.tmp").write_text("# TYPE jobs_done_total counter\njobs_done_total 7\n")
        (tmp_path / "jobs.prom.tmp").rename(tmp_path / "jobs.prom")  # the write-then-rename convention
        assert wait_until(lambda: "jobs_done" in receiver.metric_names())
        jobs = next(m for r in receiver.requests[::-1] for rm in r.resource_metrics for sm in rm.scope_metrics
                    for m in sm.metrics if m.name == "jobs_done")
        assert jobs.sum.is_monotonic and [p.as_double for p in jobs.sum.data_points] == [7.0]
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(15)
        receiver.stop()


def test_help_and_label_values_are_unescaped():
    [family] = parse('# HELP x line one\\nline two, a backslash: \\\\\nx{a="l1\\nl2 \\"q\\" \\\\"} 1\n')
    assert family.help == "line one\nline two, a backslash: \\"
    assert family.samples == [("x", {"a": 'l1\nl2 "q" \\'}, 1.0)]


def test_escapes_are_undone_in_one_pass_so_an_escaped_backslash_before_n_stays_a_backslash_and_an_n():
    [family] = parse('# HELP x C:\\\\new \\"dir\\"\nx{path="C:\\\\new"} 1\n')
    assert family.help == 'C:\\new "dir"'
    assert family.samples == [("x", {"path": "C:\\new"}, 1.0)]


def exported_through_the_sdk(directory, caplog, refreshes=2):
    """The metrics the SDK exports after `refreshes` collections of the directory, and every warning logged."""
    collection = Collection([TextfileSource(Host("/"), TextfileOptions(enabled=True, directory=str(directory)))],
                            AgentTelemetry())
    reader = InMemoryMetricReader()
    provider = build_provider(Resource.create({}), reader, collection)
    with caplog.at_level(logging.WARNING):
        for _ in range(refreshes):
            collection.refresh()
            data = reader.get_metrics_data()
    metrics = {m.name: m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    provider.shutdown()
    return metrics, [r.getMessage() for r in caplog.records]


def test_a_file_over_max_file_size_is_skipped_unparsed_and_the_others_are_read(tmp_path):
    (tmp_path / "huge.prom").write_text("".join(f'jobs{{n="{n}"}} {n}\n' for n in range(100)))
    (tmp_path / "small.prom").write_text("small 1\n")
    source, partial = collect("/", directory=str(tmp_path), max_file_size=1000)
    assert str(partial) == "skipped huge.prom: larger than max_file_size=1000B"
    assert series(partial.points, "small") == {(): 1} and series(partial.points, "jobs") == {}
    assert series(partial.points, "hostagent.textfile.errors") == {
        (("file.name", "huge.prom"),): 1, (("file.name", "small.prom"),): 0}
    assert series(partial.points, "hostagent.textfile.mtime").keys() == {
        (("file.name", "huge.prom"),), (("file.name", "small.prom"),)}


def test_parsing_stops_at_the_first_series_over_max_series(tmp_path):
    (tmp_path / "a.prom").write_text("one 1\ntwo 2\nthree 3\nnot a sample\n")
    _, partial = collect("/", directory=str(tmp_path), max_series=2)
    assert str(partial) == "skipped a.prom: over max_series=2"


def test_two_series_that_become_one_in_a_file_skip_the_file_not_summed(tmp_path, caplog):
    (tmp_path / "samefile.prom").write_text("# TYPE samefile counter\nsamefile_total 1\nsamefile 2\n")
    (tmp_path / "other.prom").write_text("other 1\n")
    _, partial = collect("/", directory=str(tmp_path))
    assert str(partial) == "skipped samefile.prom: samefile is written twice (a counter's x and x_total are one series)"
    assert series(partial.points, "samefile") == {} and series(partial.points, "other") == {(): 1}
    metrics, _ = exported_through_the_sdk(tmp_path, caplog)
    assert "samefile" not in metrics and "other" in metrics


def test_nan_and_inf_samples_are_dropped_reported_once_and_the_rest_of_the_file_kept(tmp_path, caplog):
    (tmp_path / "rpc.prom").write_text('# TYPE rpc_duration_seconds summary\nrpc_duration_seconds{quantile="0.5"} NaN\n'
                                       'rpc_duration_seconds_sum 0\nrpc_duration_seconds_count 0\n'
                                       'up_since +Inf\nfloor -Inf\n')
    (tmp_path / "ok.prom").write_text("ok 1\n")
    _, partial = collect("/", directory=str(tmp_path))
    assert str(partial) == ('skipped rpc.prom: NaN or ±Inf, which OpenTelemetry cannot send: '
                            'rpc_duration_seconds{quantile="0.5"} and 2 more')
    assert {p.metric: p.value for p in partial.points if not p.metric.startswith("hostagent.")} == {
        "rpc_duration_seconds_sum": 0, "rpc_duration_seconds_count": 0, "ok": 1}
    assert series(partial.points, "hostagent.textfile.errors") == {
        (("file.name", "ok.prom"),): 0, (("file.name", "rpc.prom"),): 1}
    metrics, messages = exported_through_the_sdk(tmp_path, caplog)
    assert metrics.keys() >= {"rpc_duration_seconds_sum", "rpc_duration_seconds_count", "ok"}
    assert [m for m in messages if "rpc.prom" in m or "non-finite" in m] == [
        "source textfile: " + str(partial)]


def test_samples_left_out_are_one_problem_however_many_there_are(tmp_path, caplog):
    collection = Collection([TextfileSource(Host("/"), TextfileOptions(enabled=True, directory=str(tmp_path)))],
                            AgentTelemetry())
    with caplog.at_level(logging.WARNING):
        for samples in range(1, 4):  # a summary whose quantiles become NaN one after another
            (tmp_path / "rpc.prom").write_text("".join(f'rpc{{quantile="0.{n}"}} NaN\n' for n in range(samples)))
            collection.refresh()
    assert [r.getMessage() for r in caplog.records] == [
        'source textfile: skipped rpc.prom: NaN or ±Inf, which OpenTelemetry cannot send: rpc{quantile="0.0"}']


def test_names_are_exported_lower_case_and_a_name_differing_only_in_case_is_a_clash(tmp_path, caplog):
    (tmp_path / "a.prom").write_text('MyMetric{a="1"} 1\nCaseMetric 1\n')
    (tmp_path / "b.prom").write_text('casemetric{z="1"} 2\n')
    (tmp_path / "c.prom").write_text('Twice 1\ntwice{b="2"} 2\n')
    source, partial = collect("/", directory=str(tmp_path))
    assert str(partial) == ("skipped b.prom: casemetric and CaseMetric differ only in case (names are exported "
                            "lower-case); c.prom: twice and Twice differ only in case (names are exported lower-case)")
    assert series(partial.points, "mymetric") == {(("a", "1"),): 1} and series(partial.points, "casemetric") == {(): 1}
    assert {spec.name for spec in source.discovered_metrics()} == {"mymetric", "casemetric"}
    metrics, messages = exported_through_the_sdk(tmp_path, caplog)
    assert {"mymetric", "casemetric"} <= metrics.keys()
    assert [dict(p.attributes) for p in metrics["casemetric"].data.data_points] == [{}]
    assert not [m for m in messages if "conflicting" in m]
