"""Reading, validating and compiling policy sets.

A policy set is every ``*.yaml``/``*.yml`` file directly inside a list of directories (the
shipped ``governance/policies/`` and ``GOVERNANCE_POLICY_DIRS``). Loading

* parses YAML strictly: duplicate keys are errors, dates stay strings, and only JSON
  values (no NaN or infinities, integers within ±2^53) are accepted;
* validates each file and each rule against ``governance.policy.schema``: an unknown field,
  a missing one, a bad trigger, role or effect is refused;
* compiles every CEL expression once (preconditions, conditions and the ``{{ ... }}``
  placeholders of messages) and checks that it reads only ``input`` and ``params`` and
  calls only known functions;
* refuses duplicate rule ids and duplicate parameter names across files.

Every problem is collected and reported together (``PolicyLoadError``), each naming the
file, the rule id where there is one, and the reason. Nothing is activated by loading.

The set's identity is ``content_hash``: the SHA-256 of the RFC 8785 canonical JSON of
``{"format": 1, "parameters": ..., "rules": [...]}`` with the rules as written (sorted by
id) and the parameters merged: reformatting a file, reordering rules or moving a rule to
another file does not change it; any change to what a rule says does.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cel
import yaml
from django.conf import settings
from pydantic import ValidationError

from audit import canonical
from governance.errors import DomainError
from governance.policy import triggers
from governance.policy.engine import (
    ALL_PATHS,
    EXTRA_FUNCTIONS,
    PARAMETER_VALUES,
    PRESENCE,
    CompiledPolicySet,
    CompiledRule,
    FieldPath,
    SourceFile,
)
from governance.policy.schema import FILE_FORMAT, PolicyFileSpec, RuleSpec, describe_errors

DEFAULT_DIRECTORY = Path(__file__).resolve().parent.parent / "policies"
POLICY_SUFFIXES = (".yaml", ".yml")
_MAX_JSON_INT = 2**53 - 1

# CEL's named functions that the installed evaluator provides (operators such as ``_&&_`` or
# ``@in`` are always allowed). A name outside this list would only fail at evaluation time,
# so it is refused at load.
CEL_FUNCTIONS = frozenset(
    {
        "size",
        "int",
        "uint",
        "double",
        "string",
        "bytes",
        "timestamp",
        "duration",
        "matches",
        "contains",
        "startsWith",
        "endsWith",
        "type",
        "dyn",
        "getFullYear",
        "getMonth",
        "getDate",
        "getDayOfMonth",
        "getDayOfWeek",
        "getDayOfYear",
        "getHours",
        "getMinutes",
        "getSeconds",
        "getMilliseconds",
        *EXTRA_FUNCTIONS,
    }
)
VARIABLES = frozenset({"input"})  # params are inlined before compiling
# Identifiers CEL reports as variables that are type names, usable in ``type(x) == int``.
_TYPE_NAMES = frozenset({"int", "uint", "double", "bool", "string", "bytes", "list", "map", "null_type", "type"})
_COMPREHENSION = re.compile(r"\.\s*(?:all|exists_one|exists|map|filter)\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,")
_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)


@dataclass(frozen=True)
class Problem:
    file: str
    rule: str | None
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: rule {self.rule}: {self.reason}" if self.rule else f"{self.file}: {self.reason}"


class PolicyLoadError(DomainError):
    """The files do not make a valid policy set; ``problems`` says where and why."""

    status = 400
    code = "invalid_policy"

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        super().__init__(
            f"the policy set is refused ({count} problem{'s' if count != 1 else ''}):\n"
            + "\n".join(f"  {problem}" for problem in self.problems),
            detail={"problems": [str(problem) for problem in self.problems]},
        )


# YAML ---------------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """Safe YAML with two changes: duplicate keys are errors, and timestamps stay strings
    (the document and the hash are JSON; a date written unquoted must not become a Python date)."""


_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if not isinstance(key, str):
            raise yaml.constructor.ConstructorError(
                None, None, f"keys must be strings, not {key!r}", key_node.start_mark
            )
        if key in mapping:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        mapping[key] = loader.construct_object(value_node, deep=deep)
    return mapping


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_yaml(text: str) -> Any:
    """Parse one YAML document strictly; ``ValueError`` with the line on any problem."""
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ValueError(f"not valid YAML: {exc}".replace("\n", " ")) from exc
    _check_json(data, "")
    return data


def _check_json(value: Any, where: str) -> None:
    if value is None or isinstance(value, bool | str):
        return
    if isinstance(value, int):
        if abs(value) > _MAX_JSON_INT:
            raise ValueError(f"{where or 'value'}: integer {value} is beyond ±2^53; write it as a string")
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where or 'value'}: {value} is not a finite number")
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            _check_json(item, f"{where}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            _check_json(item, f"{where}.{key}" if where else key)
        return
    raise ValueError(f"{where or 'value'}: {type(value).__name__} is not a JSON value")


# CEL ----------------------------------------------------------------------------------

_STRING_START = re.compile(r"""(?i:[rb]{0,2})(\"\"\"|'\'\'|"|')""")
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_PATH = re.compile(rf"(?<![\w.])(input|params)((?:\s*\.\s*{_IDENT})*)(\s*\()?")


def _code_spans(source: str) -> list[tuple[int, int]]:
    """The (start, end) spans of ``source`` outside string literals."""
    spans: list[tuple[int, int]] = []
    position = 0
    index = 0
    while index < len(source):
        match = _STRING_START.match(source, index)
        if match is None or (index > 0 and (source[index - 1].isalnum() or source[index - 1] == "_")):
            index += 1
            continue
        quote = match.group(1)
        raw = "r" in source[index : match.start(1)].lower()
        spans.append((position, index))
        cursor = match.end()
        while cursor < len(source) and not source.startswith(quote, cursor):
            cursor += 2 if (source[cursor] == "\\" and not raw) else 1
        index = position = min(cursor + len(quote), len(source))
    spans.append((position, len(source)))
    return spans


def _references(source: str) -> list[tuple[str, FieldPath, int, int]]:
    """Each ``input.a.b`` / ``params.a.b`` outside string literals: (root, static path, start,
    end). The static path stops before a method call (``input.l.all(...)`` reads ``l``) and at
    an index (``input.datasets[r]`` reads all of ``datasets``)."""
    found = []
    for start, end in _code_spans(source):
        for match in _PATH.finditer(source, start, end):
            names = [part.strip() for part in match.group(2).split(".")[1:]]
            text_end = match.end(2)
            if match.group(3):  # a call follows: the last name is a method (.all, .size, .matches)
                if not names:
                    continue
                names = names[:-1]
                text_end = match.start(2) + match.group(2).rindex(".")
            found.append((match.group(1), tuple(names), match.start(), text_end))
    return found


_NULL_TEST = re.compile(r"\s*[!=]=\s*null\b")


def _presence_only(source: str, end: int) -> bool:
    """Whether the reference ending at ``end`` is only compared with null (``x != null``)."""
    return _NULL_TEST.match(source, end) is not None


def cel_literal(value: Any) -> str:
    """A JSON value as CEL literal source."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        return text if any(c in text for c in ".en") else f"{text}.0"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(cel_literal(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k, ensure_ascii=False)}: {cel_literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def _closing_bracket(source: str, opening: int) -> int:
    """The index of the ``]`` matching ``source[opening] == "["``, skipping string literals."""
    depth = 0
    index = opening
    while index < len(source):
        match = _STRING_START.match(source, index)
        if match is not None and not (index > 0 and (source[index - 1].isalnum() or source[index - 1] == "_")):
            quote = match.group(1)
            raw = "r" in source[index : match.start(1)].lower()
            cursor = match.end()
            while cursor < len(source) and not source.startswith(quote, cursor):
                cursor += 2 if (source[cursor] == "\\" and not raw) else 1
            index = cursor + len(quote)
            continue
        if source[index] == "[":
            depth += 1
        elif source[index] == "]":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    raise ValueError("an index '[' is not closed")


def _index_groups(source: str, position: int) -> tuple[list[str], int]:
    """The ``[...]`` index expressions that follow ``position`` and where they end."""
    groups = []
    cursor = position
    while True:
        probe = cursor
        while probe < len(source) and source[probe].isspace():
            probe += 1
        if probe >= len(source) or source[probe] != "[":
            return groups, (cursor if groups else position)
        closing = _closing_bracket(source, probe)
        groups.append(source[probe + 1 : closing])
        cursor = closing + 1


def _register(value: Any) -> str:
    key = hashlib.sha256(canonical.dumps(value)).hexdigest()
    PARAMETER_VALUES.setdefault(key, value)
    return key


def inline_parameters(source: str, parameters: Mapping[str, Any]) -> str:
    """``source`` with its parameters made constants of the program.

    ``params.a.b`` becomes the value's CEL literal; ``params.a.b[x][y]`` (looked up with
    values from the document) becomes ``param_at("<hash>", x, y)``, a lookup in the value
    registered under its hash. Either way nothing is converted from Python per evaluation
    but the entry looked up. A path the parameters do not have is an error at load.
    """
    out = []
    position = 0
    for root, path, start, end in _references(source):
        if root != "params" or start < position:
            continue  # not a parameter, or inside an index already rewritten
        value: Any = parameters
        for depth, name in enumerate(path):
            if not isinstance(value, dict) or name not in value:
                raise ValueError(
                    f"reads params.{'.'.join(path[: depth + 1])}, which the set's parameters do not define"
                )
            value = value[name]
        indexes, after = _index_groups(source, end)
        out.append(source[position:start])
        if indexes and isinstance(value, dict | list):
            arguments = ", ".join(inline_parameters(index, parameters) for index in indexes)
            out.append(f'param_at("{_register(value)}", {arguments})')
            position = after
        else:
            out += ["(", cel_literal(value), ")"]
            position = end
    out.append(source[position:])
    return "".join(out)


def input_paths(sources: Iterable[str]) -> frozenset[FieldPath] | None:
    """The paths of ``input`` the expressions read (``None``: the whole document)."""
    paths: set[FieldPath] = set()
    for source in sources:
        for root, path, _, end in _references(source):
            if root != "input":
                continue
            if not path:
                return ALL_PATHS
            if _presence_only(source, end) and not _index_groups(source, end)[0]:
                paths.add((*path, PRESENCE))
            else:
                paths.add(path)
    return frozenset(paths)


def _first_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def compile_expression(source: str, parameters: Mapping[str, Any]) -> Any:
    """Compile a CEL expression, its parameters inlined, and check what it reads and calls;
    ``ValueError`` says why not."""
    if not isinstance(source, str) or not source.strip():
        raise ValueError("the expression is empty")
    try:
        cel.compile(source)  # syntax errors with positions in the author's text
    except Exception as exc:
        raise ValueError(f"does not compile: {_first_line(exc)}") from exc
    try:
        program = cel.compile(inline_parameters(source, parameters))
    except ValueError:
        raise
    except Exception as exc:
        raise ValueError(f"does not compile once its parameters are inlined: {_first_line(exc)}") from exc
    references = program.references()
    unknown_functions = sorted(
        name for name in references["functions"] if name[:1] not in "_@!" and name not in CEL_FUNCTIONS
    )
    if unknown_functions:
        raise ValueError(
            f"calls unknown function(s) {', '.join(unknown_functions)}; available: {', '.join(sorted(CEL_FUNCTIONS))}"
        )
    bound = set(_COMPREHENSION.findall(source))
    unknown_variables = sorted(set(references["variables"]) - VARIABLES - bound - _TYPE_NAMES)
    if unknown_variables:
        raise ValueError(
            f"reads unknown variable(s) {', '.join(unknown_variables)}; rules read 'input' (the input document) "
            "and 'params' (the set's parameters)"
        )
    return program


def _compile_message(template: str, parameters: Mapping[str, Any]) -> tuple[Any, ...]:
    parts: list[Any] = []
    position = 0
    for match in _PLACEHOLDER.finditer(template):
        if match.start() > position:
            parts.append(template[position : match.start()])
        expression = match.group(1).strip()
        try:
            parts.append(compile_expression(expression, parameters))
        except ValueError as exc:
            raise ValueError(f"message placeholder {{{{ {expression} }}}} {exc}") from exc
        position = match.end()
    if position < len(template):
        parts.append(template[position:])
    return tuple(parts)


def _compile_rule(spec: RuleSpec, file: str, parameters: Mapping[str, Any]) -> CompiledRule:
    """Compile one validated rule; ``ValueError`` naming the failing part."""
    programs = {}
    for part in ("precondition", "condition"):
        source = getattr(spec, part)
        if source is None:
            programs[part] = None
            continue
        try:
            programs[part] = compile_expression(source, parameters)
        except ValueError as exc:
            raise ValueError(f"{part} {exc}") from exc
    conditions = [source for source in (spec.precondition, spec.condition) if source]
    outcome_key = json.dumps(
        [
            [
                inline_parameters(source, parameters) if source else None
                for source in (spec.precondition, spec.condition)
            ],
            spec.effect,
            spec.approval.model_dump() if spec.approval else None,
        ]
    )
    return CompiledRule(
        spec=spec,
        file=file,
        patterns=tuple(triggers.parse(text, allow_wildcard=True) for text in spec.applies_to),
        precondition=programs["precondition"],
        condition=programs["condition"],
        message_parts=_compile_message(spec.message, parameters),
        paths=input_paths(conditions),
        message_paths=input_paths(m.group(1) for m in _PLACEHOLDER.finditer(spec.message)),
        outcome_key=outcome_key,
    )


# Sets ---------------------------------------------------------------------------------


def configured_directories() -> list[Path]:
    """The shipped set (unless ``GOVERNANCE_POLICY_DEFAULT_SET`` is off) and ``GOVERNANCE_POLICY_DIRS``."""
    directories = [DEFAULT_DIRECTORY] if settings.GOVERNANCE_POLICY_DEFAULT_SET else []
    directories += [Path(directory) for directory in settings.GOVERNANCE_POLICY_DIRS]
    return directories


def directory_label(directory: Path) -> str:
    """How files of ``directory`` are named in messages and stored sets: relative to the
    project for the shipped set, absolute otherwise."""
    resolved = directory.resolve()
    base = Path(settings.BASE_DIR).resolve()
    return str(resolved.relative_to(base)) if resolved.is_relative_to(base) else str(resolved)


def read_directories(directories: Sequence[Path]) -> list[SourceFile]:
    """Every policy file directly inside ``directories``, in order; ``PolicyLoadError`` if a
    directory is missing or a file cannot be read as UTF-8."""
    files: list[SourceFile] = []
    problems: list[Problem] = []
    seen: set[Path] = set()
    for directory in directories:
        directory = Path(directory)
        label = directory_label(directory)
        if not directory.is_dir():
            problems.append(Problem(label, None, "is not a directory"))
            continue
        if directory.resolve() in seen:
            problems.append(Problem(label, None, "is listed twice"))
            continue
        seen.add(directory.resolve())
        for path in sorted(p for p in directory.iterdir() if p.is_file() and p.suffix in POLICY_SUFFIXES):
            try:
                files.append(SourceFile(directory=label, name=path.name, text=path.read_text(encoding="utf-8")))
            except (OSError, UnicodeDecodeError) as exc:
                problems.append(Problem(f"{label}/{path.name}", None, f"cannot be read as UTF-8 text: {exc}"))
    if problems:
        raise PolicyLoadError(problems)
    return files


def compile_files(files: Sequence[SourceFile]) -> CompiledPolicySet:
    """Validate and compile ``files`` into one set, or ``PolicyLoadError`` with every problem."""
    problems: list[Problem] = []
    parameters: dict[str, Any] = {}
    parameter_files: dict[str, str] = {}
    raw_rules: list[tuple[str, int, Any]] = []
    # First every file and its parameters: a rule may read parameters defined in another file.
    for source in files:
        label = source.label
        try:
            data = parse_yaml(source.text)
        except ValueError as exc:
            problems.append(Problem(label, None, str(exc)))
            continue
        if not isinstance(data, dict):
            problems.append(Problem(label, None, "a policy file is a mapping with 'version' and 'rules'"))
            continue
        try:
            spec = PolicyFileSpec.model_validate(data)
        except ValidationError as exc:
            problems.extend(Problem(label, None, reason) for reason in describe_errors(exc))
            continue
        for name, value in spec.parameters.items():
            if name in parameter_files:
                problems.append(Problem(label, None, f"parameter {name!r} is also defined in {parameter_files[name]}"))
                continue
            parameter_files[name] = label
            parameters[name] = value
        raw_rules += [(label, index, raw) for index, raw in enumerate(spec.rules)]

    rules: list[CompiledRule] = []
    written: dict[str, Any] = {}
    rule_files: dict[str, str] = {}
    for label, index, raw in raw_rules:
        rule_id = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None
        name = rule_id or f"rules[{index}]"
        if not isinstance(raw, dict):
            problems.append(Problem(label, name, "a rule is a mapping of fields"))
            continue
        try:
            rule_spec = RuleSpec.model_validate(raw)
        except ValidationError as exc:
            problems.extend(Problem(label, name, reason) for reason in describe_errors(exc))
            continue
        if rule_spec.id in rule_files:
            problems.append(Problem(label, rule_spec.id, f"the id is also used in {rule_files[rule_spec.id]}"))
            continue
        rule_files[rule_spec.id] = label
        try:
            rules.append(_compile_rule(rule_spec, label, parameters))
        except ValueError as exc:
            problems.append(Problem(label, rule_spec.id, str(exc)))
            continue
        written[rule_spec.id] = raw
    if not files:
        problems.append(Problem("(policy set)", None, "no policy files (*.yaml) were found"))
    elif not rules and not problems:
        problems.append(Problem("(policy set)", None, "the files hold no rules"))
    if problems:
        raise PolicyLoadError(problems)
    content = {"format": FILE_FORMAT, "parameters": parameters, "rules": [written[k] for k in sorted(written)]}
    return CompiledPolicySet(
        content_hash=hashlib.sha256(canonical.dumps(content)).hexdigest(),
        rules=tuple(sorted(rules, key=lambda rule: rule.id)),
        parameters=parameters,
        files=tuple(files),
    )


def load_directories(directories: Sequence[Path] | None = None) -> CompiledPolicySet:
    """Read, validate and compile the set in ``directories`` (default: the configured ones)."""
    return compile_files(read_directories(configured_directories() if directories is None else directories))
