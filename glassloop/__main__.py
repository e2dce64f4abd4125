import sys

from glassloop.cli import main

sys.exit(main())
