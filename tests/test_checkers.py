"""Every exercise checker accepts its reference solution and rejects each of its planted wrong answers."""
import pytest

from posebook.check import check, exercises

EXERCISES = exercises()
MUTANTS = [(name, label) for name, ex in EXERCISES.items() for label in ex.mutants]


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_checker_accepts_reference_solution(name):
    result = check(name, EXERCISES[name].solution)
    assert result.passed, str(result)


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_checker_has_at_least_three_planted_mutants(name):
    assert len(EXERCISES[name].mutants) >= 3


@pytest.mark.parametrize("name,label", MUTANTS, ids=[f"{n}-{m}" for n, m in MUTANTS])
def test_checker_rejects_planted_mutant(name, label):
    result = check(name, EXERCISES[name].mutants[label])
    # a wrong answer is a failed check with a message, not a crash of the checker
    assert result.status == "failed", str(result)
    assert result.message
