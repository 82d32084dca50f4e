"""A user signs in on another device (device code flow); the app then calls Microsoft Graph as that user.

    python device_flow_sample.py [parameters.json]

Settings (see _config.py): authority, client_id, scope (default User.Read), endpoint (default
https://graph.microsoft.com/v1.0/me).
"""
import json
import sys

import msal
import requests

import _config

app = msal.PublicClientApplication(_config.get("client_id", required=True), **_config.app_options())
scopes = _config.scopes("User.Read")

result = None
accounts = app.get_accounts()  # the cache is in memory, so a new process finds none
if accounts:
    result = app.acquire_token_silent(scopes, account=accounts[0])

if not result:
    flow = app.initiate_device_flow(scopes=scopes)
    if "user_code" not in flow:
        raise ValueError("Failed to create the device flow: %s" % json.dumps(flow, indent=4))
    print(flow["message"])
    sys.stdout.flush()  # the user must see the code before we block
    result = app.acquire_token_by_device_flow(flow)  # polls every flow["interval"] seconds

if "access_token" in result:
    graph_data = requests.get(
        _config.get("endpoint", "https://graph.microsoft.com/v1.0/me"),
        headers={"Authorization": "Bearer " + result["access_token"]}).json()
    print("Graph API call result: %s" % json.dumps(graph_data, indent=2))
else:
    _config.print_error(result)
    raise SystemExit(1)
