"""``python -m audiolab.report``: build outputs/report.html (see :mod:`audiolab.report.html`)."""
import sys

from audiolab.report.html import main

sys.exit(main())
