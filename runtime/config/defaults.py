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
RELOAD_DEBOUNCE_S = 0.02  # a burst of saves with no gap this long is one restart (bench/reload.py)
ACTION_READY_WAIT_S = 30.0  # an action waits this long for its micro to be (re)started...
ACTION_TIMEOUT_S = 60.0  # ...then this long for the micro's answer to its event

# Space's builder installed the newest releases on each push, until Space stopped (17 October
# 2024): a python micro's requirements resolve as of that day, so an unpinned 2023 app gets the
# packages it was written against (`SPACE_DEV_PACKAGES_AS_OF` picks another day, or `latest`).
PACKAGES_AS_OF = "2024-10-17"

HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE")

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
