"""Security: OTLP over TLS verified by default against a real TLS listener (the vmagent gateway with `-tls`),
client certificates (mTLS), secrets never logged, and the health endpoint on localhost by default."""
import os
import ssl
import urllib.request

import pytest

from collector.config import ExporterConfig, HealthConfig
from pipeline.services import VictoriaMetrics
from pipeline.testing import free_port, running, wait_for
from tests.reliability.agent_process import AgentProcess
from tests.reliability.endpoint import Endpoint
from tests.reliability.grpc_endpoint import GrpcTlsEndpoint
from tests.reliability.namespaces import with_own_network
from tests.reliability.otlp import latest, read_backlog_file
from tests.reliability.tls import CertificateAuthority
from tests.reliability.tls_gateway import TlsVmagent

VERIFY_FAILED = "CERTIFICATE_VERIFY_FAILED"


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return CertificateAuthority(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def tls_gateway(tmp_path_factory, ca):
    """VictoriaMetrics behind the vmagent gateway, which accepts OTLP only over HTTPS."""
    base = tmp_path_factory.mktemp("tls-gateway")
    with running(VictoriaMetrics(free_port(), base / "victoria-metrics")) as victoriametrics:
        gateway = TlsVmagent(free_port(), base / "vmagent", victoriametrics, ca.issue("gateway", server=True),
                             ca.bundle)
        with running(gateway):
            yield gateway


@pytest.fixture(scope="module")
def unrelated_ca_bundle(tmp_path_factory):
    return CertificateAuthority(tmp_path_factory.mktemp("other-ca"), "unrelated CA").bundle


@pytest.fixture
def agent_for(tmp_path, unrelated_ca_bundle):
    """Agents with their own `instance` label (so that tests can share one gateway), in an environment whose
    REQUESTS_CA_BUNDLE names another CA: the agent's own TLS options must win over it."""
    def build(endpoint: str, instance: str, exporter: dict | None = None, **environment):
        return AgentProcess(tmp_path / "agent", endpoint, {"exporter": exporter or {}}, {
            "OTEL_RESOURCE_ATTRIBUTES": f"service.instance.id={instance}",
            "REQUESTS_CA_BUNDLE": str(unrelated_ca_bundle), "CURL_CA_BUNDLE": str(unrelated_ca_bundle),
            **environment})
    return build


def assert_refused_and_kept(agent: AgentProcess) -> None:
    """Wait for three exports kept in the backlog; the newest counts the failed exports before it."""
    wait_for(lambda: len(agent.backlog_files()) >= 3, timeout=30, what="three refused exports in the backlog")
    kept = [read_backlog_file(path) for path in agent.backlog_files()]
    assert latest(kept, "hostagent.export.requests", hostagent_outcome="failure") >= 2
    assert latest(kept, "hostagent.export.requests", hostagent_outcome="success") == 0


def delivered(gateway, instance: str) -> bool:
    return bool(gateway.victoriametrics.query(f'system_uptime_seconds{{instance="{instance}"}}'))


def test_the_gateway_really_serves_tls_only(tls_gateway):
    with pytest.raises(OSError):  # plain HTTP to the TLS port gets no answer
        urllib.request.urlopen(f"http://127.0.0.1:{tls_gateway.port}/health", timeout=5)


def test_with_the_gateways_ca_the_agent_delivers_over_tls(agent_for, tls_gateway, ca):
    with running(agent_for(tls_gateway.otlp_url, "with-ca", {"certificate": str(ca.bundle)})) as agent:
        wait_for(lambda: delivered(tls_gateway, "with-ca"), what="data delivered over TLS")
        assert VERIFY_FAILED not in agent.log()


def test_verification_is_on_by_default_and_an_unknown_ca_keeps_data_back(agent_for, tls_gateway):
    assert (ExporterConfig().insecure, ExporterConfig().certificate) == (False, None)
    with running(agent_for(tls_gateway.otlp_url, "no-ca")) as agent:
        assert_refused_and_kept(agent)
        log = agent.log()
    assert log.count(VERIFY_FAILED) == 1, log
    assert not delivered(tls_gateway, "no-ca")


def test_insecure_skips_verification_only_when_asked(agent_for, tls_gateway):
    with running(agent_for(tls_gateway.otlp_url, "insecure", {"insecure": True})) as agent:
        wait_for(lambda: delivered(tls_gateway, "insecure"), what="data delivered with insecure: true")
        assert not agent.backlog_files()


def mutual_tls(ca: CertificateAuthority) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=ca.bundle)
    server = ca.issue("mtls-server", server=True)
    context.load_cert_chain(server.certificate, server.key)
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def test_mutual_tls_with_a_client_certificate_delivers(agent_for, ca):
    client = ca.issue("agent", server=False)
    exporter = {"certificate": str(ca.bundle), "client_certificate": str(client.certificate),
                "client_key": str(client.key)}
    with Endpoint(tls=mutual_tls(ca)) as gateway, running(agent_for(gateway.url(), "mtls", exporter)) as agent:
        wait_for(lambda: len(gateway.received()) >= 2, timeout=30, what="requests over mutual TLS")
        assert not agent.backlog_files()


def test_mutual_tls_without_a_client_certificate_is_refused(agent_for, ca):
    with Endpoint(tls=mutual_tls(ca)) as gateway:
        agent = agent_for(gateway.url(), "no-client-cert", {"certificate": str(ca.bundle)})
        with running(agent):
            assert_refused_and_kept(agent)
            log = agent.log()
        assert gateway.received() == []
    warnings = [line.split(" WARNING ", 1)[1] for line in log.splitlines() if " WARNING collector.exporter" in line]
    assert warnings and all("SSLError" in warning for warning in warnings), log
    # TLS 1.3 reports the refusal as an alert or as an EOF, depending on timing: each change is logged, no repeat.
    assert all(first != second for first, second in zip(warnings, warnings[1:])), log


def test_secret_headers_reach_the_gateway_but_never_the_log(agent_for, tmp_path):
    from_env, from_file = "Bearer env-secret-0xC0FFEE", "file-secret-0xBADC0DE"
    headers_file = tmp_path / "headers"
    headers_file.write_text(f"# credentials\nX-Api-Key={from_file}\n")
    with Endpoint() as gateway:
        agent = agent_for(gateway.url(), "secrets", {"headers_file": str(headers_file)},
                          OTEL_EXPORTER_OTLP_HEADERS=f"Authorization={from_env.replace(' ', '%20')}",
                          HOSTAGENT_LOG_LEVEL="debug")
        with running(agent):
            wait_for(lambda: len(gateway.received()) >= 2, timeout=30, what="two exports")
            gateway.status = 401  # the error path logs too
            wait_for(lambda: "HTTP 401" in agent.log(), timeout=30, what="a refused export in the log")
            log = agent.log()
        sent = gateway.headers[0]
    assert (sent["Authorization"], sent["X-Api-Key"]) == (from_env, from_file)
    assert "DEBUG" in log, "debug logging was not on"
    assert from_env.split()[1] not in log and from_file not in log


def test_the_health_endpoint_listens_on_localhost_by_default(tmp_path):
    assert HealthConfig().listen.startswith("127.0.0.1:")
    # Live, in a private network namespace, where the default port is free whatever runs on this machine.
    agent = AgentProcess(tmp_path / "agent", "http://127.0.0.1:4318/v1/metrics", wrapper=with_own_network())
    agent.config = lambda: {k: v for k, v in AgentProcess.config(agent).items() if k != "health"}
    agent.is_ready = lambda: agent_listening(agent.process.pid)
    with running(agent):
        assert listening(agent.process.pid) == {("127.0.0.1", 13134)}


def agent_listening(pid: int) -> bool:
    """True once `pid` runs the agent (until then it may still be in this test's network namespace) and listens."""
    return "python" in os.readlink(f"/proc/{pid}/exe") and bool(listening(pid))


def listening(pid: int) -> set[tuple[str, int]]:
    """The TCP sockets listening in the network namespace of process `pid`."""
    found = set()
    for table, family in (("tcp", 4), ("tcp6", 6)):
        for line in open(f"/proc/{pid}/net/{table}").read().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if state == "0A":
                address, port = local.split(":")
                found.add((_address(address, family), int(port, 16)))
    return found


def _address(hex_address: str, family: int) -> str:
    import ipaddress
    raw = bytes.fromhex(hex_address)
    # /proc/net/tcp prints the address as host-order 32-bit words
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words))


@pytest.mark.parametrize("client_certificate", [True, False], ids=["with-client-cert", "without-client-cert"])
def test_grpc_over_mutual_tls(agent_for, ca, client_certificate):
    exporter = {"protocol": "grpc", "certificate": str(ca.bundle)}
    if client_certificate:
        client = ca.issue("grpc-agent", server=False)
        exporter |= {"client_certificate": str(client.certificate), "client_key": str(client.key)}
    with (GrpcTlsEndpoint(ca, require_client_certificate=True) as gateway,
          running(agent_for(gateway.url, "grpc-mtls", exporter)) as agent):
        if client_certificate:
            wait_for(lambda: len(gateway.received()) >= 2, timeout=30, what="requests over gRPC with mTLS")
            assert not agent.backlog_files()
        else:
            assert_refused_and_kept(agent)
            assert gateway.received() == []


def test_grpc_verifies_the_gateway_by_default(agent_for, ca):
    with GrpcTlsEndpoint(ca, require_client_certificate=False) as gateway:
        with running(agent_for(gateway.url, "grpc-no-ca", {"protocol": "grpc"})) as agent:
            assert_refused_and_kept(agent)
            assert gateway.received() == []
        with running(agent_for(gateway.url, "grpc-ca", {"protocol": "grpc", "certificate": str(ca.bundle)})):
            wait_for(lambda: len(gateway.received()) >= 2, timeout=30, what="requests over gRPC with the CA")
