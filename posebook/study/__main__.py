"""``python -m posebook.study``: :func:`posebook.study.cli.main`."""
import sys

from posebook.study.cli import main

sys.exit(main())
