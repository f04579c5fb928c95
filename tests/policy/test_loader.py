"""Loading policy files: strict validation with the file, rule id and reason; compilation; the set's hash."""

from __future__ import annotations

import pytest

from governance.policy import loader
from governance.policy.loader import PolicyLoadError

pytestmark = pytest.mark.django_db

RULE = """\
version: 1
rules:
  - id: T-ONE-01
    title: One
    description: A rule for tests.
    applies_to: [validated->approved]
    condition: input.model.risk_tier > 1
    effect: deny
    message: tier {{ input.model.risk_tier }}
    references: [PRA SS1/23 Principle 1]
"""


def _problems(directory) -> list[str]:
    with pytest.raises(PolicyLoadError) as caught:
        loader.load_directories([directory])
    return [str(problem) for problem in caught.value.problems]


def test_a_valid_file_compiles_with_its_hash(write_policies):
    compiled = loader.load_directories([write_policies({"one.yaml": RULE})])
    assert compiled.rule_ids == ["T-ONE-01"]
    assert len(compiled.content_hash) == 64
    rule = compiled.rules[0]
    assert rule.paths == frozenset({("model", "risk_tier")})


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            ("    effect: deny\n", "    effect: deny\n    severity: high\n"),
            "field 'severity': Extra inputs are not permitted",
        ),
        (("    effect: deny\n", "    effect: block\n"), "field 'effect'"),
        (("    references: [PRA SS1/23 Principle 1]\n", ""), "field 'references': Field required"),
        (("[validated->approved]", "[validated->aproved]"), "unknown lifecycle status 'aproved'"),
        (("[validated->approved]", "[approve]"), "'approve' is not a trigger"),
        (("input.model.risk_tier > 1", "input.model.risk_tier >"), "condition does not compile"),
        (("input.model.risk_tier > 1", "lowerAscii(input.model.name) == 'a'"), "unknown function(s) lowerAscii"),
        (("input.model.risk_tier > 1", "model.risk_tier > 1"), "unknown variable(s) model"),
        (("input.model.risk_tier > 1", "params.tiers.max > 1"), "reads params.tiers, which the set's parameters"),
        (("tier {{ input.model.risk_tier }}", "tier {{ input.model. }}"), "message placeholder"),
        (("id: T-ONE-01", "id: t-one"), "a rule id is upper-case words joined by '-'"),
        (("    effect: deny\n", "    effect: require_approval\n"), "needs 'approval: {roles: [...], count: N}'"),
    ],
)
def test_a_bad_rule_is_refused_naming_file_rule_and_reason(write_policies, change, reason):
    old, new = change
    assert old in RULE
    directory = write_policies({"one.yaml": RULE.replace(old, new)})
    problems = _problems(directory)
    assert len(problems) == 1
    rule_id = "t-one" if "t-one" in new else "T-ONE-01"
    assert problems[0].startswith(f"{directory}/one.yaml: rule {rule_id}: "), problems
    assert reason in problems[0]


def test_an_unknown_approval_role_is_refused(write_policies):
    text = RULE.replace("    effect: deny\n", "    effect: require_approval\n    approval: {roles: [ceo], count: 1}\n")
    (problem,) = _problems(write_policies({"one.yaml": text}))
    assert "rule T-ONE-01: field 'approval.roles': unknown role(s) 'ceo'" in problem


def test_every_problem_of_every_file_is_reported_at_once(write_policies):
    directory = write_policies(
        {
            "a.yaml": RULE.replace("input.model.risk_tier > 1", "1 +"),
            "b.yaml": RULE.replace("T-ONE-01", "T-TWO-01").replace("    title: One\n", ""),
            "c.yaml": "version: 1\nrulez: []\n",
        }
    )
    problems = _problems(directory)
    assert any("a.yaml: rule T-ONE-01: condition does not compile" in p for p in problems)
    assert any("b.yaml: rule T-TWO-01: field 'title': Field required" in p for p in problems)
    assert any("c.yaml: field 'rulez': Extra inputs are not permitted" in p for p in problems)


def test_duplicate_rule_ids_and_parameters_across_files_are_refused(write_policies):
    params = "version: 1\nparameters: {limit: 1}\n"
    directory = write_policies({"a.yaml": RULE, "b.yaml": RULE, "p1.yaml": params, "p2.yaml": params})
    problems = _problems(directory)
    assert f"{directory}/b.yaml: rule T-ONE-01: the id is also used in {directory}/a.yaml" in problems
    assert f"{directory}/p2.yaml: parameter 'limit' is also defined in {directory}/p1.yaml" in problems


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("version: 1\nversion: 1\nrules: []\n", "duplicate key 'version'"),
        ("version: 1\nrules: [\n", "not valid YAML"),
        ("version: 2\nrules: []\n", "field 'version'"),
        ("- just a list\n", "a policy file is a mapping"),
        ("version: 1\nparameters: {x: .nan}\n", "x: nan is not a finite number"),
        ("version: 1\nparameters: {x: 12345678901234567890}\n", "beyond ±2^53"),
    ],
)
def test_malformed_files_are_refused(write_policies, text, reason):
    (problem, *_) = _problems(write_policies({"bad.yaml": text, "ok.yaml": RULE}))
    assert problem.startswith(f"{problem.split(':')[0]}:") and "bad.yaml" in problem
    assert reason in problem


def test_dates_stay_strings_and_parameters_are_inlined(write_policies):
    params = "version: 1\nparameters:\n  cutoff: 2026-01-01\n  tiers: {max: 2}\n"
    rule = RULE.replace(
        "input.model.risk_tier > 1", "input.model.risk_tier > params.tiers.max && params.cutoff == '2026-01-01'"
    )
    compiled = loader.load_directories([write_policies({"p.yaml": params, "r.yaml": rule})])
    assert compiled.parameters == {"cutoff": "2026-01-01", "tiers": {"max": 2}}


def test_a_missing_directory_and_an_empty_set_are_refused(tmp_path, write_policies):
    assert _problems(tmp_path / "nowhere") == [f"{tmp_path / 'nowhere'}: is not a directory"]
    assert _problems(write_policies({"empty.yaml": "version: 1\n"})) == ["(policy set): the files hold no rules"]


def test_the_hash_is_of_the_content_not_the_formatting(write_policies):
    first = loader.load_directories([write_policies({"one.yaml": RULE})])
    reformatted = "# a comment\n" + RULE.replace(
        "applies_to: [validated->approved]", "applies_to:\n      - validated->approved"
    )
    second = loader.load_directories([write_policies({"renamed.yaml": reformatted})])
    changed = loader.load_directories([write_policies({"one.yaml": RULE.replace("> 1", "> 2")})])
    assert first.content_hash == second.content_hash
    assert changed.content_hash != first.content_hash


@pytest.mark.parametrize(
    ("source", "paths"),
    [
        ("input.model.name == 'x'", {("model", "name")}),
        ("input.datasets[r].name", {("datasets",)}),
        ("input.findings.exists(f, f.severity == 'high')", {("findings",)}),
        ("size(input.risk_assessment.metrics) > 0", {("risk_assessment", "metrics")}),
        ("'input.version.label' == input . lifecycle . status", {("lifecycle", "status")}),
        ("has(input.model)", {("model",)}),
        ("input['model']", None),
    ],
)
def test_input_paths_read_by_an_expression(source, paths):
    assert loader.input_paths([source]) == (None if paths is None else frozenset(paths))


def test_parameters_become_constants_of_the_program_outside_strings():
    import cel

    from governance.policy.engine import EXTRA_FUNCTIONS

    parameters = {"limits": {"a": [1, 2.5, "x"], "b": None}, "name": 'say "hi"'}
    source = "params.limits.a.size() == 3 && 'params.name' != params.name && params.limits[input.k] == null"
    inlined = loader.inline_parameters(source, parameters)
    assert "'params.name'" in inlined
    assert '(["x", 1, 2.5].size()' not in inlined and '([1, 2.5, "x"]).size() == 3' in inlined
    assert "param_at(" in inlined  # a lookup with a value from the document
    assert "params." not in inlined.replace("'params.name'", "")
    program = loader.compile_expression(source, parameters)
    assert program.execute(cel.Context(variables={"input": {"k": "b"}}, functions=EXTRA_FUNCTIONS)) is True
    with pytest.raises(RuntimeError, match="KeyError: 'zz'"):  # the rule fails closed
        program.execute(cel.Context(variables={"input": {"k": "zz"}}, functions=EXTRA_FUNCTIONS))
