"""Every default of the runtime (ports, timeouts, backoff, debounce): other modules read them."""

from __future__ import annotations

from runtime.models import AuthConfig

CONFIG_FILE_NAME = "space-dev.toml"
SPACEFILE_NAME = "Spacefile"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4200  # the first app's port; the next apps take the next free ones
DEFAULT_DATA_DIR = ".space-dev"
DEFAULT_RELOAD = True
DEFAULT_SCHEDULE = True
DEFAULT_AS_SPACE = False  # `dev` lines run (as `space dev` did); true: as Space ran the app
DEFAULT_KEY_HEADERS: tuple[str, ...] = ("X-Space-App-Key", "X-API-Key")
DEFAULT_KEY_COOKIES: tuple[str, ...] = ()
DEFAULT_AUTH = AuthConfig(key_headers=DEFAULT_KEY_HEADERS, key_cookies=DEFAULT_KEY_COOKIES)

MICRO_READY_TIMEOUT_S = 30.0  # a micro not answering on its port by then is reported
RESTART_BACKOFF_FIRST_S = 0.5  # pause before restarting a micro that exited...
RESTART_BACKOFF_MAX_S = 30.0  # ...doubling up to this...
RESTART_BACKOFF_RESET_AFTER_S = 60.0  # ...and back to the first after this long healthy
STOP_GRACE_S = 5.0  # SIGTERM, then SIGKILL to the process group after this
STOP_MARGIN_S = 3.0  # a stop not done by STOP_GRACE_S + this kills every group and exits 1
REQUEST_WAIT_S = 30.0  # a request to a micro that is (re)starting waits this long
LOG_LINES_KEPT = 500  # per micro, for the settings page and the 502 page
LOG_BUFFER_LINES = 5000  # every source together, for the logs page and `space-dev logs`
REQUESTS_KEPT = 1000  # per app, the last requests for the requests view (in memory only)
RELOAD_DEBOUNCE_S = 0.02  # a burst of saves with no gap this long is one restart (bench/reload.py)
ACTION_READY_WAIT_S = 30.0  # an action waits this long for its micro to be (re)started...
ACTION_TIMEOUT_S = 60.0  # ...then this long for the micro's answer to its event
# A Base query page ends after this much scanning (or 1 MB read, as Deta's did) and answers with
# `last`: the app's other Base calls wait one page at most. A usual query of a few conditions
# reads its 1 MB in tens of milliseconds and never meets it.
BASE_PAGE_SECONDS = 0.5
# The runtime's log says what a micro's data call got wrong (a refused query's reason, a project
# key that is not the app's); the same line again within this many seconds is not repeated.
DATA_NOTICE_EVERY_S = 60.0

# What every server of the runtime (each app's port, the data port) holds its clients to.
DEFAULT_MAX_BODY_SIZE = 100 * 1024 * 1024  # `[runtime] max_body_size`: a longer body gets 413
# A client that keeps the runtime waiting this long is disconnected: a request head not complete
# this long after the connection opened (or after its previous answer, when kept alive), and a
# body that sends nothing for this long (`SPACE_DEV_CLIENT_TIMEOUT` overrides it).
CLIENT_TIMEOUT_S = 30.0
REFUSED_BODY_LINGER_S = 5.0  # after a 413, what still comes is dropped this long, then close
MAX_CONNECTIONS = 4096  # open client connections, all servers together (fewer if files are few)
FD_RESERVE = 256  # open files kept for everything else: micros' pipes, the data, the watcher
OPEN_FILES_WANTED = 65536  # the soft limit on open files is raised to this (or the hard limit)

# Space's builder installed the newest releases on each push, until Space stopped (17 October
# 2024): a python micro's requirements resolve as of that day, so an unpinned 2023 app gets the
# packages it was written against (`SPACE_DEV_PACKAGES_AS_OF` picks another day, or `latest`).
PACKAGES_AS_OF = "2024-10-17"

# A lockfile's package manager when it is not installed, run through Node's corepack (which
# fetches it from the npm registry once): the versions Space's era used, pinned with their
# registry hash, so corepack checks the download without the registry's signatures (which
# mirrors leave out). yarn.lock v1 needs yarn 1; pnpm by the lockfile's major version.
YARN_CLASSIC = (
    "yarn@1.22.22+sha512.a6b2f7906b721bba3d67d4aff083df04dad64c399707841b7acf00f6"
    "b133b7ac24255f2652fa22ae3534329dc6180534e98d17432037ff6fd140556e2bb3137e"
)
PNPM_BY_LOCKFILE = {
    "5": (
        "pnpm@7.33.7+sha512.7afe2410642b39c698df46da4ce5c7231a5cce360698d69f8cf8f42257d40b3e"
        "43f231053b07b8de849fd4ffbf4a71ff57b835137777a352388f3d3da747200e"
    ),
    "6": (
        "pnpm@8.15.9+sha512.499434c9d8fdd1a2794ebf4552b3b25c0a633abcee5bb15e7b5de90f32f47b51"
        "3aca98cd5cfd001c31f0db454bc3804edccd578501e4ca293a6816166bbd9f81"
    ),
    "9": (
        "pnpm@9.12.1+sha512.e5a7e52a4183a02d5931057f7a0dbff9d5e9ce3161e33fa68ae392125b79282a"
        "8a8a470a51dfc8a0ed86221442eb2fb57019b0990ed24fab519bf0e1bc5ccfc4"
    ),
}
# Space ran `nodejs16` micros and built its frontend engines on Node 16.
SPACE_NODE_MAJOR = 16
# Packages a lockfile pins that the registry no longer serves are resolved again, one round
# per package found missing, at most this many rounds.
RELOCK_ROUNDS = 5

HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE")

# Failed tries counted in memory per client, to slow guessing (none is counted on disk).
LOGIN_FAILURES_ALLOWED = 5  # wrong passwords for one user name from one client...
LOGIN_FAILURE_WINDOW_S = 60.0  # ...within this long lock that name for that client
KEY_FAILURES_ALLOWED = 20  # requests carrying only wrong API keys from one client...
KEY_FAILURE_WINDOW_S = 60.0  # ...within this long: its next ones get 429 (a right key passes)
FAILURE_CLIENTS_KEPT = 10_000  # counters kept at most; the least recently failing go first

# What an imported zip may unpack to (`space-dev data import`, the data page): a zip bomb is a
# small file that unpacks to gigabytes. Each entry's declared size is checked before anything
# is written, and the bytes against it as they are read.
IMPORT_MAX_ENTRY_BYTES = 8 << 30  # one Drive file, or one Base's items
IMPORT_MAX_TOTAL_BYTES = 32 << 30  # every entry together
IMPORT_MAX_RATIO = 100  # unpacked : packed, of an entry and of the whole zip, once past...
IMPORT_RATIO_FROM_BYTES = 1 << 20  # ...this size (a small entry may have any ratio harmlessly)
# One item's JSON text: an item is at most 400 KB as compact UTF-8, and \u escapes make its
# text up to six times that.
IMPORT_MAX_ITEM_TEXT = 3 << 20
