# make run   : set up .venv, run every script in order on the default data, build the report
# make test  : set up .venv, run the test suite
# make q1 | q2 | hw | vae | kws : one question only
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum requirements.txt | cut -d' ' -f1)

# run_if SCRIPT ARGS: run a script when it exists (scripts land one issue at a time)
define run_if
	@if [ -f $(1) ]; then echo ">>> $(PY) $(1) $(2)"; $(PY) $(1) $(2); else echo ">>> skipping $(1): not in this checkout"; fi
endef

.PHONY: setup run test q1 q2 hw vae kws report bench clean

$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -r requirements.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

setup: $(STAMP)

test: setup
	$(PY) -m pytest

run: q1 q2 hw vae kws report

q1: setup
	$(call run_if,q1_generate.py,)
	$(call run_if,q1_plot.py,)
	$(call run_if,q1_train_lstm.py,)

q2: setup
	$(call run_if,q2_ctc.py,)
	$(call run_if,q2_compare.py,)
	$(call run_if,q2_multitask.py,)

hw: setup
	$(call run_if,hw_cnn1d.py,)
	$(call run_if,hw_cnn2d.py,)

vae: setup
	$(call run_if,vae_bss.py,images)
	$(call run_if,vae_bss.py,music)

kws: setup
	$(call run_if,speechcommands_rnn.py,)

report: setup
	$(PY) -m audiolab.report

bench: setup
	$(PY) -m pip install -q -r benchmarks/requirements.txt
	@for b in benchmarks/*.py; do echo ">>> $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf outputs
