# murallab: `make tutorial` and `make test` are the two commands a student needs.
# Both create .venv on first use (`make setup`), which does nothing once .venv is current.

PYTHON   ?= $(shell command -v python3.11 || command -v python3)
VENV     := .venv
BIN      := $(VENV)/bin
KERNEL   := murallab
STAMP    := $(VENV)/.installed
NOTEBOOKS = $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
TUTORIAL := runs/tutorial

.PHONY: setup tutorial test lab bench gpu-data clean

setup: $(STAMP)

# the library with its course tools (notebooks, papermill) and test references, torch pinned to the proven pair
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[course,test]"
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (murallab)"
	$(BIN)/python -c "import torch, torchvision; print('murallab: torch', torch.__version__, '| torchvision', torchvision.__version__)"
	touch $@

tutorial: setup
	@mkdir -p $(TUTORIAL)
	@set -e; for nb in $(NOTEBOOKS); do \
	  name=$$(basename $$nb .ipynb); \
	  echo "== $$name"; \
	  $(BIN)/papermill $$nb $(TUTORIAL)/$$name.ipynb -k $(KERNEL) --cwd notebooks \
	    --execution-timeout 600 -p output_dir $(abspath $(TUTORIAL))/$$name; \
	  $(BIN)/jupyter nbconvert --log-level WARN --to html $(TUTORIAL)/$$name.ipynb --output-dir $(TUTORIAL); \
	done
	@echo "Executed notebooks, their HTML and outputs are in $(abspath $(TUTORIAL))/"

test: setup
	$(BIN)/python -m pytest

lab: setup
	$(BIN)/jupyter lab --notebook-dir=notebooks

bench: setup
	@set -e; for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b; done

# the real murals copied next to the working tree, for running bench/gpu_session.sh on another machine; never committed
# (PEER_NET=path/to/net.py also copies naoto0804's PConvUNet, MIT licence, for bench/partial_conv.py --peer)
gpu-data:
	mkdir -p gpu_data
	cp -r ../shared/murals ../shared/murals_pool gpu_data/
	$(if $(PEER_NET),cp $(PEER_NET) gpu_data/naoto0804_net.py)
	chmod -R u+w gpu_data

clean:
	rm -rf runs
