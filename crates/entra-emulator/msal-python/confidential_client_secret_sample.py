"""A daemon calls Microsoft Graph with its own identity, authenticated by a client secret.

    python confidential_client_secret_sample.py [parameters.json]

Settings (see _config.py): authority, client_id, client_secret, scope (default
https://graph.microsoft.com/.default), endpoint (default https://graph.microsoft.com/v1.0/users).
"""
import json

import msal
import requests

import _config

app = msal.ConfidentialClientApplication(
    _config.get("client_id", required=True),
    client_credential=_config.get("client_secret", required=True),
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
