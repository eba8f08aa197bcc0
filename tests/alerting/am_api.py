"""The few Alertmanager API v2 calls the alerting tests make."""
from __future__ import annotations

import json
import urllib.parse
import urllib.request


def post_alerts(base_url: str, alerts: list[dict]) -> None:
    request = urllib.request.Request(f"{base_url}/api/v2/alerts", data=json.dumps(alerts).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def get(base_url: str, path: str, **filters: str) -> list[dict]:
    query = urllib.parse.urlencode({"filter": [f'{k}="{v}"' for k, v in filters.items()]}, doseq=True)
    with urllib.request.urlopen(f"{base_url}/api/v2/{path}?{query}", timeout=10) as response:
        return json.loads(response.read())
