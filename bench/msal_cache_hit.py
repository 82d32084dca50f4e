"""MSAL Python's in-process cache hit for acquire_token_for_client, for comparison with identity-core's.

Env: AUTHORITY CLIENT_ID CLIENT_SECRET (e.g. from the emulator's description), REQUESTS_CA_BUNDLE for its CA.
Prints median and p99 of N cache hits, in microseconds.
"""
import os
import statistics
import time

import msal

app = msal.ConfidentialClientApplication(
    os.environ["CLIENT_ID"], client_credential=os.environ["CLIENT_SECRET"],
    authority=os.environ["AUTHORITY"], instance_discovery=False)
scopes = ["https://graph.microsoft.com/.default"]
first = app.acquire_token_for_client(scopes=scopes)
assert first.get("token_source") == "identity_provider", first
n = int(os.environ.get("N", "20000"))
samples = []
for _ in range(n):
    t0 = time.perf_counter_ns()
    r = app.acquire_token_for_client(scopes=scopes)
    samples.append(time.perf_counter_ns() - t0)
assert r["token_source"] == "cache"
samples.sort()
print("msal %s: %d cache hits: median %.2f us, p99 %.2f us" % (
    msal.__version__, n, statistics.median(samples) / 1000, samples[int(n * 0.99)] / 1000))
