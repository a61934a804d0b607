import sys

from script.ab.cli import main

sys.exit(main())
