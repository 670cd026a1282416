"""A slow disk under one module's import, for scripts run in a fresh interpreter: prepend
``HOLD_UP_IMPORT`` to the script, then ``hold_up_import("genai_prices.data", 1.0)`` makes that
import wait before it runs, so a load started in the background is still going when the
script's case under test happens."""

import textwrap

HOLD_UP_IMPORT = textwrap.dedent("""
    import importlib.abc, importlib.machinery, sys, time


    def hold_up_import(module_name, seconds):
        class SlowDisk(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name != module_name or not seconds:
                    return None
                spec = importlib.machinery.PathFinder.find_spec(name, path)
                run = spec.loader.exec_module

                def exec_module(module):
                    time.sleep(seconds)
                    run(module)

                spec.loader.exec_module = exec_module
                return spec

        sys.meta_path.insert(0, SlowDisk())
""")
