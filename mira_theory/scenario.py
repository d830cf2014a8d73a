"""Scenario files: payoff models as data.

A scenario file (``models/*.toml``) describes one deployment. Its ``[scenario]`` table names
the game (``audit``, ``consensus``, ...); every other table belongs to that game's schema.
The schema of a game is the set of frozen dataclasses that hold its parameters: each field
carries, in its metadata, the check it must pass and the symbol/meaning used in the docs
(:func:`spec`). The loader reads those dataclasses, so the schema has one home.

Every problem found in a file is collected (not only the first) and reported with the file,
the key path, what was expected and what was found (:class:`ScenarioError`).
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import math
import tomllib
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import tomli_w

# --------------------------------------------------------------------------------------
# Problems and errors
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file."""

    file: str
    key: str
    expected: str
    found: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.key}" if self.key else self.file
        return f"{where}: expected {self.expected}, found {self.found}"


class ScenarioError(ValueError):
    """A scenario (or parameter) file failed validation; ``problems`` lists every issue."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


# --------------------------------------------------------------------------------------
# Field specifications
# --------------------------------------------------------------------------------------

CHECKS: dict[str, tuple[str, typing.Callable[[Any], bool]]] = {
    "probability": ("a probability in [0, 1]", lambda v: 0.0 <= v <= 1.0),
    "nonnegative": ("a number ≥ 0", lambda v: v >= 0),
    "positive": ("a number > 0", lambda v: v > 0),
    "positive_int": ("an integer ≥ 1", lambda v: v >= 1),
    # sizes bounded where the models' cost grows with them (a typo of 1e8 must not hang)
    "count_1e4": ("an integer from 1 to 10,000", lambda v: 1 <= v <= 10_000),
    "count_1e5": ("an integer from 1 to 100,000", lambda v: 1 <= v <= 100_000),
    "count_1e7": ("an integer from 1 to 10,000,000", lambda v: 1 <= v <= 10_000_000),
    "at_least_2": ("an integer ≥ 2", lambda v: v >= 2),
    "open_probability": ("a probability in (0, 1]", lambda v: 0.0 < v <= 1.0),
    "name": ("a non-empty name", lambda v: bool(v.strip())),
    "text": ("a string", lambda v: True),
    "comparison": ("'exact' or 'tolerance'", lambda v: v in ("exact", "tolerance")),
}


def spec(check: str, doc: str, symbol: str = "", default: Any = dataclasses.MISSING) -> Any:
    """A dataclass field carrying its validation rule and its documentation."""
    if check not in CHECKS:
        raise ValueError(f"unknown check {check!r}")
    return field(default=default, metadata={"check": check, "doc": doc, "symbol": symbol})


def _type_name(tp: Any) -> str:
    return {float: "a number", int: "an integer", str: "a string"}.get(tp, str(tp))


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, float):
        return f"{value!r}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return f"an array of {len(value)}"
    return type(value).__name__


def _suggest(key: str, valid: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(valid), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_value(file: str, path: str, value: Any, tp: Any, check: str) -> tuple[Any, list[Problem]]:
    """Validate one value against a type and a named check; returns (value, problems)."""
    rule, predicate = CHECKS[check]
    original = value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None, [Problem(file, path, rule, _describe(value))]
        try:
            value = float(value)
        except OverflowError:
            return None, [Problem(file, path, f"a finite number ({rule})",
                                  "an integer too large for a float")]
        if not math.isfinite(value):
            return None, [Problem(file, path, f"a finite number ({rule})", repr(value))]
    elif tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            return None, [Problem(file, path, rule, _describe(value))]
    elif tp is str:
        if not isinstance(value, str):
            return None, [Problem(file, path, rule, _describe(value))]
    if not predicate(value):
        return None, [Problem(file, path, rule, _describe(original))]
    return value, []


def fields_of(cls: type) -> dict[str, tuple[Any, dataclasses.Field]]:
    """The schema of a section dataclass: name -> (type, field)."""
    hints = typing.get_type_hints(cls)
    return {f.name: (hints[f.name], f) for f in dataclasses.fields(cls) if "check" in f.metadata}


def build_section(file: str, prefix: str, cls: type, table: Any) -> tuple[Any, list[Problem]]:
    """Validate a TOML table against a section dataclass and build it."""
    if not isinstance(table, dict):
        return None, [Problem(file, prefix, "a table", _describe(table))]
    schema = fields_of(cls)
    problems: list[Problem] = []
    values: dict[str, Any] = {}
    for key in table:
        if key not in schema:
            problems.append(
                Problem(file, f"{prefix}.{key}", f"one of the keys {sorted(schema)}",
                        f"unknown key {key!r}{_suggest(key, schema)}")
            )
    for name, (tp, f) in schema.items():
        path = f"{prefix}.{name}"
        if name not in table:
            if f.default is not dataclasses.MISSING:
                values[name] = f.default
                continue
            problems.append(Problem(file, path, f"{CHECKS[f.metadata['check']][0]} "
                                    f"({f.metadata['doc']})", "nothing: the key is missing"))
            continue
        value, p = check_value(file, path, table[name], tp, f.metadata["check"])
        problems.extend(p)
        values[name] = value
    if problems:
        return None, problems
    return cls(**values), []


# --------------------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScenarioHeader:
    name: str = spec("name", "scenario name")
    game: str = spec("name", "game family")
    description: str = spec("text", "what the scenario describes")


@dataclass(frozen=True)
class Scenario:
    """A validated scenario. Game families subclass it with their own sections.

    Subclasses declare ``SECTIONS`` (table name -> section dataclass) and ``ARRAYS``
    (array-of-tables name -> (field name, section dataclass, minimum count)); the loader
    does the rest.
    """

    name: str
    game: str
    description: str
    path: str | None
    sha256: str
    source: str  # the TOML text this scenario was read from (canonical TOML if derived)

    # [uncertainty]: key path -> (low, high), the range an uncertain value may take
    uncertainty: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    SECTIONS: ClassVar[dict[str, type]] = {}
    ARRAYS: ClassVar[dict[str, tuple[str, type, int]]] = {}

    @classmethod
    def validate_extra(cls, file: str, built: Mapping[str, Any]) -> list[Problem]:
        """Cross-key checks of a game family (override)."""
        return []

    def raw(self) -> dict[str, Any]:
        """The scenario as a plain dict, the shape of its TOML file."""
        return tomllib.loads(self.source)

    def replace(self, changes: Mapping[str, Any]) -> Scenario:
        """A new, re-validated scenario with some values changed.

        Keys are dotted paths as in the file (``"audit.sampling_rate"``); tables in an array
        are addressed by their name (``"deviation.weaker-model.cost"``) or index
        (``"deviation.0.cost"``).
        """
        data = self.raw()
        # keys left to their defaults are valid targets too
        for section, section_cls in self.SECTIONS.items():
            for name, (_, f) in fields_of(section_cls).items():
                if f.default is not dataclasses.MISSING:
                    data[section].setdefault(name, f.default)
        for dotted, value in changes.items():
            _set_path(data, dotted, value, self.path or "<scenario>")
        text = tomli_w.dumps(data)
        return loads(text, path=None, origin=f"{self.path or self.name} with {dict(changes)}")

    def parameter_paths(self) -> list[str]:
        """Every numeric key path of this scenario (the axes a sweep may use)."""
        out: list[str] = []
        for section, table in self.raw().items():
            if section == "uncertainty":
                continue
            if isinstance(table, dict):
                out += [f"{section}.{k}" for k, v in table.items() if _is_number(v)]
            elif isinstance(table, list):
                for t in table:
                    out += [f"{section}.{t.get('name')}.{k}" for k, v in t.items() if _is_number(v)]
        return out


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _set_path(data: dict, dotted: str, value: Any, file: str) -> None:
    parts = dotted.split(".")
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            names = [t.get("name") for t in node]
            if part in names:
                node = node[names.index(part)]
            elif part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise ScenarioError([Problem(file, ".".join(parts[: i + 1]),
                                             f"one of {names}", f"{part!r}")])
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            valid = sorted(node) if isinstance(node, dict) else []
            raise ScenarioError([Problem(file, ".".join(parts[: i + 1]), f"one of {valid}",
                                         f"{part!r}{_suggest(part, valid)}")])
    last = parts[-1]
    if not isinstance(node, dict) or last not in node:
        valid = sorted(node) if isinstance(node, dict) else []
        raise ScenarioError([Problem(file, dotted, f"one of {valid}",
                                     f"{last!r}{_suggest(last, valid)}")])
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    node[last] = value


GAMES: dict[str, type[Scenario]] = {}


def register_game(name: str) -> typing.Callable[[type[Scenario]], type[Scenario]]:
    def deco(cls: type[Scenario]) -> type[Scenario]:
        GAMES[name] = cls
        return cls

    return deco


def _toml_problem(file: str, err: tomllib.TOMLDecodeError) -> Problem:
    return Problem(file, "", "valid TOML", f"a syntax error: {err}")


def loads(text: str, path: str | None = None, origin: str | None = None,
          sha256: str | None = None) -> Scenario:
    """Validate scenario TOML text and build the typed scenario of its game (``sha256``: the
    hash of the file's bytes when read from a file; by default the hash of the text)."""
    from mira_theory import games  # noqa: F401  (registers the game families)

    file = origin or path or "<string>"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ScenarioError([_toml_problem(file, err)]) from None
    header, problems = build_section(file, "scenario", ScenarioHeader, data.get("scenario"))
    if "scenario" not in data:
        problems = [Problem(file, "scenario", "a [scenario] table with name, game, description",
                            "nothing: the table is missing")]
    head = data.get("scenario")
    game = header.game if header is not None else (head.get("game") if isinstance(head, dict) else None)
    cls = GAMES.get(game) if isinstance(game, str) else None
    if cls is None:
        if header is not None:
            problems.append(Problem(file, "scenario.game", f"one of {sorted(GAMES)}",
                                    f"{game!r}{_suggest(game, GAMES)}"))
        raise ScenarioError(problems)  # without a known game the other tables have no schema
    built: dict[str, Any] = {}
    allowed = {"scenario", "uncertainty", *cls.SECTIONS, *cls.ARRAYS}
    for key in data:
        if key not in allowed:
            problems.append(Problem(file, key, f"one of the tables {sorted(allowed)}",
                                    f"unknown table {key!r}{_suggest(key, allowed)}"))
    for section, section_cls in cls.SECTIONS.items():
        if section not in data:
            problems.append(Problem(file, section, f"a [{section}] table",
                                    "nothing: the table is missing"))
            continue
        value, p = build_section(file, section, section_cls, data[section])
        problems += p
        built[section] = value
    for array, (attr, section_cls, minimum) in cls.ARRAYS.items():
        tables = data.get(array, [])
        if not isinstance(tables, list):
            problems.append(Problem(file, array, f"an array of [[{array}]] tables",
                                    _describe(tables)))
            continue
        if len(tables) < minimum:
            problems.append(Problem(file, array, f"at least {minimum} [[{array}]] table(s)",
                                    f"{len(tables)}"))
        items = []
        for i, table in enumerate(tables):
            value, p = build_section(file, f"{array}[{i}]", section_cls, table)
            problems += p
            items.append(value)
        seen: dict[str, int] = {}
        for i, t in enumerate(items):
            name = getattr(t, "name", None)
            if name is None:
                continue
            if name in seen:
                problems.append(Problem(file, f"{array}[{i}].name", "a name unique among the "
                                        f"[[{array}]] tables", f"{name!r}, which {array}[{seen[name]}] "
                                        "already has"))
            else:
                seen[name] = i
        built[attr] = tuple(items)
    # cross-key checks see None for any section or table that failed its own validation
    problems += cls.validate_extra(file, built)
    uncertainty, p = _uncertainty(file, cls, data)
    problems += p
    if problems or header is None:
        raise ScenarioError(problems)
    sha = sha256 or hashlib.sha256(text.encode()).hexdigest()
    from mira_theory.results import FrozenDict

    return cls(name=header.name, game=header.game, description=header.description,
               path=path, sha256=sha, source=text, uncertainty=FrozenDict(uncertainty), **built)


def field_spec(cls: type[Scenario], data: Mapping[str, Any], dotted: str) -> tuple[Any, dataclasses.Field] | None:
    """The (type, field) of a numeric key path (``audit.cost``, ``deviation.<name>.cost``)."""
    parts = dotted.split(".")
    if len(parts) == 2 and parts[0] in cls.SECTIONS:
        return fields_of(cls.SECTIONS[parts[0]]).get(parts[1])
    if len(parts) == 3 and parts[0] in cls.ARRAYS:
        tables = data.get(parts[0], [])
        names = [t.get("name") for t in tables if isinstance(t, dict)]
        if parts[1] in names or (parts[1].isdigit() and int(parts[1]) < len(tables)):
            return fields_of(cls.ARRAYS[parts[0]][1]).get(parts[2])
    return None


def _uncertainty(file: str, cls: type[Scenario], data: Mapping[str, Any]) -> tuple[dict, list[Problem]]:
    """Validate the ``[uncertainty]`` table: ``"key.path" = [low, high]`` for numeric keys, both
    ends passing the key's own check, low ≤ high."""
    table = data.get("uncertainty", {})
    if not isinstance(table, dict):
        return {}, [Problem(file, "uncertainty", "a table of \"key.path\" = [low, high]", _describe(table))]
    out: dict[str, tuple[float, float]] = {}
    problems: list[Problem] = []
    flat: dict[str, Any] = {}
    for key, value in table.items():  # a dotted key written bare (task.cost_honest = ...) nests
        stack = [(key, value)]
        while stack:
            k, v = stack.pop()
            if isinstance(v, dict):
                stack += [(f"{k}.{kk}", vv) for kk, vv in v.items()]
            else:
                flat[k] = v
    valid = [f"{s}.{n}" for s, c in cls.SECTIONS.items() for n, (tp, _) in fields_of(c).items()
             if tp in (float, int)]
    for key, value in flat.items():
        path = f"uncertainty.{key}"
        found = field_spec(cls, data, key)
        if found is None or found[0] not in (float, int):
            problems.append(Problem(file, path, "a numeric scenario key (e.g. 'task.cost_honest' or "
                                    "'deviation.<name>.cost')", f"{key!r}{_suggest(key, valid)}"))
            continue
        if not isinstance(value, list) or len(value) != 2:
            problems.append(Problem(file, path, "a range [low, high]", _describe(value)))
            continue
        tp, f = found
        ends = []
        for end, v in zip(("low", "high"), value):
            checked, p = check_value(file, f"{path} ({end})", v, float, f.metadata["check"])
            problems += p
            ends.append(checked)
        if None in ends:
            continue
        if tp is int and any(v != int(v) for v in ends):
            problems.append(Problem(file, path, "integer ends for an integer key", repr(value)))
        elif ends[0] > ends[1]:
            problems.append(Problem(file, path, "low ≤ high", repr(value)))
        else:
            out[key] = (float(ends[0]), float(ends[1]))
    return out, problems


def load(path: str | Path) -> Scenario:
    """Read and validate a scenario file."""
    p = Path(path)
    file = str(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ScenarioError([Problem(file, "", "an existing scenario file",
                                     "no such file")]) from None
    except IsADirectoryError:
        raise ScenarioError([Problem(file, "", "a scenario file", "a directory")]) from None
    except OSError as err:
        raise ScenarioError([Problem(file, "", "a readable file", str(err))]) from None
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark is not content
    except UnicodeDecodeError as err:
        raise ScenarioError([Problem(file, "", "UTF-8 text", f"undecodable bytes ({err})")]) from None
    # the hash covers the file's bytes, so a params file can be tied to this exact file
    return loads(text, path=file, sha256=hashlib.sha256(raw).hexdigest())
