"""NameFilter: include, then exclude; verdicts kept per name, still right when the names keep changing."""

from collector.sources.filters import VERDICTS_KEPT, NameFilter


def test_include_then_exclude_and_the_same_verdict_every_time():
    mounts = NameFilter(include=(r"^/",), exclude=(r"^/run", r"^/var/lib/docker/"))
    for _ in range(2):  # the second time from the kept verdicts
        assert [mounts.allows(name) for name in ("/", "/run/user/0", "/var/lib/docker/overlay2/x", "tmpfs")] == [
            True, False, False, False]


def test_names_that_keep_changing_are_decided_right_past_the_kept_verdicts():
    devices = NameFilter(exclude=(r"^loop",))
    names = [f"{kind}{n}" for n in range(VERDICTS_KEPT + 10) for kind in ("loop", "sd")]
    assert [devices.allows(name) for name in names] == [kind == "sd" for n in range(VERDICTS_KEPT + 10)
                                                        for kind in ("loop", "sd")]
    assert len(devices._verdicts) <= VERDICTS_KEPT
