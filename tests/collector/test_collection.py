"""The collection cycle: failures stay local and are counted, intervals are honoured, logs are not repeated."""

import logging

from collector.collection import Collection
from collector.host import Host
from collector.sources.base import PartialFailure, Source, SourceOptions, Unavailable
from collector.sources.filters import capped
from collector.spec import Point, gauge
from collector.telemetry import AgentTelemetry


class Scripted(Source):
    """A source whose collect() follows a script: a list of points or an exception per call."""

    metrics = (gauge("test.value", "1", "test"),)

    def __init__(self, name, script, interval=None):
        super().__init__(None, SourceOptions(interval=interval))
        self.name, self.script, self.calls = name, list(script), 0

    def collect(self):
        self.calls += 1
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, Exception):
            raise step
        return step


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_failing_source_costs_only_its_own_points_and_is_counted():
    good = Scripted("good", [[Point("good.value", 1.0)]])
    bad = Scripted("bad", [PermissionError(13, "Permission denied", "/proc/diskstats")])
    telemetry = AgentTelemetry()
    collection = Collection([bad, good], telemetry)
    collection.refresh()
    collection.refresh()
    assert collection.points() == [Point("good.value", 1.0)]
    assert telemetry.sources["bad"].outcomes == {"error": 2}
    assert telemetry.sources["good"].outcomes == {"success": 2}


def test_a_partial_failure_keeps_the_points_it_could_read_and_counts_an_error():
    partial = Scripted("fs", [PartialFailure([Point("fs.value", 3.0)], "/mnt/nfs: timed out")])
    telemetry = AgentTelemetry()
    collection = Collection([partial], telemetry)
    collection.refresh()
    assert collection.points() == [Point("fs.value", 3.0)]
    assert telemetry.sources["fs"].outcomes == {"error": 1}


def test_an_unavailable_source_is_neither_an_error_nor_a_success():
    telemetry = AgentTelemetry()
    Collection([Scripted("psi", [Unavailable("no /proc/pressure")])], telemetry).refresh()
    assert telemetry.sources["psi"].outcomes == {}


def test_a_source_not_yet_due_re_reports_its_last_points():
    clock = Clock()
    slow = Scripted("filesystem", [[Point("fs", 1.0)], [Point("fs", 2.0)]], interval=30)
    collection = Collection([slow], AgentTelemetry(), clock=clock)
    for now, expected_calls, expected_value in [(0, 1, 1.0), (10, 1, 1.0), (20, 1, 1.0), (29, 2, 2.0)]:
        clock.now = now
        collection.refresh()
        assert (slow.calls, collection.points()[0].value) == (expected_calls, expected_value), now


def test_a_problem_is_logged_when_it_starts_and_when_it_ends_not_every_cycle(caplog):
    flaky = Scripted("disk", [OSError("boom"), OSError("boom"), OSError("boom"), [Point("d", 1.0)]])
    collection = Collection([flaky], AgentTelemetry())
    with caplog.at_level(logging.INFO, logger="collector.collection"):
        for _ in range(4):
            collection.refresh()
    assert [r.getMessage() for r in caplog.records] == ["source disk: OSError: boom", "source disk: recovered"]


def test_a_failure_alternating_between_two_messages_is_logged_once_per_message(caplog):
    from collector.problems import ProblemLog
    problems = ProblemLog(logging.getLogger("test.problems"))
    with caplog.at_level(logging.INFO, logger="test.problems"):
        for message in ["TLS alert", "EOF", "TLS alert", "EOF", None, "EOF"]:
            problems.report("export", message)
    assert [r.getMessage() for r in caplog.records] == [
        "export: TLS alert", "export: EOF", "export: recovered", "export: EOF"]


def test_a_problem_whose_count_changes_is_logged_once_with_its_first_count(caplog):
    growing = Scripted("network", [PartialFailure([], capped(list(range(n)), 100, "interfaces")[1])
                                   for n in range(101, 105)])
    collection = Collection([growing], AgentTelemetry())
    with caplog.at_level(logging.INFO, logger="collector.collection"):
        for _ in range(4):
            collection.refresh()
    assert [r.getMessage() for r in caplog.records] == [
        "source network: 101 interfaces, only max_interfaces=100 kept"]


def test_a_number_that_is_not_a_count_makes_a_new_problem(caplog):
    from collector.problems import ProblemLog
    problems = ProblemLog(logging.getLogger("test.problems"))
    with caplog.at_level(logging.INFO, logger="test.problems"):
        for message in ["HTTP 400 from gw", "HTTP 400 from gw", "HTTP 413 from gw", "HTTP 400 from gw"]:
            problems.report("export", message)
    assert [r.getMessage() for r in caplog.records] == ["export: HTTP 400 from gw", "export: HTTP 413 from gw"]


def test_a_failure_joined_with_a_changing_count_is_new_only_when_its_other_failures_change(caplog):
    def failing(mount: str, filesystems: int):
        overflow = capped(list(range(filesystems)), 100, "filesystems")[1]
        return PartialFailure([], f"{mount}: Permission denied", overflow)
    script = [failing("/mnt/disk1", 101), failing("/mnt/disk1", 102), failing("/mnt/disk2", 103)]
    collection = Collection([Scripted("filesystem", script)], AgentTelemetry())
    with caplog.at_level(logging.INFO, logger="collector.collection"):
        for _ in script:
            collection.refresh()
    assert [r.getMessage() for r in caplog.records] == [
        "source filesystem: /mnt/disk1: Permission denied; 101 filesystems, only max_filesystems=100 kept",
        "source filesystem: /mnt/disk2: Permission denied; 103 filesystems, only max_filesystems=100 kept"]


class Scanning(Source):
    """A source that keeps the scan of the processes it was given."""

    metrics = ()

    def __init__(self, name, host):
        super().__init__(host, SourceOptions())
        self.name, self.scans = name, []

    def collect(self):
        self.scans.append(self.host.process_stats())
        return []


def test_a_refresh_is_one_cycle_of_the_host_one_scan_for_every_source_and_its_files_kept_open(tmp_path):
    for pid in (42, 43):
        (tmp_path / str(pid) / "proc" / str(pid)).mkdir(parents=True)
        (tmp_path / str(pid) / "proc" / str(pid) / "stat").write_bytes(b"%d (a) S 1" % pid)
    host, other_host = Host(tmp_path / "42"), Host(tmp_path / "43")
    first, second, other = Scanning("first", host), Scanning("second", host), Scanning("other", other_host)
    collection = Collection([first, Scripted("no host", [[]]), second, other], AgentTelemetry())
    collection.refresh()
    collection.refresh()
    assert first.scans[0] is second.scans[0] and first.scans[1] is second.scans[1]
    assert first.scans[0] is not first.scans[1] and first.scans[1] == [("42", b"42 (a) S 1")]
    assert other.scans[1] == [("43", b"43 (a) S 1")]
    assert (host.kept_open(), other_host.kept_open()) == ({"proc/42/stat"}, {"proc/43/stat"})
