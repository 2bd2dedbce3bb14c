"""Times the gate's per-request checks in process: host, key, session, path and decision.

The last line is their sum for a key-authenticated request to a micro with route rules: the
gate's own cost per request, before the proxy. "keep the request" is what the requests view
adds to every request: its record filled in, timed, and kept in the ring.
"""

from __future__ import annotations

import tempfile
import time
import timeit
from pathlib import Path

from runtime.auth.credentials import Credentials
from runtime.auth.keys import generate_key, hash_key, key_prefix, utc_now_text
from runtime.auth.passwords import hash_password
from runtime.auth.policy import compile_rules, decide, judge, policy_for
from runtime.auth.routes import MountTable, normalise_path
from runtime.datadir.store import Store
from runtime.models import ApiKey, Micro, RouteRule
from runtime.serve.forwarded import dropped_names, forwarded_headers
from runtime.serve.hosts import AllowedHosts
from runtime.serve.request_log import RequestLog, RequestRecord, masked_path
from runtime.supervisor.environment import GATE_PROOF_HEADER

# What a browser sends with a page's GET, as aiohttp hands the gate its bytes.
BROWSER_HEADERS = tuple(
    (n.encode(), v.encode())
    for n, v in (
        ("Host", "localhost:4200"),
        (
            "User-Agent",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/156.0 Safari/537.36",
        ),
        ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
        ("Accept-Encoding", "gzip, deflate, br"),
        ("Accept-Language", "en-GB,en;q=0.9"),
        ("Sec-Fetch-Site", "same-origin"),
        ("Sec-Fetch-Mode", "navigate"),
        ("Sec-Fetch-Dest", "document"),
        ("Cookie", "theme=dark; space_session=abc.def"),
        ("Connection", "keep-alive"),
    )
)
ADDED = [
    ("X-Forwarded-For", "127.0.0.1"),
    ("X-Forwarded-Proto", "http"),
    ("X-Forwarded-Host", "localhost:4200"),
    ("X-Space-Auth", "session"),
    ("X-Space-User", "dev"),
]

RUNS = 200_000


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder) / "data")
        store.users.add("dev", hash_password("a password for the bench"))
        key = generate_key()
        store.keys.create(
            ApiKey("bench", "ci", hash_key(key), key_prefix(key), created=utc_now_text())
        )
        for i in range(200):  # a realistic number of other keys
            other = generate_key()
            store.keys.create(ApiKey("bench", f"k{i}", hash_key(other), key_prefix(other)))
        credentials = Credentials(store)
        cookie = credentials.sign_session(store.sessions.create("dev"))
        credentials.reload()
        micro = Micro(
            "api",
            Path(folder),
            "python3.9",
            False,
            "/api",
            api_keys=True,
            public_routes=("/public/*", "/*.png"),
        )
        policy = policy_for(micro)
        rules = compile_rules(
            [
                RouteRule(
                    micro="api", path="/admin/*", methods=("POST", "DELETE"), api_key_required=True
                ),
                RouteRule(micro="api", path="/notes/*", allow='clientType != "guest"'),
            ]
        )
        ruled = policy_for(micro, rules)
        hosts = AllowedHosts("127.0.0.1", ("myapp.test",))
        mounts = MountTable({"/": "www", "/api": "api"})
        principal = credentials.key("bench", key)
        dropped = dropped_names(("X-Space-App-Key", "X-API-Key"))
        credential_cookies = frozenset({"space_session"})
        proof = (GATE_PROOF_HEADER, "k" * 43)  # as long as the runtime's token_urlsafe(32)
        requests = RequestLog(1000)
        verdict = judge(ruled, "/notes/42", "GET", principal)

        def keep_the_request() -> None:
            # What Gate.handle adds around the checks, in the same order.
            record = RequestRecord("GET")
            started = time.perf_counter()
            record.path = masked_path("/api/notes/42", "")
            record.micro = "api"
            record.sub_path = "/notes/42"
            record.credential = principal
            record.why = verdict
            record.status = 200
            record.took = time.perf_counter() - started
            requests.add(record)

        cases = {
            "key check (hash + lookup)": lambda: credentials.key("bench", key),
            "session check (cached cookie)": lambda: credentials.session(cookie),
            "normalise a plain path": lambda: normalise_path("/api/notes/42"),
            "normalise a messy path": lambda: normalise_path("/api//a/./b/../%7Euser"),
            "route to the micro": lambda: mounts.resolve("/api/notes/42"),
            "decide (key, 2 public routes)": lambda: decide(policy, "/notes/42", "GET", principal),
            "decide (key, 2 route rules)": lambda: decide(ruled, "/notes/42", "GET", principal),
            "judge (key, 2 route rules)": lambda: judge(ruled, "/notes/42", "GET", principal),
            "keep the request": keep_the_request,
            "host check": lambda: hosts.allows("localhost:4200"),
            "headers to the micro, no proof": lambda: forwarded_headers(
                BROWSER_HEADERS, dropped, credential_cookies, ADDED
            ),
            "headers to the micro, with proof": lambda: forwarded_headers(
                BROWSER_HEADERS, dropped, credential_cookies, [*ADDED, proof]
            ),
        }
        in_a_request = (
            "key check (hash + lookup)",
            "normalise a plain path",
            "route to the micro",
            "decide (key, 2 route rules)",
            "host check",
        )
        print(f"{'check':34} {'µs per call':>12}")
        total = 0.0
        for name, fn in cases.items():
            fn()
            seconds = min(timeit.repeat(fn, number=RUNS, repeat=3)) / RUNS
            print(f"{name:34} {seconds * 1e6:12.2f}")
            total += seconds if name in in_a_request else 0.0
        print(f"{'one keyed request, all checks':34} {total * 1e6:12.2f}")


if __name__ == "__main__":
    main()
