"""A token exchanged for a CI job's OIDC token, used with the Python kubernetes client.

Usage: federated_token.py URL CA_FILE TOKEN PROJECT STATE
STATE is what the token should be able to do:
  trusted  - list the ServiceAccounts of PROJECT (prints their names, one per line);
  removed  - nothing: the trust (or the account) is gone, every request is 401.
Fails with a traceback otherwise.
"""
import sys

from kubernetes import client
from kubernetes.client.rest import ApiException

url, ca, token, project, state = sys.argv[1:6]
conf = client.Configuration()
conf.host = url
conf.ssl_ca_cert = ca
conf.api_key = {"authorization": "Bearer " + token}
core = client.CoreV1Api(client.ApiClient(conf))

if state == "trusted":
    for account in core.list_namespaced_service_account(project).items:
        print(account.metadata.name)
elif state == "removed":
    try:
        core.list_namespaced_service_account(project)
    except ApiException as e:
        assert e.status == 401, e.status
        print("401")
    else:
        raise AssertionError("the token still works")
else:
    raise SystemExit("unknown state " + state)
