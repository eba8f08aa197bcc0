"""The dashboard generator and linter live in grafana/dashgen; put grafana/ on the import path."""
import sys
from pathlib import Path

GRAFANA_DIR = Path(__file__).resolve().parents[2] / "grafana"
sys.path.insert(0, str(GRAFANA_DIR))
