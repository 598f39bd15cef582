#!/bin/sh
# /usr/bin/unlite: the package's Python code lives in /usr/lib/unlite.
PYTHONPATH=/usr/lib/unlite${PYTHONPATH:+:$PYTHONPATH} exec python3 -m unlite "$@"
