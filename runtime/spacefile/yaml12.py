"""Read YAML as Space did (YAML 1.2 core schema), keeping every value's line; typed reads."""

from __future__ import annotations

import codecs
import difflib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

from runtime.errors import Problem


@dataclass(frozen=True)
class YNode:
    """One YAML value: a dict of YNodes, a list of YNodes, or a scalar, with where it stands."""

    value: Any
    line: int  # 1-based line where the value starts
    key_line: int | None = None  # for a value in a mapping: the line of its key
    text: str | None = None  # for a scalar: its source text, before it was typed
    quoted: bool = False  # a quoted scalar, so never a number or a boolean

    @property
    def at(self) -> int:
        """The line to report for this value: its key's, since a nested block starts below it."""
        return self.key_line if self.key_line is not None else self.line

    @property
    def kind(self) -> str:
        """What the value is, in words a message can use."""
        v = self.value
        if isinstance(v, dict):
            return "a mapping"
        if isinstance(v, list):
            return "a list"
        if v is None:
            return "empty"
        if isinstance(v, bool):
            return f"the boolean {self.text}"
        if isinstance(v, int | float):
            return f"the number {self.text}"
        return f'the text "{v}"'


# The YAML 1.2 core schema: `yes`, `no`, `on`, `off` and `1:20` stay text, `010` is ten.
_NULL = frozenset({"", "~", "null", "Null", "NULL"})
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_BOOL_WORDS = frozenset({"yes", "no", "on", "off", "y", "n"})  # booleans in YAML 1.1 only
_INT = re.compile(r"[-+]?[0-9]+")
_OCT = re.compile(r"0o[0-7]+")
_HEX = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_INF = re.compile(r"[-+]?\.(inf|Inf|INF)")
_NAN = re.compile(r"\.(nan|NaN|NAN)")

_TAG = "tag:yaml.org,2002:"
_PLAIN = "!space-dev/plain"  # marks untagged plain scalars, typed by `core_value` below
_MAX_NODES = 100_000  # aliases can multiply a small file into a huge tree; stop well before


def core_value(text: str) -> Any:
    """The value of an untagged plain scalar under the YAML 1.2 core schema."""
    if text in _NULL:
        return None
    if text in _BOOL:
        return _BOOL[text]
    if _INT.fullmatch(text):
        return int(text)
    if _OCT.fullmatch(text):
        return int(text[2:], 8)
    if _HEX.fullmatch(text):
        return int(text[2:], 16)
    if _FLOAT.fullmatch(text):
        return float(text)
    if _INF.fullmatch(text):
        return -math.inf if text.startswith("-") else math.inf
    if _NAN.fullmatch(text):
        return math.nan
    return text


class _Loader(Reader, Scanner, Parser, Composer, BaseResolver):
    """PyYAML's parser and composer with no implicit typing: typing is ours, done after."""

    def __init__(self, text: str) -> None:
        Reader.__init__(self, text)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        BaseResolver.__init__(self)

    def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is ScalarNode and implicit[0]:
            return _PLAIN
        return str(BaseResolver.resolve(self, kind, value, implicit))


class _Converter:
    """Turns composed nodes into YNodes, noting repeated keys and unsupported tags on the way."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.count = 0
        self.open: set[int] = set()  # nodes being converted: an alias to one of them is a loop

    def problem(self, node: Node, where: str, message: str, hint: str = "") -> None:
        self.problems.append(Problem(where, message, hint, node.start_mark.line + 1))

    def node(self, node: Node, where: str) -> YNode:
        line = node.start_mark.line + 1
        self.count += 1
        if self.count > _MAX_NODES or id(node) in self.open:
            if self.count <= _MAX_NODES + 1:
                self.problem(
                    node,
                    where,
                    "aliases make this file too large or circular",
                    "write the values out instead of using * aliases",
                )
            return YNode(None, line)
        self.open.add(id(node))
        try:
            if isinstance(node, MappingNode):
                self.check_tag(node, where, _TAG + "map")
                return YNode(self.mapping(node, where), line)
            if isinstance(node, SequenceNode):
                self.check_tag(node, where, _TAG + "seq")
                items = [self.node(n, f"{where}[{i}]") for i, n in enumerate(node.value)]
                return YNode(items, line)
            return self.scalar(node, where, line)
        finally:
            self.open.discard(id(node))

    def check_tag(self, node: Node, where: str, default: str) -> None:
        if node.tag != default:
            self.problem(node, where, f"YAML tag {node.tag} is not supported", "remove the tag")

    def scalar(self, node: Node, where: str, line: int) -> YNode:
        text = str(node.value)
        if node.tag == _PLAIN:
            return YNode(core_value(text), line, text=text)
        if node.tag == _TAG + "str":
            return YNode(text, line, text=text, quoted=node.style is not None)
        if node.tag in {_TAG + t for t in ("null", "bool", "int", "float")}:
            return YNode(core_value(text), line, text=text)
        self.problem(node, where, f"YAML tag {node.tag} is not supported", "remove the tag")
        return YNode(text, line, text=text)

    def mapping(self, node: MappingNode, where: str) -> dict[str, YNode]:
        out: dict[str, YNode] = {}
        merges: list[YNode] = []
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self.problem(key_node, where, "a key must be plain text, not a list or mapping")
                continue
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key == "<<" and key_node.tag == _PLAIN:
                # Space's Go reader honoured merge keys, so files may use them.
                merges.append(self.node(value_node, where))
                continue
            if key in out:
                first = out[key].key_line
                self.problem(
                    key_node,
                    join(where, key),
                    f'key "{key}" is repeated',
                    f"it is already set at line {first}; keep one of them",
                )
                continue
            out[key] = replace(self.node(value_node, join(where, key)), key_line=line)
        for merged in merges:
            sources = merged.value if isinstance(merged.value, list) else [merged]
            for source in sources:
                if not isinstance(source.value, dict):
                    self.problems.append(
                        Problem(
                            where,
                            "<< must merge a mapping or a list of them",
                            "point it at a mapping with *name",
                            source.line,
                        )
                    )
                    continue
                for key, value in source.value.items():
                    out.setdefault(key, value)
        return out


def _decode(data: bytes) -> tuple[str | None, Problem | None]:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    else:
        encoding = "utf-8-sig"  # drops a UTF-8 byte order mark, as editors on Windows write one
    try:
        return data.decode(encoding), None
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        return None, Problem("", "the file is not valid UTF-8 text", "save it as UTF-8", line)


def _syntax_problem(e: yaml.YAMLError, text: str) -> Problem:
    if isinstance(e, yaml.MarkedYAMLError):
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        message = f"YAML syntax error: {e.problem or e.context}"
        if e.context and e.problem and e.problem.startswith("but "):
            message = f"YAML syntax error: {e.context}, {e.problem}"  # one sentence, split in two
        elif e.context and e.problem and e.context_mark:
            message += f" ({e.context} from line {e.context_mark.line + 1})"
        if "\\t" in message or "\t" in message:
            hint = "indent with spaces; YAML does not allow tabs there"
        else:
            hint = "check the indentation and quoting of this line and the one before"
        return Problem("", message, hint, line)
    if isinstance(e, yaml.reader.ReaderError):
        line = text[: e.position].count("\n") + 1
        char = e.character if isinstance(e.character, int) else ord(e.character)
        return Problem(
            "",
            f"character U+{char:04X} is not allowed in YAML",
            "remove it, or write it as an escape inside double quotes",
            line,
        )
    return Problem("", f"YAML error: {e}", "", None)


def parse(data: bytes | str) -> tuple[YNode | None, list[Problem]]:
    """Parse one YAML document: its tree (None if empty or unreadable) and the problems found."""
    if isinstance(data, bytes):
        text, problem = _decode(data)
        if text is None:
            return None, [problem] if problem else []
    else:
        text = data.removeprefix("\ufeff")
    converter = _Converter()
    try:
        loader = _Loader(text)  # checks every character up front
        try:
            root = loader.get_single_node()
        finally:
            loader.dispose()
        tree = None if root is None else converter.node(root, "")
    except yaml.YAMLError as e:
        return None, [_syntax_problem(e, text)]
    except RecursionError:
        return None, [Problem("", "the YAML is nested too deeply to read", "flatten it", None)]
    return tree, converter.problems


def join(where: str, key: str) -> str:
    """The place of `key` inside `where`: `micros[0]` and `src` give `micros[0].src`."""
    return f"{where}.{key}" if where else key


def suggest(word: str, choices: tuple[str, ...]) -> str:
    """A did-you-mean hint for a word that is not one of `choices`, else the list of them."""
    lower = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(word.lower(), list(lower), n=1, cutoff=0.6)
    if close:
        return f'did you mean "{lower[close[0]]}"?'
    return "the keys allowed here are " + ", ".join(choices)


class Reads:
    """Typed reads from a YNode tree: a bad value becomes a Problem and None, not an exception."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.errors: list[Problem] = []
        self.warnings: list[Problem] = []

    def error(self, where: str, line: int | None, message: str, hint: str = "") -> None:
        self.errors.append(Problem(where, message, hint, line, self.file))

    def warn(self, where: str, line: int | None, message: str, hint: str = "") -> None:
        self.warnings.append(Problem(where, message, hint, line, self.file))

    def mapping(
        self,
        node: YNode,
        where: str,
        allowed: tuple[str, ...],
        what: str,
        hints: Mapping[str, str] | None = None,
    ) -> dict[str, YNode] | None:
        """The node's keys, each unknown one reported with `hints[key]` or a did-you-mean."""
        if not isinstance(node.value, dict):
            self.error(
                where,
                node.at,
                f"{where or 'the file'} must be a mapping {what}, not {node.kind}",
                "write it as `key: value` lines",
            )
            return None
        for key, child in node.value.items():
            if key not in allowed:
                hint = (hints or {}).get(key) or suggest(key, allowed)
                self.error(join(where, key), child.key_line, f'unknown key "{key}"', hint)
        return node.value

    def text(self, keys: dict[str, YNode], key: str, where: str) -> str | None:
        """A text value; a number counts as the text it was written as (`default: 8080`)."""
        node = keys.get(key)
        if node is None or node.value is None:
            return None
        if isinstance(node.value, dict | list):
            self.error(
                join(where, key),
                node.at,
                f"{key} must be text, not {node.kind}",
                'write it on one line, quoted if it holds ": " or " #"',
            )
            return None
        return node.value if isinstance(node.value, str) else node.text

    def required(
        self, keys: dict[str, YNode], key: str, where: str, line: int, hint: str
    ) -> str | None:
        """A text value that must be there; `line` is where to report it missing."""
        value = self.text(keys, key, where)
        if value is None and (key not in keys or keys[key].value is None):
            state = "is missing" if key not in keys else "is empty"
            self.error(
                join(where, key), keys[key].at if key in keys else line, f"{key} {state}", hint
            )
        return value

    def flag(self, keys: dict[str, YNode], key: str, where: str) -> bool | None:
        """A boolean: only true and false, as YAML 1.2 has it."""
        node = keys.get(key)
        if node is None or node.value is None or isinstance(node.value, bool):
            return None if node is None else node.value
        hint = "write true or false"
        if isinstance(node.value, str) and node.value.lower() in _BOOL_WORDS and not node.quoted:
            hint = "write true or false: YAML 1.2, as Space read it, takes yes, no, on, off as text"
        elif node.quoted:
            hint = "remove the quotes"
        self.error(join(where, key), node.at, f"{key} must be true or false, not {node.kind}", hint)
        return None

    def texts(self, keys: dict[str, YNode], key: str, where: str, one_ok: bool) -> tuple[str, ...]:
        """A list of text; with `one_ok`, a single text stands for a list of one."""
        node = keys.get(key)
        if node is None or node.value is None:
            return ()
        if one_ok and not isinstance(node.value, dict | list):
            return (self.text(keys, key, where) or "",)
        if not isinstance(node.value, list):
            self.error(
                join(where, key),
                node.at,
                f"{key} must be a list of text, not {node.kind}",
                f"write each entry on its own line under {key}:, starting with `- `",
            )
            return ()
        out = []
        for i, item in enumerate(node.value):
            if item.value is None or isinstance(item.value, dict | list):
                hint = 'quote the whole entry: ": " inside it makes it a mapping'
                self.error(
                    f"{join(where, key)}[{i}]",
                    item.line,
                    f"{key} entries must be text, not {item.kind}",
                    hint if isinstance(item.value, dict) else "remove the empty entry",
                )
            else:
                out.append(item.value if isinstance(item.value, str) else str(item.text))
        return tuple(out)
