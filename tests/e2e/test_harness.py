"""The harness itself: the extension is installed as a user installs it and the webui loads it."""
import os

from e2e import harness


def test_the_extension_is_installed_from_the_repository_files_and_loaded(webui):
    tracked = harness.extension_files()
    for path in ("scripts/animlong.py", "install.py", "lib_animlong/__init__.py"):
        assert path in tracked
        assert os.path.isfile(os.path.join(webui.extension, path))
    assert sorted(os.listdir(webui.motion_modules)) == sorted(["README.md"] + [m.name for m in harness.MOTION_FILES])
    log = webui.log()
    assert "Error loading script: animlong.py" not in log and "Error running install.py" not in log
    scripts = webui.client.get("/sdapi/v1/scripts")
    assert "animlong" in [name.lower() for name in scripts["txt2img"] + scripts["img2img"]]
    webui.assert_restored()
