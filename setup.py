"""Kept so the project layout has a setup.py; all metadata is in pyproject.toml.

fluxmirror is pure Python today: no extension modules are built, so this is a plain `setup()`
call with nothing to add.
"""

from setuptools import setup

setup()
