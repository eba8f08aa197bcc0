"""Target rules: valid PromQL, $__rate_interval, counters under rate, job and host matchers."""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import promql_parser

from .. import promql
from .model import PLACEHOLDER, RATE_INTERVAL, Problem, expand, parsed_targets, targets, where

# Agent metrics carry job and host_name; gateway, backend and ALERTS series do not.
AGENT_METRIC = re.compile(r"^\^?\(?(system|process|hostagent|hw)_")
RATE_FUNCTIONS = {"rate", "irate"}
# and the exact count over a range (exprs.count_in_range): its last value, its last before the range, its resets
COUNTER_FUNCTIONS = {"rate", "irate", "increase", "last_over_time", "resets"}


def target_promql_rule(d: dict) -> Iterator[Problem]:
    for panel, target in targets(d):
        expr = target.get("expr", "")
        try:
            promql.parse(expand(expr))
        except ValueError as error:
            yield Problem("target-promql-rule", where(panel, target), f"invalid PromQL {expr!r}: {error}")


def target_rate_interval_rule(d: dict) -> Iterator[Problem]:
    for place, _, expr in parsed_targets(d):
        for node, parents in promql.walk(expr):
            if (isinstance(node, promql_parser.MatrixSelector) and parents
                    and isinstance(parents[-1], promql_parser.Call)
                    and parents[-1].func.name in RATE_FUNCTIONS and node.range != RATE_INTERVAL):
                yield Problem("target-rate-interval-rule", place,
                              f"{parents[-1].func.name}() over {node.range}, not $__rate_interval")


def target_counter_agg_rule(d: dict) -> Iterator[Problem]:
    for place, _, expr in parsed_targets(d):
        for node, parents in promql.walk(expr):
            if not (isinstance(node, promql_parser.VectorSelector) and node.name
                    and node.name.endswith("_total")):
                continue
            ranged = len(parents) >= 2 and isinstance(parents[-1], promql_parser.MatrixSelector)
            call = parents[-2] if ranged else None
            if not (isinstance(call, promql_parser.Call) and call.func.name in COUNTER_FUNCTIONS):
                yield Problem("target-counter-agg-rule", place,
                              f"counter {node.name} is not inside rate, irate, increase, last_over_time or resets")


def required_matcher(rule: str, label: str, variable: str) -> Callable[[dict], Iterator[Problem]]:
    placeholder = PLACEHOLDER.format(name=variable)

    def check(d: dict) -> Iterator[Problem]:
        for place, _, expr in parsed_targets(d):
            for node, _ in promql.walk(expr):
                if (isinstance(node, promql_parser.VectorSelector)
                        and AGENT_METRIC.match(promql.metric_name(node))
                        and placeholder not in promql.matchers(node).get(label, "")):
                    yield Problem(rule, place, f"{promql.metric_name(node)} lacks a {label} matcher on ${variable}")
    check.__name__ = rule
    return check
