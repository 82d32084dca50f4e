"""A daemon calls Microsoft Graph with its own identity, authenticated by a certificate (a signed client
assertion).

    python confidential_client_certificate_sample.py [parameters.json]

Settings (see _config.py): authority, client_id, scope, endpoint, and the certificate in one of MSAL's forms:
  cert_pfx_path [cert_passphrase] [cert_send_x5c=1]   PKCS#12 file (PS256 with x5t#S256; x5c when asked)
  cert_private_key_path + cert_thumbprint              PEM key and SHA-1 thumbprint, as in the quickstart (RS256, x5t)
  cert_private_key_path + cert_public_path             PEM key and PEM certificate (PS256, x5t#S256 and x5c)
"""
import json

import msal
import requests

import _config

if _config.get("cert_pfx_path"):
    credential = {"private_key_pfx_path": _config.get("cert_pfx_path")}
    if _config.get("cert_send_x5c") == "1":
        credential["public_certificate"] = True  # send the chain (x5c), for subject name/issuer auth
else:
    with open(_config.get("cert_private_key_path", required=True)) as f:
        credential = {"private_key": f.read()}
    if _config.get("cert_thumbprint"):
        credential["thumbprint"] = _config.get("cert_thumbprint")
    if _config.get("cert_public_path"):
        with open(_config.get("cert_public_path")) as f:
            credential["public_certificate"] = f.read()
if _config.get("cert_passphrase"):
    credential["passphrase"] = _config.get("cert_passphrase")

app = msal.ConfidentialClientApplication(
    _config.get("client_id", required=True), client_credential=credential, **_config.app_options())

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
