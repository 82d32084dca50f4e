"""A workload calls Microsoft Graph with its own identity, authenticated by a federated token (workload identity
federation: a Kubernetes service-account token, a CI system's OIDC token) instead of a secret.

    python confidential_client_federated_sample.py [parameters.json]

Settings (see _config.py): authority, client_id, federated_token_file (AZURE_FEDERATED_TOKEN_FILE on AKS),
scope (default https://graph.microsoft.com/.default), endpoint (default https://graph.microsoft.com/v1.0/users),
assertion_form: "callable" (default: the file is re-read for every request MSAL sends, as it rotates) or
"string" (read once).
"""
import json

import msal
import requests

import _config

token_file = _config.get("federated_token_file", required=True)


def read_token():
    with open(token_file) as f:
        return f.read().strip()


assertion = read_token if _config.get("assertion_form", "callable") == "callable" else read_token()
app = msal.ConfidentialClientApplication(
    _config.get("client_id", required=True),
    client_credential={"client_assertion": assertion},
    **_config.app_options())

# acquire_token_for_client looks in the app's token cache first.
result = app.acquire_token_for_client(scopes=_config.scopes("https://graph.microsoft.com/.default"))

if "access_token" in result:
    graph_data = requests.get(
        _config.get("endpoint", "https://graph.microsoft.com/v1.0/users"),
        headers={"Authorization": "Bearer " + result["access_token"]}).json()
    print("Graph API call result: ")
    print(json.dumps(graph_data, indent=2))
else:
    _config.print_error(result)
    raise SystemExit(1)
