"""General infrastructure every script uses: command line, run-time plumbing, audio I/O, DSP, metrics,
plots and the one training loop. Nothing here knows a dataset or a task."""
