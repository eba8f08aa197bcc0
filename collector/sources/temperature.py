"""Hardware temperatures from /sys/class/hwmon (semconv hw.temperature)."""

import contextlib
import os
from pathlib import Path

from collector.sources.base import Source, Unavailable
from collector.spec import Point, gauge

TEMPERATURE = gauge("hw.temperature", "Cel", "Temperature reported by a hardware sensor.", "hw.id", "hw.name",
                    # the sensor's label (tempN_label) and the device its chip sits on, where the kernel names them
                    optional=("hw.sensor_location", "hw.parent"), condition="where hwmon temperature sensors exist")


class TemperatureSource(Source):
    name = "temperature"
    metrics = (TEMPERATURE,)

    def __init__(self, host, options):
        super().__init__(host, options)
        self._identities: dict[tuple[str, str], dict] = {}  # a sensor's names never change: read them once

    def collect(self) -> list[Point]:
        hwmon = self.host.host_path("/sys/class/hwmon")
        inputs = sensor_inputs(hwmon)
        if not inputs:
            raise Unavailable(f"no temperature sensors under {hwmon}")
        points = []
        for chip, name in inputs:
            try:
                millidegrees = int(self.host.read_sys(f"class/hwmon/{chip}/{name}"))
            except (OSError, ValueError):  # a sensor that is asleep or gone reports nothing, not zero
                continue
            if (chip, name) not in self._identities:
                self._identities[(chip, name)] = sensor_identity(hwmon / chip / name)
            points.append(Point(TEMPERATURE.name, millidegrees / 1000, self._identities[(chip, name)]))
        return points


def sensor_inputs(hwmon: Path) -> list[tuple[str, str]]:
    """(chip directory, tempN_input) of each sensor, in path order: hwmon*/temp*_input without pathlib's glob,
    which costs more than the reads (~50 µs a cycle where there is no sensor at all)."""
    found = []
    with contextlib.suppress(OSError):
        for chip in os.listdir(hwmon):
            if chip.startswith("hwmon"):
                with contextlib.suppress(OSError):
                    found += [(chip, name) for name in os.listdir(hwmon / chip)
                              if name.startswith("temp") and name.endswith("_input")]
    return sorted(found)


def sensor_identity(input_path: Path) -> dict:
    chip_dir = input_path.parent
    sensor = input_path.name.removesuffix("_input")
    chip = _read(chip_dir / "name") or chip_dir.name
    # Two NVMe drives (or two CPU sockets) have chips of the same name: the device they sit on tells them apart.
    parent = (chip_dir / "device").resolve().name if (chip_dir / "device").exists() else None
    label = _read(chip_dir / f"{sensor}_label")
    identity = {"hw.id": f"{chip}.{parent or chip_dir.name}.{sensor}", "hw.name": f"{chip} {label or sensor}"}
    if label:
        identity["hw.sensor_location"] = label
    if parent:
        identity["hw.parent"] = parent
    return identity


def _read(path):
    try:
        return path.read_text().strip()
    except OSError:
        return None
