"""Build hook: compile the Cython sources in `_native/` into `fluxmirror._native`.

Each `_native/<name>.pyx` has a pure-Python twin in `fluxmirror/_native/` that is used when the
extension is not built, and both pass the same tests; `make bench` shows what each one wins.
"""

from pathlib import Path

from setuptools import Extension, setup

sources = sorted(Path("_native").glob("*.pyx"))
extensions = [Extension(f"fluxmirror._native.{source.stem}_c", [str(source)]) for source in sources]
if extensions:
    from Cython.Build import cythonize

    extensions = cythonize(extensions, language_level=3, compiler_directives={"binding": False})

setup(ext_modules=extensions)
