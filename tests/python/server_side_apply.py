"""Server-side apply with the Python client's dynamic client against a kargo server.

Usage: server_side_apply.py URL CA_FILE TOKEN
Prints "ok" when apply, conflicts (409 with FieldManagerConflict causes), force and removal of
dropped fields behave as against kube-apiserver; fails with a traceback otherwise.
"""
import json
import sys

from kubernetes import client, dynamic
from kubernetes.client.rest import ApiException

url, ca, token = sys.argv[1:4]
conf = client.Configuration()
conf.host = url
conf.ssl_ca_cert = ca
conf.api_key = {"authorization": "Bearer " + token}
api = client.ApiClient(conf)
client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="pyssa")))
dyn = dynamic.DynamicClient(api)
cms = dyn.resources.get(api_version="v1", kind="ConfigMap")


def cm(labels, data):
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "pyssa", "labels": labels}, "data": data}


r = cms.server_side_apply(body=cm({"a": "1"}, {"k": "v", "j": "w"}), field_manager="py-a")
entries = r.metadata.managedFields
assert [(e.manager, e.operation) for e in entries] == [("py-a", "Apply")], entries
assert entries[0].fieldsV1.to_dict() == {"f:data": {"f:j": {}, "f:k": {}}, "f:metadata": {"f:labels": {"f:a": {}}}}, entries

try:
    cms.server_side_apply(body=cm({"a": "2"}, {}), field_manager="py-b")
    raise AssertionError("expected a conflict")
except ApiException as e:
    assert e.status == 409, (e.status, e.body)
    status = json.loads(e.body)
    assert status["reason"] == "Conflict", status
    assert status["message"] == 'Apply failed with 1 conflict: conflict with "py-a": .metadata.labels.a', status
    assert status["details"]["causes"] == [
        {"reason": "FieldManagerConflict", "message": 'conflict with "py-a"', "field": ".metadata.labels.a"}
    ], status

r = cms.server_side_apply(body=cm({"a": "2"}, {}), field_manager="py-b", force_conflicts=True)
assert r.metadata.labels.a == "2", r.metadata.labels

r = cms.server_side_apply(body=cm({}, {"k": "v"}), field_manager="py-a")
assert r.data.to_dict() == {"k": "v"}, r.data
assert r.metadata.labels.a == "2", r.metadata.labels
print("ok")
