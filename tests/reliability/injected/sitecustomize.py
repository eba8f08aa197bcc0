"""Faults injected into the real agent process (on PYTHONPATH, imported at interpreter start-up), chosen by
INJECT_FAULT: `source` (the memory source raises: a source bug), `collect` (every other collection
cycle raises outside the sources), `transport` (every send raises an exception the transport never expects)."""
import itertools
import os

FAULT = os.environ.get("INJECT_FAULT")


def _raise(error):
    def broken(*args, **kwargs):
        raise error
    return broken


if FAULT == "source":
    from collector.sources.memory import MemorySource
    MemorySource.collect = _raise(ZeroDivisionError("injected source fault"))
elif FAULT == "collect":
    from collector.collection import Collection
    refresh, calls = Collection.refresh, itertools.count()

    def every_other_cycle_fails(self):
        if next(calls) % 2:
            raise OverflowError("injected collect fault")
        refresh(self)
    Collection.refresh = every_other_cycle_fails
elif FAULT == "transport":
    from collector.transport import HttpTransport
    HttpTransport.send = _raise(RuntimeError("injected transport fault"))
