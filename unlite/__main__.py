import sys

from . import tune_malloc

if sys.argv[1:2] == ["serve"]:
    tune_malloc()                  # first: it may re-execute the process

from .cli import main  # noqa: E402

sys.exit(main())
