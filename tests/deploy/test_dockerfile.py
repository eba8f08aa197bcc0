"""deploy/container/Dockerfile, checked statically (no Docker engine here): stages, base, user, entrypoint."""

import fnmatch
import json
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from collector.config import HealthConfig
from tests.deploy.dockerfile import DOCKERFILE, final_stage, instructions, stages
from tests.deploy.manifests import REPO

HADOLINT = Path(sys.executable).with_name("hadolint")
PINNED_PYTHON = re.compile(r"^python:3\.11\.\d+-slim-\w+$")


def argument(name: str) -> str:
    [value] = [args.split("=", 1)[1] for kind, args in instructions() if kind == "ARG" and args.startswith(name + "=")]
    return value


def test_is_multi_stage_on_one_pinned_slim_python_base():
    bases = [args.split()[0] for kind, args in instructions() if kind == "FROM"]
    assert len(bases) >= 2
    assert set(bases) == {"${PYTHON_IMAGE}"}, "both stages on the same base keep the virtualenv's interpreter valid"
    assert PINNED_PYTHON.match(argument("PYTHON_IMAGE"))


def test_final_stage_runs_as_a_numeric_non_root_user():
    [user] = [args for kind, args in final_stage() if kind == "USER"]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "numeric, so runAsNonRoot can check it"


def test_entrypoint_is_collector_run_in_exec_form():
    [entrypoint] = [args for kind, args in final_stage() if kind == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["collector", "run"]


def test_final_stage_takes_only_the_built_runtime():
    build_stage_name = stages()[0][0][1].split()[-1]
    copies = [args for kind, args in final_stage() if kind in ("COPY", "ADD")]
    assert copies and all(args.startswith(f"--from={build_stage_name} ") for args in copies)
    runs = " ".join(args for kind, args in final_stage() if kind == "RUN")
    assert "pip install" not in runs and "pip wheel" not in runs


def test_build_stage_copies_files_that_exist():
    for kind, args in stages()[0]:
        if kind == "COPY":
            *sources, _ = shlex.split(args)
            for source in sources:
                assert (REPO / source).exists(), f"COPY {source}: not in the repository"


def test_the_build_stage_builds_a_wheel_of_the_agent_alone_from_what_it_copies(tmp_path):
    """What `pip wheel .` in the build stage does, offline (no Docker engine here): the copied files must be all it
    needs, and the wheel must hold the agent and nothing of the repository's tools."""
    context = tmp_path / "src"
    for kind, args in stages()[0]:
        if kind == "COPY":
            *sources, target = shlex.split(args)
            for source in sources:
                destination = context / target / source if target.endswith("/") else context / target
                if (REPO / source).is_dir():
                    shutil.copytree(REPO / source, destination, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(REPO / source, destination)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                            "--wheel-dir", str(tmp_path / "wheels"), "."], cwd=context, capture_output=True,
                           text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    [wheel] = (tmp_path / "wheels").glob("hostagent-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = archive.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")} == {"collector"}
    assert "collector/sources/cpu.py" in names and "collector = collector.cli:main" in entry_points


def test_healthcheck_asks_the_agent_default_health_endpoint():
    [healthcheck] = [args for kind, args in final_stage() if kind == "HEALTHCHECK"]
    assert f"http://{HealthConfig().listen}/healthz" in healthcheck


def dockerignore_patterns(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def documented_dockerignore() -> str:
    [block] = re.findall(r"```dockerignore\n(.*?)```", (REPO / "docs" / "deploy.md").read_text(), re.DOTALL)
    return block


def test_dockerignore_keeps_what_the_build_copies_and_drops_the_rest():
    """The documented .dockerignore, and the repository's once it exists."""
    real = REPO / ".dockerignore"
    for text in [documented_dockerignore(), *([real.read_text()] if real.exists() else [])]:
        patterns = dockerignore_patterns(text)
        copied = [path for kind, args in stages()[0] if kind == "COPY" for path in shlex.split(args)[:-1]]
        assert copied and not [path for path in copied if _ignored(path, patterns)]
        assert all(_ignored(path, patterns) for path in (".venv", ".cache/backends", ".git", "tests"))


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule, simplified: the last pattern matching the path or a parent wins; '!' re-includes."""
    ignored = False
    parents = [path] + [path.rsplit("/", n)[0] for n in range(1, path.count("/") + 1)]
    for pattern in patterns:
        negated = pattern.startswith("!")
        if any(fnmatch.fnmatch(candidate, pattern.lstrip("!").strip("/")) for candidate in parents):
            ignored = not negated
    return ignored


def test_dockerignore_rule_can_exclude():
    assert _ignored("collector", ["*"])
    assert not _ignored("collector", ["*", "!collector"])
    assert not _ignored("collector", [".venv", "*.pyc", "tests"])
    assert _ignored("collector/__pycache__", ["**/__pycache__"])


def hadolint(text: str, tmp_path) -> subprocess.CompletedProcess:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(text)
    return subprocess.run([str(HADOLINT), "--no-color", "--failure-threshold", "style", str(dockerfile)],
                          capture_output=True, text=True, timeout=60)


def test_hadolint_finds_nothing(tmp_path):
    result = hadolint(DOCKERFILE.read_text(), tmp_path)
    assert result.returncode == 0, result.stdout


def test_hadolint_flags_a_root_user(tmp_path):
    result = hadolint(DOCKERFILE.read_text().replace("USER 10001:10001", "USER root"), tmp_path)
    assert result.returncode != 0 and "DL3002" in result.stdout
