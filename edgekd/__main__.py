"""`python -m edgekd ...` (and `torchrun --nproc-per-node N -m edgekd distill ...`)."""

import sys

from edgekd.cli.main import main

sys.exit(main())
