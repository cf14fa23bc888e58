"""Run a chapter's first cells as Colab runs them: in IPython, with ``google.colab`` imported, magics for real.

Started by tests/test_colab.py with the Python of the Colab-like virtual environment (so it imports nothing from
this repository): ``python colab_runner.py FAKE_COLAB_DIR CELLS_JSON REPORT_JSON``. Each cell goes through
IPython's ``run_cell``, which turns ``%pip install ...`` and ``!git clone ...`` into shell commands as in a notebook.
IPython does not stop on a shell command that fails, so every command's exit code is recorded and checked here.
"""

import json
import os
import sys
import time


def main(fake_colab: str, cells_json: str, report_json: str) -> int:
    with open(cells_json, encoding="utf-8") as f:
        cells = json.load(f)
    sys.path.append(fake_colab)
    import google.colab  # noqa: F401  (Colab's kernel imports it at start; the setup cells test sys.modules for it)
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    commands: list[dict] = []
    run_command = shell.system

    def system(cmd: str) -> None:  # %pip and !cmd both end here
        run_command(cmd)
        commands.append({"command": cmd, "exit_code": shell.user_ns.get("_exit_code")})

    shell.system = system
    report: dict = {"cells": [], "commands": commands}
    status = 0
    for cell in cells:
        print(f"----- cell {cell['id']}", flush=True)
        start = time.perf_counter()
        result = shell.run_cell(cell["source"], store_history=True)
        failed = [c for c in commands if c["exit_code"] != 0]
        report["cells"].append(
            {
                "id": cell["id"],
                "seconds": round(time.perf_counter() - start, 2),
                "success": result.success and not failed,
            }
        )
        if not result.success or failed:
            report["error"] = (
                repr(result.error_in_exec or result.error_before_exec)
                if not result.success
                else f"shell command failed: {failed}"
            )
            status = 1
            break
    modules = {}
    for name in ("leakage_core", "torch", "numpy", "pandas", "matplotlib", "IPython"):
        module = sys.modules.get(name)
        modules[name] = {"file": getattr(module, "__file__", None), "version": getattr(module, "__version__", None)}
    report["modules"] = modules
    torch = sys.modules.get("torch")
    report["torch_cuda"] = torch.version.cuda if torch is not None else None
    report["matplotlib_backend"] = sys.modules["matplotlib"].get_backend() if "matplotlib" in sys.modules else None
    report["results_env"] = os.environ.get("LEAKAGE_HAR_RESULTS")  # set by the setup cell
    with open(report_json, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)
    return status


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
