from pathlib import Path

import pytest

from pipeline.services import GATEWAY_CONFIG, REPO_ROOT
from pipeline.testing import require_binary

KUBERNETES = REPO_ROOT / "deploy" / "kubernetes"
COMPONENT = KUBERNETES / "components" / "otelcol-gateway"
# Every way the project runs the collector: make run and compose (gateway.yaml as is), and Kubernetes (its copy,
# merged with the backends file of the component or of an overlay).
SHIPPED_CONFIGS = {
    "gateway.yaml": (GATEWAY_CONFIG,),
    "kubernetes both": (COMPONENT / "gateway.yaml", COMPONENT / "backends.yaml"),
    **{f"kubernetes {overlay}": (COMPONENT / "gateway.yaml", KUBERNETES / "overlays" / overlay / "backends.yaml")
       for overlay in ("prometheus", "victoriametrics", "scaled")},
}


@pytest.fixture
def otelcol_binary() -> Path:
    return require_binary("otelcol")


@pytest.fixture(params=SHIPPED_CONFIGS.values(), ids=SHIPPED_CONFIGS.keys())
def shipped_config(request) -> tuple[Path, ...]:
    return request.param
