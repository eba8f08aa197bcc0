"""The `collector` command line."""

import logging
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import click

from collector import __version__, render, usage
from collector.config import CONFIG_FILE_VARIABLE, Config, ConfigError, load
from collector.sources import declared_metrics

EXIT_CONFIG = 2
# The file is checked by load(), not by click: a directory or an unreadable file gets the one-line error too.
config_option = click.option("--config", "config_path", envvar=CONFIG_FILE_VARIABLE,
                             help="YAML configuration file (env HOSTAGENT_CONFIG). Every option has a default.")


def _load(config_path) -> Config:
    try:
        return load(config_path)
    except ConfigError as error:
        # A name or value that is not valid UTF-8 (surrogate escapes from the OS) is shown escaped.
        click.echo(f"error: {error}".encode(errors="backslashreplace").decode(), err=True)
        sys.exit(EXIT_CONFIG)


@click.group()
@click.version_option(__version__, prog_name="collector")
def main():
    """OpenTelemetry host-metrics agent."""


@main.command()
@config_option
def run(config_path):
    """Collect and export over OTLP until SIGTERM or SIGINT (which flush a final export); exit 1 after a
    fault the agent cannot recover from (logged), for its supervisor to restart it."""
    from collector.agent import Agent
    from collector.host import raise_open_file_limit

    config = _load(config_path)
    raise_open_file_limit()
    logging.basicConfig(level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        agent = Agent(config)
    except OSError as error:  # the health port is taken, a certificate is unreadable
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: agent.stop.set())
    sys.exit(agent.run())


@main.command("check-config")
@click.argument("config_path", required=False, envvar=CONFIG_FILE_VARIABLE)
def check_config(config_path):
    """Validate a configuration file (the argument or env HOSTAGENT_CONFIG, as `run` finds it) and the
    environment without running; exit 2 when invalid."""
    config = _load(config_path)
    click.echo(f"{config_path or 'defaults'}: OK — exporting to {config.exporter.url_for_logs} "
               f"({config.exporter.protocol}) every {config.exporter.interval:g}s; "
               f"sources: {', '.join(config.enabled_sources)}")


@main.command()
@click.option("--format", "output", type=click.Choice(["table", "markdown", "naming", "json"]), default="table",
              help="markdown: docs/metrics.md; naming: docs/naming.md (OTLP → Prometheus); json: for programs.")
@click.option("--used-by", nargs=2, type=click.Path(exists=True, file_okay=False, path_type=Path),
              metavar="RULES_DIR DASHBOARDS_DIR",
              help="markdown: list the recording rules and alerts (*.rules.yml) and dashboard panels (*.json) "
                   "that read each metric.")
def sources(output, used_by):
    """List every metric the agent can emit, as declared by its sources."""
    if output == "markdown":
        click.echo(render.metrics_markdown(declared_metrics(), usage.uses(*used_by) if used_by else None))
        return
    renderers = {"table": render.sources_table, "naming": render.naming_markdown, "json": render.sources_json}
    click.echo(renderers[output](declared_metrics()))


@main.command()
@config_option
@click.option("--format", "output", type=click.Choice(["table", "json"]), default="table")
def snapshot(config_path, output):
    """Collect once and print the values (utilization needs two readings: this takes a second)."""
    from collector.agent import build_collection
    from collector.host import Host
    from collector.resource import build_resource
    from collector.telemetry import AgentTelemetry

    config = _load(config_path)
    collection = build_collection(config, Host(config.host_root), AgentTelemetry())
    collection.refresh()
    time.sleep(1)
    collection.refresh()
    timestamp = datetime.now(UTC).isoformat(timespec="seconds")
    resource = dict(build_resource(Host(config.host_root), config=config.resource).attributes)
    units = {spec.name: spec.unit for spec in collection.specs()}
    if output == "json":
        click.echo(render.snapshot_json(collection.points(), units, timestamp, resource))
        return
    click.echo(render.snapshot_table({s.name: collection.latest(s.name) for s in collection.sources}, units,
                                     timestamp, resource))
