"""``python -m gradtape``: the lecture demo (:mod:`gradtape.lecture`)."""
import sys

from gradtape.lecture import main

if __name__ == "__main__":
    sys.exit(main())
