"""Template variables shared by the dashboards: data source, job, Kubernetes cluster and node, host."""
from __future__ import annotations

from collector.sources import prometheus_name_of

from .builder import datasource_variable, query_variable

# Every host sends system.uptime on every export: the cheapest series to list hosts with.
_HEARTBEAT = "system.uptime"
_SCOPE = 'job=~"$job", k8s_cluster_name=~"$cluster", k8s_node_name=~"$node"'


def host_variables(*, multi_host: bool) -> list[dict]:
    """Data source, job, cluster, node and host; the host list follows the choices before it.

    Cluster and node match everything when left at All (`.*` also matches hosts outside Kubernetes,
    which lack those labels). Host "All" expands to the listed hosts, so it honours the filters.
    """
    heartbeat = prometheus_name_of(_HEARTBEAT)
    return [
        datasource_variable(),
        query_variable("job", "Job", f"label_values({heartbeat}, job)", multi=True, include_all=True),
        query_variable("cluster", "Cluster", f'label_values({heartbeat}{{job=~"$job"}}, k8s_cluster_name)',
                       multi=True, include_all=True, all_value=".*"),
        query_variable("node", "Kubernetes node",
                       f'label_values({heartbeat}{{job=~"$job", k8s_cluster_name=~"$cluster"}}, k8s_node_name)',
                       multi=True, include_all=True, all_value=".*"),
        query_variable("host", "Host", f"label_values({heartbeat}{{{_SCOPE}}}, host_name)",
                       multi=multi_host, include_all=multi_host),
    ]
