"""Scrapes /metrics and parses it with the Prometheus client library's OpenMetrics parser.

Usage: metrics.py URL CA_FILE TOKEN [PLAIN_URL]
With PLAIN_URL (the plain-HTTP `--metrics-address`), scrapes that without a token instead.
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
if len(sys.argv) > 4:
    request, context = urllib.request.Request(sys.argv[4] + "/metrics"), None
else:
    request = urllib.request.Request(url + "/metrics", headers={"Authorization": "Bearer " + token})
    context = ssl.create_default_context(cafile=ca)
try:
    with urllib.request.urlopen(request, context=context) as response:
        text = response.read().decode()
except urllib.error.HTTPError as e:
    print("status", e.code)
    sys.exit(0)
for family in text_string_to_metric_families(text):
    for sample in family.samples:
        print(json.dumps({"name": sample.name, "labels": sample.labels, "value": sample.value}))
