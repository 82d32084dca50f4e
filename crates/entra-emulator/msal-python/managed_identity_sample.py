"""A daemon on an Azure host calls Microsoft Graph with the host's managed identity: no secret.

    python managed_identity_sample.py

MSAL picks the source from the platform's variables (IDENTITY_ENDPOINT + IDENTITY_HEADER: App Service; none: IMDS,
whose host AZURE_POD_IDENTITY_AUTHORITY_HOST overrides). MANAGED_IDENTITY_CLIENT_ID selects a user-assigned
identity. Settings (see _config.py): endpoint (default https://graph.microsoft.com/v1.0/users).
"""
import json
import os

import msal
import requests

import _config

client_id = os.environ.get("MANAGED_IDENTITY_CLIENT_ID")
identity = (msal.UserAssignedManagedIdentity(client_id=client_id) if client_id
            else msal.SystemAssignedManagedIdentity())
app = msal.ManagedIdentityClient(identity, http_client=requests.Session())

# acquire_token_for_client looks in the client's token cache first.
result = app.acquire_token_for_client(resource="https://graph.microsoft.com")

if "access_token" in result:
    print("token source:", result.get("token_source"))
    again = app.acquire_token_for_client(resource="https://graph.microsoft.com")
    print("second token source:", again.get("token_source"))
    graph_data = requests.get(
        _config.get("endpoint", "https://graph.microsoft.com/v1.0/users"),
        headers={"Authorization": "Bearer " + result["access_token"]}).json()
    print("Graph API call result: ")
    print(json.dumps(graph_data, indent=2))
else:
    _config.print_error(result)
    raise SystemExit(1)
