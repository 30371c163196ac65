"""The image's HEALTHCHECK: exit 0 when the local server answers ready on /v2/health/ready.

Standard library only, so a probe every few seconds costs no imports of numpy or onnxruntime.
"""

import os
import sys
import urllib.request


def main() -> int:
    url = f"http://127.0.0.1:{os.environ.get('PORT', '8080')}/v2/health/ready"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return 0 if response.status == 200 else 1
    except OSError as err:  # refused, timed out, or 503 (HTTPError) while not ready
        print(f"healthcheck: not ready: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
