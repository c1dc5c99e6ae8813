"""Build the compiled kernels.

Every ``src/fastrnn/*.pyx`` becomes an extension module ``fastrnn.<name>``.
Flags are portable (``-O3``, no ``-march=native``): native tuning is the
user's own CFLAGS.  ``FASTRNN_DEBUG_BUILD=1`` turns bounds checking and
memoryview initialisation checks back on and compiles without optimisation,
for running the kernel tests as a memory-safety check.
"""
import os
import sys
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("FASTRNN_DEBUG_BUILD", "") not in ("", "0")

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
}

if sys.platform == "win32":
    compile_args = ["/O2"]
elif DEBUG:
    compile_args = ["-O0", "-g"]
else:
    # -fno-math-errno: sqrt need not set errno, so loops calling it vectorise
    # (portable: it changes no result; NumPy and most BLAS builds use it too).
    compile_args = ["-O3", "-fno-math-errno"]

# The packed-weight step kernel (C, run-time ISA dispatch, its own thread team)
# is compiled into _kernels; its ISA-specific functions carry target attributes.
threads = [] if sys.platform == "win32" else ["-pthread"]
c_sources = {"_kernels": ["src/fastrnn/csrc/packed_step.c"]}

here = Path(__file__).parent
extensions = [
    Extension(
        f"fastrnn.{pyx.stem}",
        [str(pyx.relative_to(here))] + c_sources.get(pyx.stem, []),
        include_dirs=[str(pyx.parent), str(pyx.parent / "csrc")],
        extra_compile_args=compile_args + (threads if pyx.stem in c_sources else []),
        extra_link_args=threads if pyx.stem in c_sources else [],
        libraries=["dl"] if (pyx.stem in c_sources and sys.platform.startswith("linux")) else [],
        depends=["src/fastrnn/csrc/packed_step.h", "src/fastrnn/csrc/packed_step_impl.h"],
    )
    for pyx in sorted((here / "src" / "fastrnn").glob("*.pyx"))
]

setup(ext_modules=cythonize(extensions, compiler_directives=directives))
