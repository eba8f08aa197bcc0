"""Type-check dashboards against Grafana's own schema: the TypeScript types @grafana/schema publishes.

    python -m dashgen.schema install                  npm-install TypeScript and @grafana/schema into .cache/
    python -m dashgen.schema grafana/dashboards/*.json   report every place a dashboard does not fit

Each dashboard becomes a TypeScript module in which the whole JSON must satisfy the `Dashboard` type, and
each panel's `options` and `fieldConfig.defaults.custom` the option types of its panel plugin. Object
literals get TypeScript's excess-property check, so a misspelt or unknown key is an error too.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".cache" / "grafana-schema"
PACKAGES = ("typescript@5.9.3", "@grafana/schema@13.2.3")
TSC = CACHE / "node_modules" / "typescript" / "bin" / "tsc"
RAW = "@grafana/schema/dist/esm/raw"
# Panel plugin -> the module with its Options (and, for plugins with per-field options, FieldConfig) types.
PANEL_TYPES = {
    "timeseries": f"{RAW}/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen",
    "stat": f"{RAW}/composable/stat/panelcfg/x/StatPanelCfg_types.gen",
    "table": f"{RAW}/composable/table/panelcfg/x/TablePanelCfg_types.gen",
    "bargauge": f"{RAW}/composable/bargauge/panelcfg/x/BarGaugePanelCfg_types.gen",
}
WITH_FIELD_CONFIG = {"timeseries", "table"}
PREAMBLE = f"""import type {{ Dashboard }} from "{RAW}/dashboard/x/Dashboard_types.gen";
{chr(10).join(f'import type * as {kind} from "{module}";' for kind, module in PANEL_TYPES.items())}
// JSON has no enums: a string enum accepts its values.
type Plain<T> = T extends string ? `${{T}}` : T extends Array<infer U> ? Array<Plain<U>>
  : T extends object ? {{ [K in keyof T]: Plain<T[K]> }} : T;
// Panel options: Grafana fills in every option left out, so all are optional (unknown ones are still errors).
type Loose<T> = T extends string ? `${{T}}` : T extends Array<infer U> ? Array<Loose<U>>
  : T extends object ? {{ [K in keyof T]?: Loose<T[K]> }} : T;
"""


class SchemaUnavailable(RuntimeError):
    pass


def _installed(package: str) -> bool:
    name, version = package.rsplit("@", 1)
    manifest = CACHE / "node_modules" / name / "package.json"
    return manifest.is_file() and json.loads(manifest.read_text()).get("version") == version


def install() -> None:
    """npm-install PACKAGES into CACHE, unless those versions are there already."""
    if all(map(_installed, PACKAGES)):
        return
    npm = shutil.which("npm")
    if not npm:
        raise SchemaUnavailable("npm is not installed")
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run([npm, "install", "--prefix", str(CACHE), "--no-audit", "--no-fund", "--no-package-lock",
                    *PACKAGES], check=True)


def _module(dashboard: dict) -> str:
    lines = [PREAMBLE, f"export const dashboard = {json.dumps(dashboard, indent=1)} satisfies Plain<Dashboard>;"]
    for panel in dashboard.get("panels", []):
        kind = panel["type"]
        if kind in PANEL_TYPES:
            lines.append(f"// panel {panel['id']} '{panel['title']}'")
            lines.append(f"({json.dumps(panel['options'])}) satisfies Loose<{kind}.Options>;")
            if kind in WITH_FIELD_CONFIG:
                custom = panel["fieldConfig"]["defaults"].get("custom", {})
                lines.append(f"({json.dumps(custom)}) satisfies Loose<{kind}.FieldConfig>;")
    return "\n".join(lines) + "\n"


def check(paths: list[Path]) -> list[str]:
    """tsc's errors for the dashboards in `paths`, each prefixed with its file name; [] when all fit."""
    node = shutil.which("node")
    if not (node and TSC.is_file()):
        raise SchemaUnavailable("node or the schema packages are missing: run `python -m dashgen.schema install`")
    # Beside node_modules, so that the modules resolve the packages; one directory per run.
    with tempfile.TemporaryDirectory(dir=CACHE, prefix="check-") as work:
        names = []
        for path in paths:
            (Path(work) / f"{path.stem}.ts").write_text(_module(json.loads(path.read_text())))
            names.append(f"{path.stem}.ts")
        result = subprocess.run([node, str(TSC), "--noEmit", "--strict", "--module", "nodenext",
                                 "--moduleResolution", "nodenext", "--target", "es2022", *names],
                                cwd=work, capture_output=True, text=True)
    if result.returncode and not result.stdout.strip():
        raise RuntimeError(f"tsc failed: {result.stderr}")
    return [line for line in result.stdout.splitlines() if line.strip()]


def main(argv: list[str]) -> int:
    if argv == ["install"]:
        install()
        return 0
    errors = check([Path(a) for a in argv])
    print("\n".join(errors) or f"{len(argv)} dashboards fit Grafana's schema")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
