"""Serves pushed AlexNet models with KServe's Python model server."""

import sys

# kserve.model_server parses sys.argv when first imported; keep our CLI's flags away from it.
_argv, sys.argv = sys.argv, sys.argv[:1]
try:
    import kserve  # noqa: F401
finally:
    sys.argv = _argv
