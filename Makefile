# The README's two commands: `make book` and `make test`. Both create .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv vendor book test clean

venv: $(STAMP)

# One pip call installs the whole pinned set (see requirements.txt for why torch is pinned exactly).
$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -r requirements.txt
	touch $(STAMP)

# MathJax, require.js and the widget manager, pinned in package-lock.json, installed with `npm ci` and copied into
# book/vendor/ (served at the root of _build/html), so the book reads with no network. A no-op when up to date.
vendor: venv
	$(BIN)/python book_tools/vendor.py

# Executes every chapter in the `cpu` profile (override with POSEBOOK_PROFILE=...) and renders _build/html.
# -W: any warning, and any error in a chapter, fails the build.
book: venv vendor
	PATH="$(abspath $(BIN)):$$PATH" POSEBOOK_PROFILE=$${POSEBOOK_PROFILE:-cpu} $(BIN)/jupyter-book build . -W
	@echo "The book: $(abspath _build/html/index.html)"

# The whole suite: library, checkers, exercises, every chapter in the `smoke` profile, the rendered book.
test: venv
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest

clean:
	rm -rf _build .pytest_cache book/vendor node_modules test-artifacts
