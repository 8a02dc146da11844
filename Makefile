# The two commands of the README. Both work on a fresh machine (they install uv and the locked workspace).
.PHONY: demo test lint bench readme-check

demo:
	bash scripts/demo.sh

test:
	bash scripts/test.sh

lint:
	uv run --frozen ruff check packages benchmarks
	uv run --frozen ruff format --check packages benchmarks

bench:
	uv run --frozen python benchmarks/sandbox_bench.py

readme-check:
	bash scripts/readme_check.sh
