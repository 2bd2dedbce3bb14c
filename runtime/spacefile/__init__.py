"""The Spacefile: read as YAML 1.2 with a line for every value, checked with every problem."""

from runtime.spacefile.reader import FILENAME, CheckResult, check, check_text, find, load, report

__all__ = ["FILENAME", "CheckResult", "check", "check_text", "find", "load", "report"]
