"""``python -m posebook.train``: :func:`posebook.train.cli.main`."""
from posebook.train.cli import main

main()
