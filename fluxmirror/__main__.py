"""`python -m fluxmirror`."""

import sys

from fluxmirror.cli import main

sys.exit(main())
