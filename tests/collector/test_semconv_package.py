"""The hand-written facts of tests/collector/semconv.py against the published model: each metric's instrument and
unit in the docstrings opentelemetry-semantic-conventions generates ("Instrument: …", "Unit: …"), and every
enumerated value the agent emits in the package's enum for its attribute.

The package read is not the venv's (that one comes with the unpinned SDK and follows its releases) but the release
generated from the facts' version, which `make semconv-model` unpacks into .cache/semconv-model/; its files are
parsed, not imported."""

import ast
import re
from functools import cache
from pathlib import Path

import pytest

from pipeline.testing import unavailable
from tests.collector import semconv

PACKAGE_ROOT = (Path(__file__).parents[2] / ".cache" / "semconv-model" / semconv.PACKAGE_OF_VERSION
                / "opentelemetry" / "semconv")
METRIC_FILES = ("metrics", "_incubating/metrics")
ATTRIBUTE_FILES = ("attributes", "_incubating/attributes")


@pytest.fixture(scope="module", autouse=True)
def package_installed():
    if not (PACKAGE_ROOT / "schemas.py").is_file():
        unavailable(f"opentelemetry-semantic-conventions {semconv.PACKAGE_OF_VERSION} is not unpacked into "
                    f"{PACKAGE_ROOT.parents[1]}: run `make semconv-model`")


def newest_schema() -> str:
    versions = re.findall(r"/schemas/(\d+\.\d+\.\d+)\"", (PACKAGE_ROOT / "schemas.py").read_text())
    return max(versions, key=lambda version: tuple(map(int, version.split("."))))


def test_the_package_is_generated_from_the_facts_version():
    assert newest_schema() == semconv.VERSION, (
        f"opentelemetry-semantic-conventions {semconv.PACKAGE_OF_VERSION} is generated from v{newest_schema()}, "
        f"the facts are of v{semconv.VERSION}: PACKAGE_OF_VERSION in tests/collector/semconv.py names the wrong "
        "release")


def documented_constants(path: Path):
    """(name, value, docstring) of each module-level string constant followed by a docstring, as the package's
    generator writes them: `SYSTEM_CPU_TIME: Final = "system.cpu.time"` then `\"\"\"…\"\"\"`."""
    body = ast.parse(path.read_text()).body
    for statement, following in zip(body, body[1:]):
        value = getattr(statement, "value", None)
        target = statement.target if isinstance(statement, ast.AnnAssign) else None
        if (isinstance(target, ast.Name) and isinstance(value, ast.Constant) and isinstance(value.value, str)
                and isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)):
            yield target.id, value.value, following.value.value


@cache
def package_metrics() -> dict[str, tuple[str, str]]:
    """Metric name → (instrument, unit), deprecated metrics left out."""
    found = {}
    for folder in METRIC_FILES:
        for path in sorted((PACKAGE_ROOT / folder).glob("*.py")):
            for _, name, doc in documented_constants(path):
                instrument, unit = re.search(r"^Instrument: (.+)$", doc, re.M), re.search(r"^Unit: (.+)$", doc, re.M)
                if instrument and unit and not re.search(r"^Deprecated:", doc, re.M):
                    found[name] = (instrument[1].strip(), unit[1].strip())
    return found


@cache
def package_enums() -> dict[str, set[str]]:
    """Attribute name → the members of its enum (`<CamelCaseName>Values`), deprecated members left out."""
    found: dict[str, set[str]] = {}
    for folder in ATTRIBUTE_FILES:
        for path in sorted((PACKAGE_ROOT / folder).glob("*.py")):
            module = ast.parse(path.read_text())
            classes = {node.name: node for node in module.body if isinstance(node, ast.ClassDef)}
            for constant, name, _ in documented_constants(path):
                enum = classes.get("".join(part.capitalize() for part in constant.split("_")) + "Values")
                if enum is not None:
                    found.setdefault(name, set()).update(enum_members(enum))
    return found


def enum_members(enum: ast.ClassDef):
    for statement, following in zip(enum.body, [*enum.body[1:], None]):
        doc = following.value.value if isinstance(following, ast.Expr) else ""
        if isinstance(statement, ast.Assign) and not doc.startswith("Deprecated"):
            yield statement.value.value


# Enumerated attributes whose values the agent takes from the kernel as they are: the model's members are examples
# (its enums allow other values), the kernel names more.
OPEN_ENUMS = {"system.filesystem.type": "the mount table's type (xfs, tmpfs, …); the model lists six"}

MODEL_IN_PACKAGE = sorted(name for name in semconv.MODEL if name in package_metrics())


def test_the_package_has_most_of_the_models_facts():
    """Facts of metrics the package lacks are not checked here: few, or the parsing above is wrong."""
    missing = set(semconv.MODEL) - set(MODEL_IN_PACKAGE)
    assert len(missing) <= len(semconv.MODEL) // 10, f"not in the package: {sorted(missing)}"


@pytest.mark.parametrize("name", MODEL_IN_PACKAGE)
def test_a_fact_s_instrument_and_unit_are_the_package_s(name):
    fact = semconv.MODEL[name]
    assert (fact.instrument, fact.unit) == package_metrics()[name], fact.where


def test_the_facts_enums_are_the_package_s():
    """ENUMS lists the model's members, deprecated ones left out; attributes the package lacks are a precedent's
    (system.pressure.stall_type). METRIC_ENUMS narrow cpu.mode by a metric's note, which the package leaves out."""
    in_package = {attribute: members for attribute, members in semconv.ENUMS.items() if attribute in package_enums()}
    assert set(semconv.ENUMS) - set(in_package) == {"system.pressure.stall_type"}
    assert in_package == {attribute: package_enums()[attribute] for attribute in in_package}


def test_emitted_enumerated_values_are_members_of_the_package_s_enums(collect_everything):
    fixture, top = collect_everything
    emitted: dict[str, set] = {}
    for point in fixture.points() + top.collect():
        for key, value in point.attributes.items():
            emitted.setdefault(key, set()).add(value)
    checked = {key: values for key, values in emitted.items() if key in package_enums() and key not in OPEN_ENUMS}
    assert {key: sorted(values - package_enums()[key]) for key, values in checked.items()
            if values - package_enums()[key]} == {}
    assert set(checked) >= set(semconv.ENUMS) & set(package_enums()), "the fixture host emits every enumeration"
