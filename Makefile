# make run   : set up .venv, run every script on the default data (two at a time), print a
#              summary table and build outputs/report.html
# make test  : set up .venv, run the test suite
# make q1 | q2 | hw | vae | kws : one question only
# make compare OLD=dir NEW=dir : every metrics.json key that differs between two outputs/ trees
# JOBS=1 runs the scripts one after another (default 2: one PyTorch thread each, see
# audiolab/core/runtime.py default_threads); each script's output goes to outputs/.logs/NAME.log.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
JOBS   ?= 2
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt pyproject.toml | cksum | cut -d' ' -f1)
# OpenMP threads that wait at a barrier sleep instead of spinning, so a run with
# --threads 2 does not burn the core another program needs (read when torch loads).
export OMP_WAIT_POLICY ?= PASSIVE

# each step: NAME and the command line of its script
CMD_q1_generate        := q1_generate.py
CMD_q1_plot            := q1_plot.py
CMD_q1_train_lstm      := q1_train_lstm.py
CMD_q2_ctc             := q2_ctc.py
CMD_q2_compare         := q2_compare.py
CMD_q2_multitask       := q2_multitask.py
CMD_hw_cnn1d           := hw_cnn1d.py
CMD_hw_cnn2d           := hw_cnn2d.py
CMD_vae_bss_images     := vae_bss.py images
CMD_vae_bss_music      := vae_bss.py music
CMD_speechcommands_rnn := speechcommands_rnn.py
# longest first, so two jobs finish close together (times: experiments/make_run.md)
STEPS := vae_bss speechcommands_rnn q2_multitask hw_cnn2d hw_cnn1d \
         q1_train_lstm q1_plot q2_ctc q2_compare

.PHONY: setup run steps test q1 q2 hw vae kws report summary bench bench-run compare clean

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip install --no-deps -e .
	@rm -f $(VENV)/.installed-*
	@touch $@

setup: $(STAMP)

test: setup
	$(PY) -m pytest

# -k: one failing script does not stop the others; the summary shows it and make exits 1
run: setup
	@rm -rf outputs/.times
	@$(MAKE) --no-print-directory -k -j$(JOBS) steps; status=$$?; \
	  $(PY) -m audiolab.report; $(PY) -m audiolab.report.summary; exit $$status

steps: $(addprefix step-,$(STEPS))

# step-NAME: run one script through the timer (log in outputs/.logs, time in outputs/.times)
step-%: setup
	@$(PY) -m audiolab.report.summary time $* -- $(PY) $(CMD_$*)

# the two vae_bss parts share outputs/vae_bss: one after the other, in one job
step-vae_bss: setup
	@$(PY) -m audiolab.report.summary time vae_bss_images -- $(PY) $(CMD_vae_bss_images); status=$$?; \
	  $(PY) -m audiolab.report.summary time vae_bss_music -- $(PY) $(CMD_vae_bss_music) && exit $$status

# Q1's data first
step-q1_plot step-q1_train_lstm: step-q1_generate

q1: step-q1_generate step-q1_plot step-q1_train_lstm
q2: step-q2_ctc step-q2_compare step-q2_multitask
hw: step-hw_cnn1d step-hw_cnn2d
vae: step-vae_bss
kws: step-speechcommands_rnn

report: setup
	$(PY) -m audiolab.report

summary: setup
	@$(PY) -m audiolab.report.summary

bench: setup
	$(PY) -m pip install -q -r benchmarks/requirements.txt
	@for b in benchmarks/*.py; do \
	  case $$b in */make_run_time.py|*/jobs.py|*/compare_metrics.py) continue;; esac; \
	  echo ">>> $$b"; $(PY) $$b || exit 1; done
# the timing of `make run` itself (idle and with a competing process); not part of bench
bench-run: setup
	$(PY) benchmarks/make_run_time.py

# a refactor changes no number: make run before and after, then this prints nothing
compare: setup
	$(PY) benchmarks/compare_metrics.py $(OLD) $(NEW)

clean:
	rm -rf outputs
