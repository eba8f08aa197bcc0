"""Prometheus' classic UI from the cached Debian package: every page and everything it loads answers 200."""
import re
import urllib.parse
import urllib.request

import pytest

from pipeline import backends
from pipeline.services import Prometheus, http_get
from pipeline.testing import free_port, running

PAGES = ("/classic/graph", "/classic/alerts", "/classic/rules", "/classic/targets")
ASSET = re.compile(r'<(?:script[^>]*\ssrc|link[^>]*\shref)="([^"]+)"')


@pytest.fixture(scope="module")
def prometheus_ui(tmp_path_factory):
    with running(Prometheus(free_port(), tmp_path_factory.mktemp("prometheus-ui"))) as server:
        yield server


def test_the_cached_prometheus_is_given_the_cached_ui():
    assets = backends.prometheus_web_assets()
    if assets is not None:
        assert (assets / "static" / "jquery" / "jquery.min.js").is_file(), "libjs-jquery is not unpacked beside it"


def test_root_redirects_to_the_graph_page(prometheus_ui):
    with urllib.request.urlopen(prometheus_ui.url + "/") as response:
        assert response.status == 200
        assert urllib.parse.urlsplit(response.url).path == "/classic/graph"


@pytest.mark.parametrize("page", PAGES)
def test_each_page_and_every_script_and_style_it_loads_answer(prometheus_ui, page):
    html = http_get(prometheus_ui.url + page).decode()
    assets = ASSET.findall(html)
    assert len(assets) >= 5, f"{page} references only {assets}"
    broken = []
    for asset in assets:
        url = urllib.parse.urljoin(prometheus_ui.url + page, asset)
        try:
            body = http_get(url)
        except OSError as error:
            broken.append(f"{asset}: {error}")
            continue
        if not body:
            broken.append(f"{asset}: empty")
    assert not broken, f"{page}: " + "; ".join(broken)
