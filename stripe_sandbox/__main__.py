"""``python -m stripe_sandbox``: run the sandbox in the foreground."""

from __future__ import annotations

import sys

from stripe_sandbox.cli import main

sys.exit(main())
