# The two quick-start commands. Both install what they need first (scripts/bootstrap.sh).
.PHONY: demo test bootstrap

bootstrap:
	./scripts/bootstrap.sh

# The main job on the built-in sample data.
demo: bootstrap
	.venv/bin/slicer-cloud view

# The whole test suite.
test: bootstrap
	.venv/bin/python -m pytest
