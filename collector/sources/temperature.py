"""Hardware temperatures from /sys/class/hwmon (semconv hw.temperature)."""

from collector.sources.base import Source, Unavailable
from collector.spec import Point, gauge


class TemperatureSource(Source):
    name = "temperature"
    metrics = (
        gauge("hw.temperature", "Cel", "Temperature reported by a hardware sensor.",
              "hw.id", "hw.name", "hw.type", condition="where hwmon temperature sensors exist"),
    )

    def collect(self) -> list[Point]:
        hwmon = self.host.root / "sys/class/hwmon"
        inputs = sorted(hwmon.glob("hwmon*/temp*_input"))
        if not inputs:
            raise Unavailable(f"no temperature sensors under {hwmon}")
        return [point for path in inputs if (point := sensor_point(path))]


def sensor_point(input_path):
    chip_dir = input_path.parent
    sensor = input_path.name.removesuffix("_input")
    try:
        millidegrees = int(input_path.read_text())
    except (OSError, ValueError):  # a sensor that is asleep or gone reports nothing, not zero
        return None
    chip = _read(chip_dir / "name") or chip_dir.name
    label = _read(chip_dir / f"{sensor}_label") or sensor
    return Point("hw.temperature", millidegrees / 1000,
                 {"hw.id": f"{chip}.{sensor}", "hw.name": f"{chip} {label}", "hw.type": "temperature"})


def _read(path):
    try:
        return path.read_text().strip()
    except OSError:
        return None
