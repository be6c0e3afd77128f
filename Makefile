# Developer shortcuts; the README's two commands are the contract, these are conveniences.
.PHONY: help install serve lint format type-check test test-pg openapi bench

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

install:  ## create .venv with the dev extras
	python3 -m venv .venv && .venv/bin/pip install -q -e '.[dev]'

serve:  ## run the server on SQLite with demo data
	.venv/bin/portal-gateway serve --demo

lint:  ## ruff lint and format check
	.venv/bin/ruff check gateway mappings tests bench && .venv/bin/ruff format --check gateway mappings tests bench

format:  ## apply ruff formatting
	.venv/bin/ruff format gateway mappings tests bench

type-check:  ## mypy --strict on gateway, mappings and bench
	.venv/bin/mypy gateway mappings bench

test:  ## the whole suite (what CI runs)
	./scripts/test.sh

test-pg:  ## the suite on SQLite and PostgreSQL at 127.0.0.1:5432
	GATEWAY_TEST_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/test ./scripts/test.sh

openapi:  ## regenerate openapi/openapi.json from the app
	.venv/bin/portal-gateway openapi

bench:  ## native read-path benchmark (ratios to a trivial route)
	.venv/bin/python bench/native_read.py
