"""Policy tests: cases kept beside the policies, run by ``manage.py policy_test``.

A policy directory may hold a ``tests/`` folder. Each ``tests/test_*.yaml`` file is a list of
cases (schema ``governance.policy.schema.CaseFileSpec``): a trigger, an input document and
the expected outcome of some rules (``pass``, ``not_applicable``, ``deny``, ``warn``,
``require_approval``) and optionally the overall outcome. The document is the file's
``base`` (another YAML or JSON file in the same folder, e.g. a complete schema-1 document)
deep-merged with the case's ``input``: mappings merge key by key, anything else replaces.
A rule whose ``applies_to`` does not cover the trigger counts as ``not_applicable``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from governance.policy import engine, triggers
from governance.policy.loader import Problem, directory_label, parse_yaml
from governance.policy.schema import CaseFileSpec, describe_errors

TEST_FOLDER = "tests"
TEST_GLOBS = ("test_*.yaml", "test_*.yml")


@dataclass(frozen=True)
class CaseResult:
    file: str
    name: str
    failures: tuple[str, ...]
    evaluation: engine.Evaluation | None = None

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass
class CaseRun:
    results: list[CaseResult] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(result.passed for result in self.results)

    @property
    def failed(self) -> int:
        # A test file that cannot be read is one failure: its cases did not run.
        return sum(not result.passed for result in self.results) + len(self.problems)

    @property
    def ok(self) -> bool:
        return self.failed == 0


def deep_merge(base: Any, patch: Any) -> Any:
    """``patch`` over ``base``: mappings merged key by key, anything else replaced."""
    if isinstance(base, Mapping) and isinstance(patch, Mapping):
        merged = dict(base)
        for key, value in patch.items():
            merged[key] = deep_merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    return copy.deepcopy(patch)


def _unset(document: dict[str, Any], path: str) -> None:
    *parents, last = path.split(".")
    node: Any = document
    for part in parents:
        node = node[part]
    del node[last]


def case_files(directories: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for directory in directories:
        folder = Path(directory) / TEST_FOLDER
        if folder.is_dir():
            found = {path for pattern in TEST_GLOBS for path in folder.glob(pattern) if path.is_file()}
            files += sorted(found)
    return files


def _label(path: Path) -> str:
    return f"{directory_label(path.parent.parent)}/{TEST_FOLDER}/{path.name}"


def _read(path: Path) -> Any:
    return parse_yaml(path.read_text(encoding="utf-8"))


def _read_base(folder: Path, name: str | None) -> dict[str, Any]:
    if name is None:
        return {}
    try:
        base = _read(folder / name)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"base {name}: {exc}") from exc
    if not isinstance(base, dict):
        raise ValueError(f"base {name}: an input document is a mapping")
    return base


def run_case(
    policy_set: engine.CompiledPolicySet, *, document: Mapping[str, Any], expect: Mapping[str, str], overall: str | None
) -> tuple[list[str], engine.Evaluation]:
    """Evaluate one document; the list of mismatches (empty when the case passes)."""
    evaluation = engine.evaluate(policy_set, document)
    got = {result.id: result for result in evaluation.rules}
    known = set(policy_set.rule_ids)
    failures = []
    for rule_id, expected in expect.items():
        if rule_id not in known:
            failures.append(f"{rule_id}: no such rule in the set")
            continue
        result = got.get(rule_id)
        outcome = result.outcome if result is not None else "not_applicable"
        if outcome != expected:
            detail = ""
            if result is None:
                detail = f" (applies_to does not cover {evaluation.trigger})"
            elif result.message:
                detail = f" ({result.message})"
            failures.append(f"{rule_id}: expected {expected}, got {outcome}{detail}")
    if overall is not None and evaluation.outcome != overall:
        failures.append(f"overall: expected {overall}, got {evaluation.outcome}")
    return failures, evaluation


def run_tests(policy_set: engine.CompiledPolicySet, directories: Sequence[Path]) -> CaseRun:
    """Run every test file of ``directories`` against ``policy_set``."""
    run = CaseRun()
    for path in case_files(directories):
        label = _label(path)
        try:
            spec = CaseFileSpec.model_validate(_read(path))
            base = _read_base(path.parent, spec.base)
        except ValidationError as exc:
            run.problems.extend(Problem(label, None, reason) for reason in describe_errors(exc))
            continue
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            run.problems.append(Problem(label, None, str(exc)))
            continue
        for case in spec.cases:
            document = deep_merge(copy.deepcopy(base), case.input)
            document["trigger"] = triggers.parse(case.trigger).as_document()
            try:
                for dotted in case.unset:
                    _unset(document, dotted)
            except (KeyError, TypeError):
                run.results.append(CaseResult(label, case.name, (f"unset: there is no field {dotted} to remove",)))
                continue
            try:
                failures, evaluation = run_case(policy_set, document=document, expect=case.expect, overall=case.overall)
            except Exception as exc:  # a case must never stop the run
                failures, evaluation = [f"evaluation failed: {type(exc).__name__}: {exc}"], None
            run.results.append(CaseResult(label, case.name, tuple(failures), evaluation))
    return run


def coverage(policy_set: engine.CompiledPolicySet, run: CaseRun, directories: Sequence[Path]) -> dict[str, set[str]]:
    """For each rule, the outcomes its passing test cases expect (to check allow and deny cases exist)."""
    covered: dict[str, set[str]] = {rule_id: set() for rule_id in policy_set.rule_ids}
    passing = {(result.file, result.name) for result in run.results if result.passed}
    for path in case_files(directories):
        spec = CaseFileSpec.model_validate(_read(path))
        for case in spec.cases:
            if (_label(path), case.name) in passing:
                for rule_id, outcome in case.expect.items():
                    covered.setdefault(rule_id, set()).add(outcome)
    return covered
