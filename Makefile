# The two commands a fresh machine needs are `make demo` and `make test`; both set up first.
SHELL := /bin/bash
VENV := .venv
PYTEST_ARGS ?=
# Test files run in parallel (pytest-xdist), whole files per worker so a module's fixtures (a
# shop, an A/B run, a Ray cluster) are built once; most tests wait on a browser or a server, so
# two workers on two cores roughly halve the wall time. PYTEST_WORKERS=0 runs in one process.
PYTEST_WORKERS ?= 2

.PHONY: setup vllm-env demo test bench clean

setup:
	@bash .ci/setup.sh

vllm-env:
	@bash .ci/vllm-env.sh

demo: setup
	$(VENV)/bin/shop-r1 demo

# The two virtualenvs are independent: they are built side by side (a fresh machine saves the
# shorter of the two, about two minutes).
test:
	@$(MAKE) --no-print-directory -j2 setup vllm-env
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(VENV)/bin/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=20 $(PYTEST_ARGS)

# browsergym-core (the reducer benchmark's baseline) pins playwright==1.44; install it without
# its pins so our Playwright stays as it is.
bench: setup
	$(VENV)/bin/pip install -q --no-deps "browsergym-core==0.14.3" && $(VENV)/bin/pip install -q gymnasium
	$(VENV)/bin/python bench/observe.py
	$(VENV)/bin/python bench/simulate.py

clean:
	rm -rf $(VENV) .venv-vllm .pytest_cache
