"""Settings of the four samples, shaped like the Python quickstarts' parameters.json.

Settings come from an optional JSON file named as the first argument (keys in lower case: "authority",
"client_id", "client_secret", "scope", "endpoint", ...) and from environment variables of the same names in
upper case, which win. "scope" may be a list or a space-separated string. INSTANCE_DISCOVERY=false is needed
for any authority host that is not a Microsoft cloud (such as the emulator), and REQUESTS_CA_BUNDLE names the
CA to trust (MSAL and requests both honour it).
"""
import json
import os
import sys

_file = {}
if len(sys.argv) > 1:
    with open(sys.argv[1]) as f:
        _file = json.load(f)


def get(name, default=None, required=False):
    value = os.environ.get(name.upper()) or _file.get(name, default)
    if required and not value:
        sys.exit("Missing setting: %s (environment variable %s or key \"%s\" in the JSON file)"
                 % (name, name.upper(), name))
    return value


def scopes(default):
    value = get("scope", default)
    return value.split() if isinstance(value, str) else list(value)


def app_options():
    """authority and instance_discovery for msal.*ClientApplication."""
    options = {"authority": get("authority", "https://login.microsoftonline.com/organizations")}
    if str(get("instance_discovery", "true")).lower() in ("0", "false", "no"):
        options["instance_discovery"] = False
    return options


def print_error(result):
    """The three lines the quickstarts print when no token came back."""
    print(result.get("error"))
    print(result.get("error_description"))
    print(result.get("correlation_id"))  # You may need this when reporting a bug
