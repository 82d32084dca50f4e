"""An app signs a user in with their username and password (resource owner password credentials), then calls
Microsoft Graph as that user. Microsoft discourages this flow; it fails for MFA and federated users.

    python username_password_sample.py [parameters.json]

Settings (see _config.py): authority, client_id, username, password, scope (default User.Read), endpoint
(default https://graph.microsoft.com/v1.0/me). MSAL asks https://<authority host>/common/userrealm/<username>
first, without the authority's port: an emulator must listen on port 443 for this sample.
"""
import json
import warnings

import msal
import requests

import _config

warnings.simplefilter("ignore", DeprecationWarning)  # MSAL marks this flow deprecated

app = msal.PublicClientApplication(_config.get("client_id", required=True), **_config.app_options())
scopes = _config.scopes("User.Read")
username = _config.get("username", required=True)

result = None
accounts = app.get_accounts(username=username)
if accounts:
    result = app.acquire_token_silent(scopes, account=accounts[0])

if not result:
    result = app.acquire_token_by_username_password(
        username, _config.get("password", required=True), scopes=scopes)

if "access_token" in result:
    graph_data = requests.get(
        _config.get("endpoint", "https://graph.microsoft.com/v1.0/me"),
        headers={"Authorization": "Bearer " + result["access_token"]}).json()
    print("Graph API call result: %s" % json.dumps(graph_data, indent=2))
else:
    _config.print_error(result)
    if 65001 in result.get("error_codes", []):  # nobody has consented to the app's permissions yet
        print("Visit this to consent:", app.get_authorization_request_url(scopes))
    raise SystemExit(1)
