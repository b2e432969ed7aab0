# The two README commands: `make demo` (install + run the main job) and `make test`
# (the test suite, then the documentation site built strictly); `make docs` builds the site into site/.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

CHROMIUM := /usr/bin/chromium

VIEWER := src/tv3dg/app/viewer

.PHONY: setup demo test docs bench chromium viewer

setup: $(STAMP)

$(STAMP): pyproject.toml
	# pymeshlab (mesh decimation) loads the system's libGL; Debian/Ubuntu ship it in libgl1.
	{ ldconfig -p 2>/dev/null || /sbin/ldconfig -p; } | grep -q 'libGL\.so\.1' || { apt-get update -qq && apt-get install -y -qq libgl1; }
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# The CPU build of torch first, so that no dependency pulls a CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: setup
	$(VENV)/bin/tv3dg generate --prompt "a red striped cube" --out outputs/demo --overwrite

# The app's browser tests drive the system Chromium (Debian's package; Playwright downloads no browser).
chromium:
	@test -x $(CHROMIUM) || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)

# The app's splat viewer: Spark and three.js from npm, exactly as pinned in the lockfile.
viewer: $(VIEWER)/node_modules/.package-lock.json

$(VIEWER)/node_modules/.package-lock.json: $(VIEWER)/package.json $(VIEWER)/package-lock.json
	npm ci --prefix $(VIEWER) --no-audit --no-fund

# The site is built strictly, and not with --quiet: that hides the warnings --strict counts, so a
# broken link would pass.
test: setup chromium viewer
	$(PY) -m pytest -q
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

# Offline: no plugin fetches anything at build time, and the theme loads no web fonts (mkdocs.yml).
docs: setup
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

bench: setup
	$(PY) benchmarks/rasterizer.py
