"""`python -m pynats_server` is `pynats-server`."""

import sys

from .cli import main

sys.exit(main())
