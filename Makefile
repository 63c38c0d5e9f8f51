# The two quick-start commands. Both install what they need first (scripts/bootstrap.sh).
.PHONY: demo view test bootstrap

bootstrap:
	./scripts/bootstrap.sh

# The main job on the built-in sample data: the portal, viewer, desktop, compute API and
# JupyterLab behind one URL and one token.
demo: bootstrap
	.venv/bin/slicer-cloud serve

# The web viewer alone, on the built-in sample.
view: bootstrap
	.venv/bin/slicer-cloud view

# The whole test suite.
test: bootstrap
	.venv/bin/python -m pytest
