"""deploy/compose/compose.yaml: parses, references only files of the repository, wires services together.

No compose engine runs here (FACTS.md): the file is checked statically.
"""

import re
import subprocess
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from pipeline.services import OTELCOL_GOGC, PROMETHEUS_GOGC, agent_executable
from pipeline.testing import require_binary
from tests.deploy.manifests import DEPLOY, KUBERNETES, REPO, expand
from tests.gateway.gateway_check import without_relays

COMPOSE_DIR = DEPLOY / "compose"
COMPOSE = yaml.safe_load((COMPOSE_DIR / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]
# The keys of the Compose specification this file may use; a misspelt key is ignored by nothing but this test.
SERVICE_KEYS = {"build", "image", "command", "environment", "env_file", "volumes", "ports", "depends_on",
                "restart", "uts", "read_only", "cap_drop", "security_opt", "tmpfs", "user", "stop_grace_period"}
PINNED_IMAGE = re.compile(r"^[\w./-]+:v?\d+\.\d+\.\d+$")


def bind_sources(service: dict) -> list[str]:
    sources = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            if volume["type"] == "bind":
                sources.append(volume["source"])
        elif volume.split(":", 1)[0].startswith((".", "/")):
            sources.append(volume.split(":", 1)[0])
    return sources


def test_the_whole_stack_is_there():
    images = {service["image"].split(":")[0] for service in SERVICES.values()}
    assert {"hostagent", "otel/opentelemetry-collector-contrib", "prom/prometheus", "victoriametrics/victoria-metrics",
            "prom/alertmanager", "grafana/grafana"} <= images


@pytest.mark.parametrize("name", SERVICES)
def test_service_uses_only_known_keys(name):
    assert set(SERVICES[name]) <= SERVICE_KEYS


@pytest.mark.parametrize("name", SERVICES)
def test_image_is_pinned(name):
    assert PINNED_IMAGE.match(SERVICES[name]["image"]), "pin an exact version, never latest"


@pytest.mark.parametrize("name", SERVICES)
def test_every_bind_mount_exists_in_the_repository(name):
    for source in bind_sources(SERVICES[name]):
        if source == "/":
            assert name == "agent", "only the agent sees the host's /"
            continue
        assert not source.startswith("/"), f"{source}: an absolute host path outside the repository"
        path = (COMPOSE_DIR / source).resolve()
        assert path.exists(), f"{name}: {source} does not exist"
        assert REPO in path.parents, f"{name}: {source} is outside the repository"


def test_env_files_and_build_context_exist():
    for name, service in SERVICES.items():
        if "env_file" in service:
            assert (COMPOSE_DIR / service["env_file"]).is_file(), name
    build = SERVICES["agent"]["build"]
    assert (COMPOSE_DIR / build["context"] / build["dockerfile"]).is_file()


def test_named_volumes_are_declared_and_used():
    used = {volume.split(":", 1)[0] for service in SERVICES.values() for volume in service.get("volumes", [])
            if isinstance(volume, str) and not volume.startswith((".", "/"))}
    assert used == set(COMPOSE["volumes"])


def test_dependencies_name_services():
    for name, service in SERVICES.items():
        assert set(service.get("depends_on", [])) <= set(SERVICES) - {name}


def test_agent_reads_the_host_read_only():
    agent = SERVICES["agent"]
    [hostfs] = [v for v in agent["volumes"] if isinstance(v, dict) and v["source"] == "/"]
    assert hostfs["read_only"] is True and hostfs["bind"]["propagation"] == "rslave"
    assert agent["environment"]["HOSTAGENT_HOST_ROOT"] == hostfs["target"]
    assert agent["read_only"] is True and agent["cap_drop"] == ["ALL"]


def test_gateway_config_is_mounted_where_the_command_reads_it():
    otelcol = SERVICES["otelcol"]
    targets = {v.split(":")[1]: v.split(":")[0] for v in otelcol["volumes"]}
    for arg in otelcol["command"]:
        config = arg.removeprefix("--config=")
        assert (COMPOSE_DIR / targets[config]).resolve() == REPO / "otel-config" / "gateway.yaml"


def test_urls_point_at_services_and_their_ports():
    published = {name: {int(p.rsplit(":", 2)[-1]) for p in service.get("ports", [])}
                 for name, service in SERVICES.items()}
    urls = [value for service in SERVICES.values() for value in service.get("environment", {}).values()
            if str(value).startswith("http")]
    urls += [arg.split("=", 1)[1] for service in SERVICES.values() for arg in service.get("command", [])
             if re.match(r"^-[\w.]+=http", arg)]
    assert urls
    for url in urls:
        parts = urlsplit(url)
        assert parts.hostname in SERVICES, url
        assert parts.port in published[parts.hostname], url


def test_published_ports_stay_on_loopback():
    for service in SERVICES.values():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), port


def test_prometheus_receives_remote_write_and_loads_the_rules():
    prometheus = SERVICES["prometheus"]
    assert "--web.enable-remote-write-receiver" in prometheus["command"]
    config = yaml.safe_load((COMPOSE_DIR / "prometheus.yml").read_text())
    mounts = {v.split(":")[1]: v.split(":")[0] for v in prometheus["volumes"] if v.startswith(".")}
    [rules_glob] = config["rule_files"]
    rules_dir = COMPOSE_DIR / mounts[str(Path(rules_glob).parent)]
    assert sorted(rules_dir.glob(Path(rules_glob).name)), "the glob matches no rule file"
    for scrape_file in config["scrape_config_files"]:
        assert scrape_file in mounts


def test_both_backends_scrape_every_pipeline_component(tmp_path):
    scrape = COMPOSE_DIR / "scrape.yml"
    # job = the component, as the vmagent gateway and `make run` name them.
    targets = {job["job_name"]: target for job in yaml.safe_load(scrape.read_text())["scrape_configs"]
               for group in job["static_configs"] for target in group["targets"]}
    assert {job: target.split(":")[0] for job, target in targets.items()} == {
        job: job for job in ("otelcol", "prometheus", "victoriametrics", "vmalert", "alertmanager")}
    prometheus_config = tmp_path / "prometheus.yml"
    prometheus_config.write_text(yaml.safe_dump({"scrape_config_files": [str(scrape)]}))
    for check in ([str(require_binary("promtool")), "check", "config", str(prometheus_config)],
                  [str(require_binary("victoria-metrics")), f"-promscrape.config={scrape}", "-dryRun"]):
        result = subprocess.run(check, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr


def test_image_versions_match_the_kubernetes_manifests():
    kubernetes = {image["name"]: image["newTag"] for component in ("otelcol-gateway", "vmagent-gateway")
                  for image in yaml.safe_load((KUBERNETES / "components" / component / "kustomization.yaml")
                                              .read_text())["images"]}
    compose = dict(service["image"].split(":") for service in SERVICES.values())
    gateway = "otel/opentelemetry-collector-contrib"
    assert compose[gateway] == kubernetes[gateway]
    # One VictoriaMetrics release everywhere.
    assert compose["victoriametrics/victoria-metrics"] == compose["victoriametrics/vmalert"] \
        == kubernetes["victoriametrics/vmagent"]
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert compose["hostagent"] == version


def test_gateway_neither_listens_on_nor_writes_to_loopback():
    otelcol = SERVICES["otelcol"]
    config = yaml.safe_load((REPO / "otel-config" / "gateway.yaml").read_text())
    text = yaml.safe_dump(without_relays(expand(config, otelcol["environment"])))
    assert "127.0.0.1" not in text and "localhost" not in text


def test_gateway_runs_with_the_garbage_collector_setting_it_was_measured_with():
    assert SERVICES["otelcol"]["environment"]["GOGC"] == OTELCOL_GOGC


def test_prometheus_runs_with_the_garbage_collector_setting_make_run_measured():
    config = yaml.safe_load((DEPLOY / "compose" / "prometheus.yml").read_text())
    assert config["runtime"] == {"gogc": PROMETHEUS_GOGC}


def test_agent_environment_passes_check_config(tmp_path):
    # /hostfs exists only in the container: a directory with the proc/stat that host_root needs stands in for it
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "stat").write_text("cpu  1 2 3 4\n")
    environment = {**SERVICES["agent"]["environment"], "HOSTAGENT_HOST_ROOT": str(tmp_path)}
    result = subprocess.run([str(agent_executable()), "check-config"], capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", **environment})
    assert result.returncode == 0, result.stderr
    assert environment["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"] in result.stdout


def test_the_agent_shares_no_user_and_no_process_namespace_with_the_gateway():
    """The agent reads the host's /proc through the host root: a process of its own user there shows it its
    environment (the gateway's write URLs and credentials)."""
    agent_user = re.search(r"^USER (\d+):", (DEPLOY / "container" / "Dockerfile").read_text(), re.MULTILINE)[1]
    assert SERVICES["otelcol"]["user"].split(":")[0] != agent_user
    assert SERVICES["otelcol-storage"]["command"][1] == SERVICES["otelcol"]["user"]
    assert "pid" not in SERVICES["agent"]
