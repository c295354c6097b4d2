"""Who the server says a token is, with the Python kubernetes client (a SelfSubjectReview).

Usage: whoami.py URL CA_FILE TOKEN
Prints the username, or "401" when the token is refused; fails with a traceback otherwise.
"""
import sys

from kubernetes import client
from kubernetes.client.rest import ApiException

url, ca, token = sys.argv[1:4]
conf = client.Configuration()
conf.host = url
conf.ssl_ca_cert = ca
conf.api_key = {"authorization": "Bearer " + token}
api = client.AuthenticationV1Api(client.ApiClient(conf))
try:
    review = api.create_self_subject_review(client.V1SelfSubjectReview())
except ApiException as e:
    if e.status != 401:
        raise
    print("401")
else:
    print(review.status.user_info.username)
