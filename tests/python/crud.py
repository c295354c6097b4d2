"""CRUD with the Python kubernetes client against a kargo server.

Usage: crud.py URL CA_FILE TOKEN
Prints "ok" when every step behaved as against kube-apiserver; fails with a traceback otherwise.
"""
import sys

from kubernetes import client
from kubernetes.client.rest import ApiException

url, ca, token = sys.argv[1:4]
conf = client.Configuration()
conf.host = url
conf.ssl_ca_cert = ca
conf.api_key = {"authorization": "Bearer " + token}
api = client.ApiClient(conf)
core = client.CoreV1Api(api)
rbac = client.RbacAuthorizationV1Api(api)
custom = client.CustomObjectsApi(api)


def expect_status(code, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except ApiException as e:
        assert e.status == code, (e.status, e.body)
        return e
    raise AssertionError(f"expected HTTP {code}")


core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="py")))
sa = core.create_namespaced_service_account(
    "py", client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="bot", labels={"a": "b"}))
)
assert sa.metadata.name == "bot" and sa.metadata.uid
names = [s.metadata.name for s in core.list_namespaced_service_account("py").items]
assert "bot" in names, names
assert [s.metadata.name for s in core.list_namespaced_service_account("py", label_selector="a=b").items] == ["bot"]

# Update with a stale resourceVersion is a conflict; a fresh one succeeds.
stale = core.read_namespaced_service_account("bot", "py")
core.patch_namespaced_service_account("bot", "py", {"metadata": {"labels": {"c": "d"}}})
stale.metadata.labels["e"] = "f"
e = expect_status(409, core.replace_namespaced_service_account, "bot", "py", stale)
assert "the object has been modified" in e.body, e.body
fresh = core.read_namespaced_service_account("bot", "py")
fresh.metadata.labels["e"] = "f"
updated = core.replace_namespaced_service_account("bot", "py", fresh)
assert updated.metadata.labels == {"a": "b", "c": "d", "e": "f"}, updated.metadata.labels
assert int(updated.metadata.resource_version) > int(fresh.metadata.resource_version)

secret = core.create_namespaced_secret(
    "py", client.V1Secret(metadata=client.V1ObjectMeta(name="s"), string_data={"k": "v"})
)
assert secret.data == {"k": "dg=="}, secret.data
core.create_namespaced_config_map("py", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c"), data={"x": "y"}))
rbac.create_namespaced_role(
    "py",
    client.V1Role(
        metadata=client.V1ObjectMeta(name="r"),
        rules=[client.V1PolicyRule(api_groups=[""], resources=["secrets"], verbs=["get"])],
    ),
)
rbac.create_namespaced_role_binding(
    "py",
    client.V1RoleBinding(
        metadata=client.V1ObjectMeta(name="r"),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name="r"),
        subjects=[client.RbacV1Subject(kind="ServiceAccount", name="bot", namespace="py")],
    ),
)
rbac.create_cluster_role(
    client.V1ClusterRole(
        metadata=client.V1ObjectMeta(name="py-cr"),
        rules=[client.V1PolicyRule(api_groups=[""], resources=["namespaces"], verbs=["get"])],
    )
)
rbac.create_cluster_role_binding(
    client.V1ClusterRoleBinding(
        metadata=client.V1ObjectMeta(name="py-crb"),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="py-cr"),
        subjects=[client.RbacV1Subject(kind="Group", name="g", api_group="rbac.authorization.k8s.io")],
    )
)
assert [r.metadata.name for r in rbac.list_namespaced_role_binding("py").items] == ["r"]

stage = custom.create_namespaced_custom_object(
    "kargo.akuity.io", "v1alpha1", "py", "stages",
    {"apiVersion": "kargo.akuity.io/v1alpha1", "kind": "Stage", "metadata": {"name": "dev"}, "spec": {"x": [1, 2]}},
)
assert stage["spec"] == {"x": [1, 2]}, stage
custom.patch_namespaced_custom_object("kargo.akuity.io", "v1alpha1", "py", "stages", "dev", {"spec": {"y": True}})
got = custom.get_namespaced_custom_object("kargo.akuity.io", "v1alpha1", "py", "stages", "dev")
assert got["spec"] == {"x": [1, 2], "y": True}, got
project = custom.create_cluster_custom_object(
    "kargo.akuity.io", "v1alpha1", "projects",
    {"apiVersion": "kargo.akuity.io/v1alpha1", "kind": "Project", "metadata": {"name": "py-project"}},
)
assert project["metadata"]["name"] == "py-project"

expect_status(404, core.read_namespaced_service_account, "nope", "py")
expect_status(409, core.create_namespaced_service_account, "py", client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="bot")))
expect_status(422, core.create_namespaced_service_account, "py", client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="Bad")))

core.delete_namespaced_service_account("bot", "py")
expect_status(404, core.read_namespaced_service_account, "bot", "py")
core.delete_namespaced_secret("s", "py")
custom.delete_namespaced_custom_object("kargo.akuity.io", "v1alpha1", "py", "stages", "dev")
rbac.delete_cluster_role_binding("py-crb")
rbac.delete_cluster_role("py-cr")
print("ok")
