"""python -m epfinder"""

from epfinder._cli import main

raise SystemExit(main())
