"""Scrapes /metrics and parses it with the Prometheus client library's OpenMetrics parser.

Usage: metrics.py URL CA_FILE TOKEN
Prints one JSON object per sample: {"name": ..., "labels": {...}, "value": ...}; with a token
that may not read /metrics, prints "status NNN" (the HTTP status) instead. Fails with a
traceback when the text does not parse.
"""
import json
import ssl
import sys
import urllib.error
import urllib.request

from prometheus_client.openmetrics.parser import text_string_to_metric_families

url, ca, token = sys.argv[1:4]
request = urllib.request.Request(url + "/metrics", headers={"Authorization": "Bearer " + token})
try:
    with urllib.request.urlopen(request, context=ssl.create_default_context(cafile=ca)) as response:
        text = response.read().decode()
except urllib.error.HTTPError as e:
    print("status", e.code)
    sys.exit(0)
for family in text_string_to_metric_families(text):
    for sample in family.samples:
        print(json.dumps({"name": sample.name, "labels": sample.labels, "value": sample.value}))
