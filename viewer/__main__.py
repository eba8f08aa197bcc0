import sys

from viewer.server import main

sys.exit(main())
