"""A user signs in with the system browser (auth code flow with PKCE, loopback redirect); the app then calls
Microsoft Graph as that user.

    python interactive_sample.py [parameters.json]

Settings (see _config.py): authority, client_id, scope (default User.Read), endpoint (default
https://graph.microsoft.com/v1.0/me), optional username (the login hint) and timeout (seconds to wait for the
browser). The app is registered with the platform "Mobile and desktop applications" and the redirect URI
http://localhost: MSAL listens on an ephemeral port of 127.0.0.1 and the service ignores the port.
"""
import json

import msal
import requests

import _config

app = msal.PublicClientApplication(_config.get("client_id", required=True), **_config.app_options())
scopes = _config.scopes("User.Read")

result = None
accounts = app.get_accounts(username=_config.get("username"))
if accounts:
    result = app.acquire_token_silent(scopes, account=accounts[0])

if not result:
    timeout = _config.get("timeout")
    result = app.acquire_token_interactive(  # opens the system browser, waits for the redirect
        scopes, login_hint=_config.get("username"), timeout=int(timeout) if timeout else None)

if "access_token" in result:
    graph_data = requests.get(
        _config.get("endpoint", "https://graph.microsoft.com/v1.0/me"),
        headers={"Authorization": "Bearer " + result["access_token"]}).json()
    print("Graph API call result: %s" % json.dumps(graph_data, indent=2))
else:
    _config.print_error(result)
    raise SystemExit(1)
