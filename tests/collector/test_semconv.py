"""Every declared metric against the semantic conventions' facts (tests/collector/semconv.py), and every
emitted enumerated attribute against the members the model allows."""

import pytest

from collector import SEMCONV_VERSION
from collector.render import CONFORMANCE_NOTES
from collector.sources import declared_metrics
from tests.collector import semconv

AGENT_NAMESPACE = "hostagent."  # the agent's own health: no convention applies
DECLARED = [spec for _, spec in declared_metrics() if not spec.name.startswith(AGENT_NAMESPACE)]


def test_the_facts_are_those_of_the_version_the_agent_claims():
    assert semconv.VERSION == SEMCONV_VERSION


@pytest.mark.parametrize("spec", DECLARED, ids=lambda spec: spec.name)
def test_declaration_follows_the_model_or_its_documented_precedent(spec):
    if spec.name in semconv.MODEL:
        fact = semconv.MODEL[spec.name]
        assert spec.precedent is None, f"{spec.name} is in the model: it needs no precedent"
    else:
        assert spec.name in semconv.PRECEDENTS, f"{spec.name}: neither a model name nor a known precedent"
        fact = semconv.PRECEDENTS[spec.name]
        assert spec.precedent, f"{spec.name} is not in the model: docs/metrics.md must name its precedent"
    assert (spec.instrument.value, spec.unit) == (fact.instrument, fact.unit), fact.where
    declared = set(spec.attributes) | set(spec.optional_attributes)
    departures = {a for (metric, a) in semconv.DEPARTURES if metric == spec.name}
    added = set(semconv.PROCESS_IDENTITY) if spec.name.startswith("process.") else set()
    assert set(fact.attributes) - departures <= declared, f"missing attributes ({fact.where})"
    assert declared <= set(fact.attributes) | set(fact.opt_in) | departures | added, \
        f"attributes the model does not list ({fact.where})"
    assert set(fact.opt_in) & set(spec.attributes) == set(), "opt-in attributes must be optional"


def test_every_precedent_is_declared():
    """A row left behind by a rename would hide that the agent no longer follows its precedent."""
    assert set(semconv.PRECEDENTS) <= {spec.name for spec in DECLARED}


def test_emitted_enumerated_attributes_use_only_members_the_model_allows(collect_everything):
    fixture, top = collect_everything
    checked = set()
    for point in fixture.points() + top.collect():
        for key, value in point.attributes.items():
            allowed = semconv.METRIC_ENUMS.get((point.metric, key), semconv.ENUMS.get(key))
            if allowed is not None:
                assert value in allowed, f"{point.metric}: {key}={value!r} is not one of {sorted(allowed)}"
                checked.add(key)
    carried = {a for spec in DECLARED for a in (*spec.attributes, *spec.optional_attributes)}
    assert checked == set(semconv.ENUMS) & carried, "every enumerated attribute a metric carries was checked"


def test_every_departure_from_the_model_is_documented():
    notes = " ".join(CONFORMANCE_NOTES)
    assert {attribute for _, attribute in semconv.DEPARTURES if f"`{attribute}`" not in notes} == set()
