"""``python -m tinylstm``: the command line."""

import sys

from tinylstm.cli import main

sys.exit(main())
