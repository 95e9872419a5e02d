"""install.py asks the webui's pip only for what is missing, pinned to versions that exist for Python 3.10."""
import os
import runpy

from webui_stub.harness import ROOT, webui  # noqa: F401  (fixture)


def test_install_adds_only_missing_packages_pinned(webui):
    import launch
    runpy.run_path(os.path.join(ROOT, "install.py"))
    assert launch.pip_commands == []            # imageio and imageio-ffmpeg are here
    launch.is_installed = lambda name: name != "imageio_ffmpeg"
    runpy.run_path(os.path.join(ROOT, "install.py"))
    assert launch.pip_commands == ["install imageio-ffmpeg==0.6.0"]


def test_settings_section_registers_every_option_in_api_mode_too(webui):
    webui.shared.opts.data.pop("animlong_motion_folder")
    webui.callbacks.ui_settings_callback()
    labels = webui.shared.opts.data_labels
    keys = {"animlong_motion_folder", "animlong_formats", "animlong_mp4_crf", "animlong_gif_palette",
            "animlong_save_frames", "animlong_output_folder"}
    assert keys <= set(labels)
    assert all(labels[k].section == ("animlong", "Long animation") for k in keys)
    assert webui.shared.opts.animlong_formats == ["GIF", "MP4"] and webui.shared.opts.animlong_mp4_crf == 18
