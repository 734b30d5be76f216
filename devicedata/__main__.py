import sys

from devicedata.cli import main

sys.exit(main())
