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
COUNTER_FUNCTIONS = {"rate", "irate", "increase"}


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
            if not (isinstance(call, promql_parser.Call) and call.func.name in COUNTER_FUNCTIONS
                    or any(_is_count_in_range(parent) for parent in parents)):
                yield Problem("target-counter-agg-rule", place, f"counter {node.name} is not inside rate, irate, "
                                                                "increase or exprs.count_in_range's expression")


def _is_count_in_range(node) -> bool:
    """Whether `node` is exprs.count_in_range's expression, the one place a raw counter may be in last_over_time:
    (last_over_time(X[r]) - last_over_time(X[r] offset r) >= 0 unless resets(X[r]) > 0) or last_over_time(X[r])."""
    if not _is_binary(node, "or"):
        return False
    unless = _unparen(node.lhs)
    if not _is_binary(unless, "unless"):
        return False
    grown, reset = _unparen(unless.lhs), _unparen(unless.rhs)
    if not (_is_binary(grown, ">=") and _is_zero(grown.rhs) and _is_binary(reset, ">") and _is_zero(reset.rhs)):
        return False
    difference = _unparen(grown.lhs)
    if not _is_binary(difference, "-"):
        return False
    ranged = [_ranged(difference.lhs, "last_over_time"), _ranged(difference.rhs, "last_over_time"),
              _ranged(reset.lhs, "resets"), _ranged(node.rhs, "last_over_time")]
    if None in ranged:
        return False
    last, before, resets, fallback = ranged
    return (len({_series(m) for m in ranged}) == 1 and before.vector_selector.offset == before.range
            and all(m.vector_selector.offset is None for m in (last, resets, fallback)))


def _unparen(node):
    while isinstance(node, promql_parser.ParenExpr):
        node = node.expr
    return node


def _is_binary(node, op: str) -> bool:
    """A binary operation without bool, on or ignoring."""
    modifier = getattr(node, "modifier", None)
    return (isinstance(node, promql_parser.BinaryExpr) and str(node.op) == op
            and (modifier is None or modifier.matching is None and not modifier.return_bool))


def _is_zero(node) -> bool:
    node = _unparen(node)
    return isinstance(node, promql_parser.NumberLiteral) and node.val == 0


def _ranged(node, function: str) -> promql_parser.MatrixSelector | None:
    """X[r] of function(X[r]), X a plain selector (no @)."""
    node = _unparen(node)
    if not (isinstance(node, promql_parser.Call) and node.func.name == function and len(node.args) == 1):
        return None
    matrix = node.args[0]
    if isinstance(matrix, promql_parser.MatrixSelector) and matrix.vector_selector.at is None:
        return matrix
    return None


def _series(matrix: promql_parser.MatrixSelector) -> tuple:
    selector = matrix.vector_selector
    return selector.name, str(selector.matchers), matrix.range


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
