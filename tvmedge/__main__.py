import sys

from tvmedge.cli.main import main

sys.exit(main())
