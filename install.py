"""Run by the webui (`python install.py`, webui root on PYTHONPATH): install only what it lacks."""
import launch

REQUIREMENTS = {"imageio": "imageio==2.37.0", "imageio_ffmpeg": "imageio-ffmpeg==0.6.0"}

for module, requirement in REQUIREMENTS.items():
    if not launch.is_installed(module):
        launch.run_pip(f"install {requirement}", f"{requirement} for AnimLong")
