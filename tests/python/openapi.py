"""The OpenAPI v2 document through the Python kubernetes client.

Usage: openapi.py URL CA_FILE TOKEN
Prints each definition asked for on its own line as `NAME: description of FIELD`, after one line
`swagger VERSION, N definitions`.
"""
import sys

from kubernetes import client

url, ca, token = sys.argv[1:4]
conf = client.Configuration()
conf.host = url
conf.ssl_ca_cert = ca
conf.api_key = {"authorization": "Bearer " + token}
api = client.ApiClient(conf)

# The client's own way to GET a path it has no method for.
request = api.param_serialize(
    "GET",
    "/openapi/v2",
    header_params={"Accept": "application/json"},
    auth_settings=["BearerToken"],
)
response = api.call_api(*request)
response.read()
doc = api.response_deserialize(response, {"200": "object"}).data
definitions = doc["definitions"]
print(f"swagger {doc['swagger']}, {len(definitions)} definitions")
for name, field in [
    ("io.k8s.api.core.v1.ServiceAccount", "secrets"),
    ("io.k8s.api.rbac.v1.Role", "rules"),
    ("io.k8s.api.authorization.v1.SubjectAccessReview", "spec"),
    ("io.akuity.kargo.v1alpha1.Stage", "spec"),
]:
    props = definitions[name]["properties"]
    print(f"{name}: {props[field]['description']}")
