"""A Kargo ServiceAccount token used with the Python kubernetes client.

Usage: kargo_token.py URL CA_FILE TOKEN PROJECT STATE
STATE is what the token should be able to do:
  granted  - read Stages and Promotions in PROJECT, and nothing else;
  revoked  - authenticated, but reading Stages is forbidden;
  deleted  - not authenticated any more.
Prints "ok" when the client sees exactly that; fails with a traceback otherwise.
"""
import sys

from kubernetes import client
from kubernetes.client.rest import ApiException

url, ca, token, project, state = sys.argv[1:6]
conf = client.Configuration()
conf.host = url
conf.ssl_ca_cert = ca
conf.api_key = {"authorization": "Bearer " + token}
api = client.ApiClient(conf)
core = client.CoreV1Api(api)
custom = client.CustomObjectsApi(api)


def status_of(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except ApiException as e:
        return e.status
    return 200


def list_stages():
    return custom.list_namespaced_custom_object("kargo.akuity.io", "v1alpha1", project, "stages")


if state == "granted":
    stages = list_stages()
    assert [s["metadata"]["name"] for s in stages["items"]] == ["dev"], stages
    stage = custom.get_namespaced_custom_object("kargo.akuity.io", "v1alpha1", project, "stages", "dev")
    assert stage["spec"] == {"shard": "a"}, stage
    assert status_of(custom.list_namespaced_custom_object, "kargo.akuity.io", "v1alpha1", project, "promotions") == 200
    forbidden = [
        (core.list_namespaced_secret, (project,)),
        (core.list_namespaced_service_account, (project,)),
        (core.list_namespaced_config_map, (project,)),
        (custom.list_namespaced_custom_object, ("kargo.akuity.io", "v1alpha1", project, "warehouses")),
        (custom.list_namespaced_custom_object, ("kargo.akuity.io", "v1alpha1", "default", "stages")),
        (custom.create_namespaced_custom_object, ("kargo.akuity.io", "v1alpha1", project, "stages",
                                                  {"apiVersion": "kargo.akuity.io/v1alpha1", "kind": "Stage",
                                                   "metadata": {"name": "prod"}})),
        (custom.delete_namespaced_custom_object, ("kargo.akuity.io", "v1alpha1", project, "stages", "dev")),
        (core.list_namespace, ()),
    ]
    for fn, args in forbidden:
        assert status_of(fn, *args) == 403, (fn.__name__, args)
elif state == "revoked":
    assert status_of(list_stages) == 403
elif state == "deleted":
    assert status_of(list_stages) == 401
else:
    raise SystemExit(f"unknown state {state}")
print("ok")
