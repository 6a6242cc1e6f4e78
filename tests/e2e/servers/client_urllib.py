#!/usr/bin/env python3
"""HTTP client for Sonde's end-to-end tests (Python urllib.request).

Usage: client_urllib.py <url> [<url>...]

GETs each URL in turn (urllib opens a new connection per request and sends
"Connection: close"), reads the whole body and prints "<status> <url>".
Error statuses (4xx/5xx) are printed too and are not failures: the exit
status is 0 unless a request could not be made at all (then 1).
"""

import sys
import urllib.error
import urllib.request


def main(urls):
    if not urls:
        sys.stderr.write("usage: client_urllib.py <url> [<url>...]\n")
        return 2
    rc = 0
    for url in urls:
        try:
            with urllib.request.urlopen(url, timeout=30) as resp:
                resp.read()
                status = resp.status
        except urllib.error.HTTPError as err:
            err.read()
            err.close()
            status = err.code
        except (urllib.error.URLError, OSError) as err:
            sys.stderr.write("%s: %s\n" % (url, err))
            rc = 1
            continue
        print("%d %s" % (status, url), flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
