"""What ``make run`` prints and writes at the end: the summary table (``summary``) and outputs/report.html
(``html``; ``python -m audiolab.report``)."""
