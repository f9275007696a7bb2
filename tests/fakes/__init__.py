"""Loopback stand-ins for services no test machine here can reach (S3, Shopify's Admin API).

Each fake runs as a real server on 127.0.0.1 so the code under test speaks its real
protocol over a socket; see the module docstrings for what each fake checks.
"""
