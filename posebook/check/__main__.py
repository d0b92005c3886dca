"""``python -m posebook.check NOTEBOOK...``: check the exercises of edited notebooks (exit 1 if any fails)."""
import sys

from ._notebook import notebook_exercises, run_notebook_exercise


def main(paths: list[str]) -> int:
    if not paths:
        print("usage: python -m posebook.check NOTEBOOK.ipynb [...]")
        return 2
    failed = 0
    for path in paths:
        for ex in notebook_exercises(path):
            result = run_notebook_exercise(ex)
            print(f"{ex.notebook.name}: {result}")
            failed += result.status not in ("passed", "not attempted")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
