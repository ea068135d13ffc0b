"""An unmodified script for `command` templates (issue 20): prints its argv as a JSON line
and one `key: value` scalar line (run with `scalars = "stdout"`)."""

import json
import sys

print("argv " + json.dumps(sys.argv[1:]), flush=True)
print("val_acc: 0.5", flush=True)
