"""The vmagent gateway serving OTLP over HTTPS (`-tls`), with a certificate from the test's CA.

This vmagent (the open-source build) has no `-mtls`: client certificates are enterprise-only, so mTLS is tested
against `Endpoint` with a TLS context that requires them."""
from __future__ import annotations

import ssl
import urllib.request
from pathlib import Path

from pipeline.services import HOST, VictoriaMetrics, Vmagent
from tests.reliability.tls import KeyPair


class TlsVmagent(Vmagent):
    """Both remote-write URLs lead to `victoriametrics`: the TLS tests only ask whether data arrived."""

    def __init__(self, port: int, data_dir: Path, victoriametrics: VictoriaMetrics, server: KeyPair,
                 ca_bundle: Path):
        super().__init__(port, data_dir, victoriametrics.write_url, victoriametrics.write_url)
        self.victoriametrics, self.server, self.ca_bundle = victoriametrics, server, ca_bundle

    @property
    def url(self) -> str:
        return f"https://{HOST}:{self.port}"

    def argv(self) -> list[str]:
        return [*super().argv(), "-tls", f"-tlsCertFile={self.server.certificate}",
                f"-tlsKeyFile={self.server.key}"]

    def is_ready(self) -> bool:
        try:
            context = ssl.create_default_context(cafile=self.ca_bundle)
            urllib.request.urlopen(self.ready_url, context=context, timeout=2).close()
            return True
        except OSError:  # URLError and SSLError are OSErrors
            return False
