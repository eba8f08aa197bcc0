"""Builders for Grafana dashboard JSON (schema 42): targets, panels, variables, layout.

Panels are created without position or id; `dashboard()` lays them out in rows and numbers them,
so ids are unique and stable as long as the panel order is.
"""
from __future__ import annotations

from dataclasses import dataclass

SCHEMA_VERSION = 42
TAG = "hostagent"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
GRID_WIDTH = 24


@dataclass(frozen=True)
class Thresholds:
    """Colour steps and threshold lines: green below `warning`, orange, red from `critical`."""
    warning: float
    critical: float

    def steps(self) -> list[dict]:
        return [{"color": "green", "value": None},
                {"color": "orange", "value": self.warning},
                {"color": "red", "value": self.critical}]


@dataclass(frozen=True)
class Target:
    expr: str
    legend: str = "__auto"


@dataclass(frozen=True)
class Column:
    """One column of a table panel built from an instant query that shares the table's key labels."""
    name: str
    expr: str
    unit: str
    thresholds: Thresholds | None = None
    steps: tuple[tuple[str, float | None], ...] = ()
    mappings: tuple[dict, ...] = ()


HOST_LINK = {
    "title": "Host detail",
    "url": "/d/host-detail/host-detail?var-host=${__value.raw}&${datasource:queryparam}&${__url_time_range}",
}


def _targets(targets: list[Target], instant: bool, table: bool) -> list[dict]:
    return [{
        "datasource": DATASOURCE,
        "refId": chr(ord("A") + i),
        "expr": t.expr,
        "legendFormat": t.legend,
        "range": not instant,
        "instant": instant,
        "format": "table" if table else "time_series",
        "editorMode": "code",
    } for i, t in enumerate(targets)]


def _threshold_config(thresholds: Thresholds | None) -> dict:
    steps = thresholds.steps() if thresholds else [{"color": "green", "value": None}]
    return {"mode": "absolute", "steps": steps}


def _panel(kind: str, title: str, description: str, unit: str, targets: list[dict],
           width: int, height: int, defaults: dict, options: dict, **extra) -> dict:
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "gridPos": {"w": width, "h": height},
        "targets": targets,
        "fieldConfig": {"defaults": {"unit": unit, **defaults}, "overrides": extra.pop("overrides", [])},
        "options": options,
        **extra,
    }


def _limits(minimum: float | None, maximum: float | None) -> dict:
    return {k: v for k, v in (("min", minimum), ("max", maximum)) if v is not None}


def timeseries(title: str, description: str, unit: str, targets: list[Target], *,
               thresholds: Thresholds | None = None, stack: bool = False,
               minimum: float | None = 0, maximum: float | None = None,
               width: int = 12, height: int = 8, overrides: list[dict] | None = None) -> dict:
    custom = {
        "drawStyle": "line",
        "lineWidth": 1,
        "fillOpacity": 40 if stack else 10,
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
        "thresholdsStyle": {"mode": "dashed" if thresholds else "off"},
    }
    defaults = {"custom": custom, "thresholds": _threshold_config(thresholds),
                "color": {"mode": "palette-classic"}, **_limits(minimum, maximum)}
    options = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True, "calcs": []},
               "tooltip": {"mode": "multi", "sort": "desc"}}
    return _panel("timeseries", title, description, unit, _targets(targets, False, False),
                  width, height, defaults, options, overrides=overrides or [])


def fixed_colours(colours: dict[str, str]) -> list[dict]:
    """Overrides giving each named series (by legend) a fixed colour."""
    return [{"matcher": {"id": "byName", "options": name},
             "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": colour}}]}
            for name, colour in colours.items()]


def stat(title: str, description: str, unit: str, targets: list[Target], *,
         thresholds: Thresholds | None = None, mappings: list[dict] | None = None,
         no_value: str | None = None, overrides: list[dict] | None = None,
         width: int = 4, height: int = 4) -> dict:
    defaults = {"thresholds": _threshold_config(thresholds), "mappings": mappings or [],
                "color": {"mode": "thresholds"}}
    if no_value is not None:
        defaults["noValue"] = no_value
    options = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
               "colorMode": "background" if thresholds else "value", "graphMode": "none",
               "textMode": "auto", "justifyMode": "auto", "orientation": "auto"}
    return _panel("stat", title, description, unit, _targets(targets, True, False),
                  width, height, defaults, options, overrides=overrides or [])


def top_hosts(title: str, description: str, unit: str, expr: str, *,
              thresholds: Thresholds | None = None, maximum: float | None = None,
              count: int = 10, width: int = 6, height: int = 8) -> dict:
    """A horizontal bar gauge of the `count` hosts with the highest value of `expr` (by host_name)."""
    target = Target(f"topk({count}, {expr})", "{{host_name}}")
    defaults = {"thresholds": _threshold_config(thresholds), "color": {"mode": "thresholds"},
                "links": [HOST_LINK | {"url": HOST_LINK["url"].replace("${__value.raw}",
                                                                       "${__field.labels.host_name}")}],
                **_limits(0, maximum)}
    options = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
               "orientation": "horizontal", "displayMode": "gradient", "valueMode": "color",
               "showUnfilled": True, "namePlacement": "left", "sizing": "auto"}
    return _panel("bargauge", title, description, unit, _targets([target], True, False),
                  width, height, defaults, options)


def _column_override(column: Column) -> dict:
    properties = [{"id": "unit", "value": column.unit}]
    steps = column.thresholds.steps() if column.thresholds else [
        {"color": color, "value": value} for color, value in column.steps]
    if steps:
        properties += [{"id": "thresholds", "value": {"mode": "absolute", "steps": steps}},
                       {"id": "custom.cellOptions", "value": {"type": "color-background", "mode": "basic"}}]
    if column.mappings:
        properties.append({"id": "mappings", "value": list(column.mappings)})
    return {"matcher": {"id": "byName", "options": column.name}, "properties": properties}


def table(title: str, description: str, key: list[str], columns: list[Column], *,
          key_names: dict[str, str] | None = None, link_hosts: bool = False,
          width: int = 24, height: int = 10) -> dict:
    """A table with one row per value of the `key` labels and one column per instant query."""
    names = key_names or {}
    # Grafana names the value field of query A "Value #A", or just "Value" when the panel has one query.
    values = [f"Value #{chr(ord('A') + i)}" for i in range(len(columns))] if len(columns) > 1 else ["Value"]
    rename = {value: c.name for value, c in zip(values, columns)} | names
    order = {name: i for i, name in enumerate(key + values)}
    transformations = [
        {"id": "merge", "options": {}},
        {"id": "organize", "options": {"excludeByName": {"Time": True}, "indexByName": order,
                                       "renameByName": rename}},
    ]
    overrides = [_column_override(c) for c in columns]
    if link_hosts:
        overrides.append({"matcher": {"id": "byName", "options": names.get("host_name", "host_name")},
                          "properties": [{"id": "links", "value": [HOST_LINK]}]})
    defaults = {"custom": {"align": "auto", "cellOptions": {"type": "auto"}, "filterable": True},
                "thresholds": _threshold_config(None)}
    options = {"showHeader": True, "cellHeight": "sm"}
    targets = _targets([Target(c.expr, c.name) for c in columns], True, True)
    return _panel("table", title, description, "none", targets, width, height, defaults, options,
                  overrides=overrides, transformations=transformations)


def datasource_variable() -> dict:
    return {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
            "options": [], "regex": "", "hide": 0, "refresh": 1,
            "includeAll": False, "multi": False}


def query_variable(name: str, label: str, query: str, *, multi: bool = False,
                   include_all: bool = False, all_value: str | None = None) -> dict:
    variable = {
        "name": name, "label": label, "type": "query", "datasource": DATASOURCE,
        "query": {"qryType": 1, "query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "refresh": 2, "sort": 1, "regex": "", "hide": 0, "multi": multi, "includeAll": include_all, "options": [],
    }
    if include_all:
        variable["current"] = {"text": ["All"], "value": ["$__all"]}
    if all_value is not None:
        variable["allValue"] = all_value
    return variable


def row(title: str) -> dict:
    return {"type": "row", "title": title, "collapsed": False, "panels": [],
            "gridPos": {"w": GRID_WIDTH, "h": 1}}


def _layout(panels: list[dict]) -> list[dict]:
    x = y = line_height = 0
    placed = []
    for number, panel in enumerate(panels, start=1):
        grid = panel["gridPos"]
        if x + grid["w"] > GRID_WIDTH or panel["type"] == "row":
            x, y, line_height = 0, y + line_height, 0
        placed.append(panel | {"id": number, "gridPos": grid | {"x": x, "y": y}})
        x += grid["w"]
        line_height = max(line_height, grid["h"])
        if panel["type"] == "row":
            x, y, line_height = GRID_WIDTH, y, grid["h"]
    return placed


def dashboard(uid: str, title: str, description: str, variables: list[dict], panels: list[dict]) -> dict:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": [TAG],
        "editable": False,
        "graphTooltip": 1,
        "timezone": "browser",
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {"refresh_intervals": ["10s", "30s", "1m", "5m", "15m"]},
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "links": [{"type": "dashboards", "tags": [TAG], "asDropdown": False, "title": "Host telemetry",
                   "includeVars": False, "keepTime": True, "icon": "external link", "targetBlank": False,
                   "tooltip": "The other host-telemetry dashboards"}],
        "templating": {"list": variables},
        "panels": _layout(panels),
    }
