# The two commands the README starts with: `make run` (the whole stack, in the foreground)
# and `make test` (the whole suite). Both set up what they need first and nothing else:
# a virtualenv in .venv, the project in it, and Debian's mosquitto/influxdb packages only
# when their binaries are missing. Servers run as plain processes, never system services.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Extra flags: `make run ARGS="--mqtt-port 1885"`, `make test PYTEST_ARGS="-k stack -x"`.
ARGS ?=
PYTEST_ARGS ?=
DATA_DIR ?= .data
# apt package -> binary it provides; mosquitto-clients gives the mosquitto_pub that the
# printed examples use.
PACKAGES := mosquitto:mosquitto influxdb:influxd mosquitto-clients:mosquitto_pub
# Only the suite needs these: a browser for the Data page test, BusyBox's sh for the
# compose broker entrypoint test (the image's shell); `make run` does not install them.
TEST_PACKAGES := chromium:chromium busybox:busybox

.PHONY: run test lint clean setup servers test-servers

run: setup
	$(BIN)/devicedata stack run --data-dir $(DATA_DIR) $(ARGS)

test: setup test-servers
	$(BIN)/pytest -q $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	-@[ -x $(BIN)/devicedata ] && $(BIN)/devicedata stack down --data-dir $(DATA_DIR)
	rm -rf $(DATA_DIR)

setup: $(STAMP) servers

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Re-installs only when pyproject.toml changed since the last install.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e '.[dev]'
	touch $@

# Installs the Debian packages of $(1) whose binaries are missing (package:binary pairs).
define install_missing
	@missing=""; \
	for entry in $(1); do \
	  pkg=$${entry%%:*}; bin=$${entry#*:}; \
	  command -v $$bin >/dev/null 2>&1 || [ -x /usr/sbin/$$bin ] || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "missing:$$missing; install them first:"; \
	    echo "  sudo apt-get install -y$$missing"; \
	    exit 1; \
	  fi; \
	  echo "installing:$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y $$missing || { apt-get update && apt-get install -y $$missing; }; \
	fi
endef

servers:
	$(call install_missing,$(PACKAGES))

test-servers:
	$(call install_missing,$(TEST_PACKAGES))
