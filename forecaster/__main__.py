"""`python -m forecaster`: the same as the `forecaster` console command."""

import sys

from forecaster.cli.main import main, run

sys.exit(run(main))
