"""/version and the health endpoints with the Python kubernetes client.

Usage: version.py URL CA_FILE TOKEN KARGO_VERSION
Prints "ok" when the client reads the server's version.Info (with the Kargo version as build
metadata) and the health endpoints answer as kube-apiserver's; fails with a traceback otherwise.
"""
import sys

from kubernetes import client

url, ca, token, kargo_version = sys.argv[1:5]
conf = client.Configuration()
conf.host = url
conf.ssl_ca_cert = ca
conf.api_key = {"authorization": "Bearer " + token}
api = client.ApiClient(conf)

info = client.VersionApi(api).get_code()
assert info.major == "1", info
assert info.minor == "32", info
assert info.git_version == f"v1.32.0+kargo-{kargo_version}", info
assert info.compiler == "rustc", info
assert info.platform, info

for path, verbose in [("/livez", "livez check passed"), ("/readyz", "readyz check passed")]:
    response = api.call_api("GET", f"{url}{path}?verbose")
    response.read()
    status, body = response.status, response.data.decode()
    assert status == 200, (path, status, body)
    assert "[+]ping ok" in body and body.rstrip().endswith(verbose), (path, body)
print("ok")
