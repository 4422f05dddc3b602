"""fwdjit's version: written into every generated file's header (part of the cache format).

Its own module so that the targets, training code and the public package all
read it from below (the targets never import :mod:`fwdjit.api`).
"""
__version__ = "0.1.0"
