"""The native hot paths: one C extension, built for the running CPython by `pip install .`.

Where no compiler is at hand the package still installs and runs on its pure-Python paths
(`optional=True`), and says so on the index page and in every profile.
"""

import os

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "duragraph_pprof._native",
            sources=["native/sampler.c", "native/heap.c"],
            depends=["native/gil.h", "native/walk.h", "native/tables.h", "native/stacks.h"],
            extra_compile_args=["-std=c11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter",
                                "-Wno-missing-field-initializers"]
            + os.environ.get("DURAGRAPH_PPROF_NATIVE_CFLAGS", "").split(),
            extra_link_args=os.environ.get("DURAGRAPH_PPROF_NATIVE_LDFLAGS", "").split(),
            libraries=["m"],
            optional=os.environ.get("DURAGRAPH_PPROF_NATIVE_REQUIRED") != "1",
        )
    ]
)
