"""The extension as a server sees it: interrupts, concurrent requests, PNG Info, script-info, --medvram."""
import re
import threading
import time

from e2e.harness import V2, Client, animation, assert_video, b64, decode


def ok(response):
    assert response.status == 200, response.error
    return response


def test_interrupt_in_the_middle_of_a_long_generation(webui):
    """Interrupt while a step's first windows run: no later step starts, at most the window running finishes,
    and the model is restored."""
    options = animation(frames=32, context_length=8)
    result = {}
    worker = threading.Thread(target=lambda: result.update(r=webui.client.txt2img(options, steps=4)))
    worker.start()
    watcher = Client(webui.server.url, timeout=30)
    seen = []
    try:
        deadline = time.monotonic() + 900
        while worker.is_alive() and time.monotonic() < deadline:
            text = watcher.get("/sdapi/v1/progress?skip_current_image=true").get("textinfo") or ""
            match = re.search(r"AnimLong: step (\d+)/(\d+), window (\d+)/(\d+)", text)
            if match and int(match.group(4)) >= 3:
                seen.append(tuple(int(g) for g in match.groups()))
                break
            time.sleep(0.3)
        assert seen, "the status text never showed a window of the animation"
        watcher.post("/sdapi/v1/interrupt", {})
        at_interrupt = seen[0]
        while worker.is_alive():
            text = watcher.get("/sdapi/v1/progress?skip_current_image=true").get("textinfo") or ""
            match = re.search(r"AnimLong: step (\d+)/(\d+), window (\d+)/(\d+)", text)
            if match:
                seen.append(tuple(int(g) for g in match.groups()))
            time.sleep(0.3)
    finally:
        worker.join()
        watcher.close()
    later = [s for s in seen[1:] if (s[0], s[2]) > (at_interrupt[0], at_interrupt[2] + 1)]
    assert not later, f"windows ran after the interrupt at {at_interrupt}: {later}"
    assert at_interrupt[0] < at_interrupt[1], "the interrupt came too late to prove anything"
    assert result["r"].status in (200, 500)
    webui.assert_restored()


def test_two_animation_requests_and_a_plain_one_at_once(webui):
    results = {}
    jobs = {"a": lambda c: c.txt2img(animation(frames=6), seed=1),
            "b": lambda c: c.txt2img(animation(frames=9, formats=["WEBP"]), seed=2),
            "plain": lambda c: c.txt2img()}

    def run(name):
        client = Client(webui.server.url)
        try:
            results[name] = jobs[name](client)
        finally:
            client.close()
    threads = [threading.Thread(target=run, args=(name,)) for name in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert_video(ok(results["a"]).images[0], "GIF", 6)
    assert_video(ok(results["b"]).images[0], "WEBP", 9)
    assert ok(results["plain"]).images[0] == webui.reference
    webui.assert_restored()


def test_png_info_round_trip_of_the_infotext(webui):
    """The PNG's parameters, read by the webui's PNG Info, give back every setting, and generating from them
    gives the same video."""
    options = animation(frames=6, context_length=4, closed_loop=True, schedule="overlap", overlap=2, fps=12,
                        motion_scale=1.2, formats=["GIF"], return_frames=True)
    first = ok(webui.client.txt2img(options))
    info = ok(webui.client.post("/sdapi/v1/png-info", {"image": b64(first.images[1])}))
    parameters = info.json["parameters"]
    assert "AnimLong" in parameters, parameters
    from lib_animlong.webui.request import parse_infotext_value
    restored = parse_infotext_value(parameters["AnimLong"])
    for key in ("frames", "context_length", "closed_loop", "schedule", "overlap", "fps", "motion_scale"):
        assert restored[key] == options[key], (key, restored[key], options[key])
    assert restored["motion_module"] == V2 and restored["formats"] == ["GIF"]
    again = ok(webui.client.txt2img(dict(restored, return_frames=True),
                                    seed=int(parameters["Seed"]), steps=int(parameters["Steps"])))
    assert again.images[0] == first.images[0]
    webui.assert_restored()


def test_script_info_lists_the_arguments_in_ui_order(webui):
    from lib_animlong.webui.request import control_names
    info = webui.client.get("/sdapi/v1/script-info")
    for is_img2img in (False, True):
        entry = next(s for s in info if s["name"] == "animlong" and s["is_img2img"] == is_img2img)
        assert entry["is_alwayson"] is True
        labels = [a["label"] for a in entry["args"]]
        assert len(labels) == len(control_names(is_img2img))
        assert labels[:4] == ["Enable long animation", "Motion module", "Output formats", "Frames"]
        assert ("First frame strength" in labels) == is_img2img
        frames = entry["args"][3]
        assert (frames["value"], frames["minimum"], frames["maximum"]) == (64, 1, 4096)
        assert V2 in entry["args"][1]["choices"]


def test_a_start_with_medvram(webui_medvram):
    assert "--medvram" in webui_medvram.log()
    r = ok(webui_medvram.client.txt2img(animation(frames=8)))
    assert_video(r.images[0], "GIF", 8)
    assert decode(r.images[0]).frames == 8
    webui_medvram.assert_restored()
