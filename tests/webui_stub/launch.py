"""modules/launch_utils as seen by install.py: is_installed(name), run_pip(command, desc)."""
import importlib.util

pip_commands = []


def is_installed(package):
    return importlib.util.find_spec(package) is not None


def run_pip(command, desc=None, live=False):
    pip_commands.append(command)
