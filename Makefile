# One entry point for every dev task; CI calls `make test` unchanged.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
LOCAL_STAMP := $(VENV)/.installed-local
DEMO_RUN ?= demo-run
DEMO_MIX ?= python=6,cpp=1,java=1,typescript=1,shell=1,csharp=1,rust=1,php=1,swift=1
export HF_HUB_DISABLE_TELEMETRY := 1

.PHONY: install sandbox browser test lint demo bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

# llama-cpp-python compiles from source (about 6 minutes on 2 cores); pip's wheel cache makes
# later installs fast.
$(LOCAL_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,local]'
	touch $(LOCAL_STAMP)

install: $(STAMP)

# Debian packages the project needs, installed once, with sudo when not root:
# $(call apt_install,COMMAND,PACKAGE,WHAT IT IS FOR).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
define apt_install
	@command -v $(1) >/dev/null 2>&1 || { \
		echo "installing $(2), $(3)"; \
		export DEBIAN_FRONTEND=noninteractive; \
		$(SUDO) apt-get install -y -q $(2) >/dev/null 2>&1 || \
		{ $(SUDO) apt-get update -q >/dev/null && $(SUDO) apt-get install -y -q $(2) >/dev/null; } || \
		{ echo "could not install $(2): install it with your package manager"; exit 1; }; }
endef

# Generated code runs only inside bubblewrap (`bwrap`): verify and the execution method of
# decontaminate/audit refuse to run without it.
sandbox:
	$(call apt_install,bwrap,bubblewrap,the sandbox for generated code)

# The viewer's tests drive Debian's chromium (headless) through Playwright.
browser:
	$(call apt_install,chromium,chromium,the browser the viewer's tests drive)

lint: $(LOCAL_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy magicoder_data

test: lint sandbox browser
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(BIN)/pytest

# The main job end to end on the bundled corpus with the embedded local model (no API key).
# It asks for tests with each solution, runs them in the sandbox (verify), and decontaminates
# with the text methods and by running HumanEval's own tests (execution).
demo: $(LOCAL_STAMP) sandbox
	rm -rf $(DEMO_RUN) $(DEMO_RUN)-dataset $(DEMO_RUN)-audit $(DEMO_RUN)-analysis.ipynb
	$(BIN)/magicoder-data sample $(DEMO_RUN) --source bundled --mix $(DEMO_MIX)
	env -u OPENAI_API_KEY -u OPENAI_BASE_URL $(BIN)/magicoder-data generate $(DEMO_RUN) --plain \
		--template oss-instruct-tests
	$(BIN)/magicoder-data clean $(DEMO_RUN) --min-problem 20 --min-solution 10
	$(BIN)/magicoder-data verify $(DEMO_RUN) --plain
	$(BIN)/magicoder-data decontaminate $(DEMO_RUN) --benchmarks humaneval
	$(BIN)/magicoder-data lintseq $(DEMO_RUN) -s 2
	$(BIN)/magicoder-data status $(DEMO_RUN)
	$(BIN)/magicoder-data export $(DEMO_RUN) --out $(DEMO_RUN)-dataset --config all
	$(BIN)/magicoder-data audit $(DEMO_RUN) examples/reworded-humaneval.jsonl --benchmarks humaneval \
		--report $(DEMO_RUN)-audit
	MAGICODER_RUN=$(CURDIR)/$(DEMO_RUN) HF_HUB_OFFLINE=1 $(BIN)/jupyter execute \
		notebooks/analysis.ipynb --output=../$(DEMO_RUN)-analysis
	@echo "dataset: $(DEMO_RUN)-dataset/  audit report: $(DEMO_RUN)-audit/report.html" \
		" analysis: $(DEMO_RUN)-analysis.ipynb  browse: $(BIN)/magicoder-data serve $(DEMO_RUN)"

bench: $(STAMP) sandbox
	$(BIN)/python bench/bench_sample.py
	$(BIN)/python bench/bench_export.py
	$(BIN)/python bench/bench_sandbox.py

clean:
	rm -rf $(VENV) $(DEMO_RUN) $(DEMO_RUN)-dataset $(DEMO_RUN)-audit $(DEMO_RUN)-analysis.ipynb
	rm -rf .pytest_cache .ruff_cache .mypy_cache
