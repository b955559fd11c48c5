"""The soak run (not in CI): see loadtest/soak.py.

    .venv/bin/python scripts/soak.py --minutes 10 --html reports/soak.html
"""

import sys

from loadtest.soak import main

if __name__ == "__main__":  # the load generator's processes import this module again
    sys.exit(main())
