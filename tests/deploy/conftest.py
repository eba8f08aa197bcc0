"""Fixtures for the deployment tests."""

import pytest

from tests.deploy.manifests import KUBERNETES, OVERLAYS, render


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict]]:
    """Every overlay, rendered once: overlay name -> list of manifests."""
    return {name: render(KUBERNETES / "overlays" / name) for name in OVERLAYS}
