#!/usr/bin/env python3
"""Runs a private nginx serving HTTP/2 for Sonde's end-to-end tests.

Usage: nginx_h2_server.py <port> <workdir> [--tls CERT KEY]

Exactly nginx_server.py (same files, same READY line, same shutdown), with
nginx_h2.conf.template instead of nginx.conf.template: h2 over TLS with
--tls, h2c (prior knowledge) without.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import nginx_server  # noqa: E402

nginx_server.TEMPLATE = os.path.join(HERE, "nginx_h2.conf.template")

if __name__ == "__main__":
    sys.exit(nginx_server.main())
