# kd-book: `make test` and `make book` work on a fresh clone (they create .venv themselves).
PYTHON      ?= python3
VENV        := .venv
PY          := $(VENV)/bin/python
STAMP       := $(VENV)/.installed
SHARED_DATA := $(abspath ../shared/data/mnist)
# Offline MNIST: the shared folder when it exists, else torchvision downloads (needs internet).
KDLIB_DATA  ?= $(if $(wildcard $(SHARED_DATA)/SHA256SUMS),$(SHARED_DATA),)
export KDLIB_DATA
PROFILE     ?= full
DEVICE      ?= cpu
NOTEBOOKS   := $(sort $(wildcard notebooks/*.ipynb))

.PHONY: venv test test-unit test-notebooks book bench reproduce full-runs test-browser clean

venv: $(STAMP)
$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

## make test: unit tests, nbval on the committed notebooks, papermill smoke runs, book build
test: venv
	$(PY) -m pytest -q tests
	$(PY) -m pytest -q --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider notebooks
	$(VENV)/bin/jupyter-book build . -W -n --keep-going --builder html --path-output _build/test >/dev/null

## make book: the HTML book from the committed notebook outputs (nothing is trained)
book: venv
	$(VENV)/bin/jupyter-book build . -W -n --keep-going --builder html
	@echo "open _build/html/index.html"

## make test-browser: every page of the built book in headless Chromium (console, images, math, links)
test-browser: book
	test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || { apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; }
	$(PY) -m pytest -q -p no:cacheprovider tests/browser/check_book.py

## make bench: speed of kdlib's loop vs a conventional loop, and stacked sweeps (not a test)
bench: venv
	$(PY) benchmarks/bench.py --out benchmarks/out/bench-$$(hostname)-$(DEVICE).json --device $(DEVICE)

## make full-runs: every experiment of the full profile through the CLI (resumable); first the
## validation-split sweep that chose the distillation recipe's hard-label weight
full-runs: venv
	$(PY) -m kdlib hard_weight --validation --seed 0 --profile $(PROFILE) --device $(DEVICE)
	$(PY) -m kdlib all --profile $(PROFILE) --device $(DEVICE)

## make reproduce PROFILE=full DEVICE=cuda [SEEDS=0,1,2] [FORCE=1]: rerun every notebook with papermill
reproduce: venv
	@for nb in $(NOTEBOOKS); do \
	  echo "== $$nb"; \
	  $(VENV)/bin/papermill --cwd notebooks $$nb $$nb.tmp -p profile $(PROFILE) -p device $(DEVICE) \
	    $(if $(FORCE),-p force True,) $(if $(SEEDS),-y "seeds: [$(SEEDS)]",) -k python3 \
	    && mv $$nb.tmp $$nb || exit 1; \
	done

## make lab: JupyterLab on the project with the venv's kernel (python3) and KDLIB_DATA set;
## jupytext pairs every notebook with its MyST-markdown twin notebooks/*.md (saving one saves
## both). After re-executing notebooks: $(PY) tools/tag_notebooks.py
.PHONY: lab
lab: venv
	$(VENV)/bin/jupyter lab --notebook-dir=. $(if $(NO_BROWSER),--no-browser,)

clean:
	rm -rf _build
