"""Reading dashboards' PromQL: Grafana variable substitution and a walk over the parsed expression."""
from __future__ import annotations

import re
from collections.abc import Iterator

import promql_parser

# $name, ${name}, ${name:format} and [[name]]: the forms Grafana interpolates. Not $1 or ${1}, label_replace's
# references to regex groups: no variable has a numeric name, and Grafana leaves a name no variable has alone.
_NAME = r"(?!\d+\b)(\w+)"
VARIABLE = re.compile(rf"\$\{{{_NAME}(?::\w+)?\}}|\${_NAME}|\[\[{_NAME}\]\]")


def variables_in(text: str) -> set[str]:
    return {next(g for g in m.groups() if g) for m in VARIABLE.finditer(text)}


def substitute(expr: str, values: dict[str, str], default: str | None = None) -> str:
    """`expr` with every variable named in `values` replaced by its value, the others by
    `default.format(name=...)` (left alone when `default` is None)."""
    def replace(match: re.Match) -> str:
        name = next(g for g in match.groups() if g)
        return values.get(name, match.group(0) if default is None else default.format(name=name))
    return VARIABLE.sub(replace, expr)


def parse(expr: str) -> promql_parser.Expr:
    return promql_parser.parse(expr)


def _children(node) -> list:
    match node:
        case promql_parser.AggregateExpr():
            return [n for n in (node.param, node.expr) if n is not None]
        case promql_parser.BinaryExpr():
            return [node.lhs, node.rhs]
        case promql_parser.Call():
            return list(node.args)
        case promql_parser.MatrixSelector():
            return [node.vector_selector]
        case promql_parser.SubqueryExpr() | promql_parser.ParenExpr() | promql_parser.UnaryExpr():
            return [node.expr]
    return []


def walk(node, parents: tuple = ()) -> Iterator[tuple[object, tuple]]:
    """Every node of the expression with the chain of its ancestors (nearest last)."""
    yield node, parents
    for child in _children(node):
        yield from walk(child, parents + (node,))


def metric_name(selector: promql_parser.VectorSelector) -> str:
    """The selector's metric name, or the pattern of its __name__ matcher."""
    if selector.name:
        return selector.name
    return next((m.value for m in selector.matchers.matchers if m.name == "__name__"), "")


def matchers(selector: promql_parser.VectorSelector) -> dict[str, str]:
    return {m.name: m.value for m in selector.matchers.matchers}
