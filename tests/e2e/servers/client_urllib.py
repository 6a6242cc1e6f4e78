#!/usr/bin/env python3
"""HTTP client for Sonde's end-to-end tests (Python urllib.request).

Usage: client_urllib.py [--cafile CERT] [--method METHOD] [--data TEXT] <url>...

Requests each URL in turn (urllib opens a new connection per request and
sends "Connection: close"), reads the whole body and prints
"<status> <url> <local port>", the local port being the client side of that
request's TCP connection. Error statuses (4xx/5xx) are printed too and are not
failures: the exit status is 0 unless a request could not be made at all
(then 1).

Options apply to the URLs that follow them, so one run can mix methods:
  --cafile CERT    trust only this PEM certificate for https:// URLs (the
                   default context verifies against the system store)
  --method METHOD  the request method (default GET)
  --data TEXT      send TEXT as the request body ("-" for none, the default)
"""

import http.client
import sys
import urllib.error
import urllib.request


class _PortRecorder:
    """Remembers the local port of the last connection urllib opened."""
    last_port = None

    @classmethod
    def record(cls, conn):
        try:
            cls.last_port = conn.sock.getsockname()[1]
        except (AttributeError, OSError):
            pass


def _recording(conn_class):
    class Recording(conn_class):
        def connect(self):
            super().connect()
            _PortRecorder.record(self)
    return Recording


class _Http(urllib.request.HTTPHandler):
    def http_open(self, req):
        return self.do_open(_recording(http.client.HTTPConnection), req)


def _opener(cafile):
    handlers = [_Http()]
    if cafile is not None:
        import ssl

        context = ssl.create_default_context(cafile=cafile)

        class _Https(urllib.request.HTTPSHandler):
            def https_open(self, req):
                return self.do_open(_recording(http.client.HTTPSConnection), req,
                                    context=context)
        handlers.append(_Https())
    return urllib.request.build_opener(*handlers)


def main(args):
    cafile, method, data, urls = None, "GET", None, 0
    jobs = []
    while args:
        arg = args.pop(0)
        if arg in ("--cafile", "--method", "--data"):
            if not args:
                sys.stderr.write("%s needs a value\n" % arg)
                return 2
            value = args.pop(0)
            if arg == "--cafile":
                cafile = value
            elif arg == "--method":
                method = value
            else:
                data = None if value == "-" else value.encode()
            continue
        jobs.append((arg, method, data))
        urls += 1
    if not urls:
        sys.stderr.write("usage: client_urllib.py [--cafile CERT] [--method METHOD] "
                         "[--data TEXT] <url> [<url>...]\n")
        return 2
    opener = _opener(cafile)
    rc = 0
    for url, method, data in jobs:
        _PortRecorder.last_port = None
        request = urllib.request.Request(url, data=data, method=method)
        try:
            with opener.open(request, timeout=30) as resp:
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
        print("%d %s %s" % (status, url, _PortRecorder.last_port or 0), flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
