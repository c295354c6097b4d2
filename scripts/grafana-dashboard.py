#!/usr/bin/env python3
# Writes docs/grafana-dashboard.json (the dashboard of docs/operations.md, "Metrics"):
#   scripts/grafana-dashboard.py > docs/grafana-dashboard.json
# The e2e test metrics::the_dashboard_and_the_alert_rules_use_metrics_the_server_writes checks
# that every metric it names is one the server writes.
import json
panels = []
def panel(title, exprs, unit="short", w=12, h=8, desc=""):
    n = len(panels)
    panels.append({
        "id": n + 1,
        "type": "timeseries",
        "title": title,
        "description": desc,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"x": (n % 2) * 12, "y": (n // 2) * 8, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}},
        "targets": [
            {"refId": chr(ord("A") + i), "expr": e, "legendFormat": l, "datasource": {"type": "prometheus", "uid": "${datasource}"}}
            for i, (e, l) in enumerate(exprs)
        ],
    })
I = '{instance=~"$instance"}'
def sel(extra=""):
    inner = 'instance=~"$instance"' + ("," + extra if extra else "")
    return "{" + inner + "}"
panel("Requests by code", [(f'sum by (code) (rate(apiserver_request_total{sel()}[$__rate_interval]))', "{{code}}")], "reqps")
panel("Requests by verb and resource", [(f'sum by (verb, resource) (rate(apiserver_request_total{sel()}[$__rate_interval]))', "{{verb}} {{resource}}")], "reqps")
NW = sel('verb!="WATCH"')
panel("Latency p50 / p99 (without watches)", [
    (f'histogram_quantile(0.5, sum by (le) (rate(apiserver_request_duration_seconds_bucket{NW}[$__rate_interval])))', "p50"),
    (f'histogram_quantile(0.99, sum by (le) (rate(apiserver_request_duration_seconds_bucket{NW}[$__rate_interval])))', "p99"),
], "s")
panel("In flight and watches", [
    (f'sum by (request_kind) (apiserver_current_inflight_requests{sel()})', "in flight {{request_kind}}"),
    (f'sum by (resource) (apiserver_longrunning_requests{sel()})', "watches {{resource}}"),
    (f'sum by (kind) (rate(apiserver_watch_events_total{sel()}[$__rate_interval]))', "watch events/s {{kind}}"),
])
panel("Authentication attempts", [(f'sum by (result, kind) (rate(authentication_attempts{sel()}[$__rate_interval]))', "{{result}} {{kind}}")], "reqps")
panel("Token cache and authorization", [
    (f'sum by (status) (rate(authentication_token_cache_request_total{sel()}[$__rate_interval]))', "token cache {{status}}"),
    (f'sum by (decision) (rate(kargo_authorization_decisions_total{sel()}[$__rate_interval]))', "authorization {{decision}}"),
], "ops")
panel("Store latency p99", [(f'histogram_quantile(0.99, sum by (le, backend, operation) (rate(kargo_storage_request_duration_seconds_bucket{sel()}[$__rate_interval])))', "{{backend}} {{operation}}")], "s")
panel("Store errors", [(f'sum by (backend, operation) (rate(kargo_storage_request_errors_total{sel()}[$__rate_interval]))', "{{backend}} {{operation}}")], "ops")
panel("Service-account tokens", [
    (f'max(kargo_service_account_tokens{sel()})', "tokens"),
    (f'max(increase(kargo_service_account_tokens_created_total{sel()}[1h]))', "issued in the last hour"),
    (f'max(increase(kargo_service_account_tokens_revoked_total{sel()}[1h]))', "revoked in the last hour"),
])
panel("Memory", [(f'process_resident_memory_bytes{sel()}', "{{instance}}")], "bytes")
panel("CPU", [(f'rate(process_cpu_seconds_total{sel()}[$__rate_interval])', "{{instance}}")], "percentunit")
panel("Open file descriptors", [
    (f'process_open_fds{sel()}', "open {{instance}}"),
    (f'process_max_fds{sel()}', "max {{instance}}"),
])
dashboard = {
    "title": "Kargo ServiceAccounts server",
    "uid": "kargo-server",
    "description": "Requests, latency, authentication, the store and tokens of kargo server (docs/operations.md, Metrics).",
    "tags": ["kargo"],
    "timezone": "browser",
    "schemaVersion": 39,
    "version": 1,
    "editable": True,
    "refresh": "30s",
    "time": {"from": "now-1h", "to": "now"},
    "templating": {"list": [
        {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus", "current": {}, "hide": 0},
        {"name": "instance", "label": "Instance", "type": "query", "datasource": {"type": "prometheus", "uid": "${datasource}"},
         "query": {"query": "label_values(apiserver_request_total, instance)", "refId": "instance"},
         "definition": "label_values(apiserver_request_total, instance)",
         "includeAll": True, "multi": True, "allValue": ".*", "current": {}, "refresh": 2, "hide": 0},
    ]},
    "panels": panels,
}
print(json.dumps(dashboard, indent=2))
