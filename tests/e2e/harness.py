"""The real AUTOMATIC1111 webui v1.10.1 of ../shared/webui, driven the way a user drives it.

- `ensure_harness()` runs the harness's setup.sh at a fixed prefix (idempotent: seconds when built).
- `install_extension()` copies this repository's files into `<data-dir>/extensions/animlong` and runs its
  install.py exactly as `modules/launch_utils.run_extension_installer` does.
- `motion_files()` writes motion-module files with the real key names and full SD1.5/SDXL widths (random
  weights), once per machine into a cache keyed by the code that makes them, and links them into the
  extension's `motion_modules/` folder as a user would copy them there.
- `WebuiServer` starts the webui exactly as the harness's start.sh does (same environment, same flags) plus
  `--data-dir`, on a free port, in its own session, and stops it by its process group.
- `Client` posts to `/sdapi/v1/*` with httpx (the webui's own pin, 0.24.1) and decodes what comes back.

Environment: ANIMLONG_WEBUI_PREFIX (default /root/.cache/animlong-webui), ANIMLONG_WEBUI_HARNESS (default
../shared/webui from the repository root), WEBUI_THREADS (default 2), WEBUI_WAIT_TIMEOUT (default 300 s),
ANIMLONG_E2E_CACHE (default ~/.cache/animlong-e2e: the motion-module files).
"""
import atexit
import base64
import contextlib
import fcntl
import hashlib
import io
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
EXTENSION_NAME = "animlong"


class HarnessError(RuntimeError):
    """The webui harness could not be set up or started (the message says what to do)."""


# ---------------------------------------------------------------------------------------------- paths

def harness_dir() -> str:
    """ANIMLONG_WEBUI_HARNESS, else ../shared/webui next to the checkout (for a git worktree: next to the main
    checkout it belongs to)."""
    if os.environ.get("ANIMLONG_WEBUI_HARNESS"):
        return os.path.abspath(os.environ["ANIMLONG_WEBUI_HARNESS"])
    candidates = [os.path.join(ROOT, "..", "shared", "webui")]
    try:
        common = subprocess.run(["git", "rev-parse", "--path-format=absolute", "--git-common-dir"], cwd=ROOT,
                                capture_output=True, text=True, check=True).stdout.strip()
        candidates.append(os.path.join(os.path.dirname(common), "..", "shared", "webui"))
    except (OSError, subprocess.CalledProcessError):
        pass
    found = [c for c in candidates if os.path.isfile(os.path.join(c, "setup.sh"))]
    return os.path.abspath((found or candidates)[0])


def prefix() -> str:
    return os.path.abspath(os.path.expanduser(os.environ.get("ANIMLONG_WEBUI_PREFIX") or "/root/.cache/animlong-webui"))


def webui_root() -> str:
    return os.path.join(prefix(), "stable-diffusion-webui")


def webui_python() -> str:
    return os.path.join(prefix(), "venv", "bin", "python")


def checkpoint() -> str:
    return os.path.join(webui_root(), "models", "Stable-diffusion", "sd15_random.safetensors")


def threads() -> str:
    return os.environ.get("WEBUI_THREADS") or "2"


# ---------------------------------------------------------------------------------------------- set-up

def ensure_harness(log_path: str) -> None:
    """Run setup.sh PREFIX (first time 6-10 min, then a few seconds); HarnessError with its tail on failure."""
    setup = os.path.join(harness_dir(), "setup.sh")
    if not os.path.isfile(setup):
        raise HarnessError(f"the webui harness is missing: {setup} does not exist. Set ANIMLONG_WEBUI_HARNESS to "
                           "the folder holding setup.sh/start.sh (../shared/webui next to this repository).")
    with open(log_path, "w") as log:
        result = subprocess.run(["bash", setup, prefix()], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    if result.returncode != 0 or not os.path.isfile(os.path.join(prefix(), ".stamps", "all")):
        raise HarnessError(f"setup.sh {prefix()} failed (exit {result.returncode}); run "
                           f"`bash tools/bootstrap.sh --tests` or `bash {setup} {prefix()}` and read its output. "
                           f"Last lines of {log_path}:\n{_tail(log_path, 25)}")


def extension_files() -> List[str]:
    """The repository's files as a clone has them: tracked, plus new files not ignored (work in progress)."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                         check=True, capture_output=True).stdout.decode()
    return sorted({path for path in out.split("\0") if path and os.path.isfile(os.path.join(ROOT, path))})


def install_extension(data_dir: str) -> str:
    """Copy the extension into <data_dir>/extensions/animlong and run its install.py as the webui does."""
    target = os.path.join(data_dir, "extensions", EXTENSION_NAME)
    for path in extension_files():
        destination = os.path.join(target, path)
        os.makedirs(os.path.dirname(destination), exist_ok=True)
        shutil.copy2(os.path.join(ROOT, path), destination)
    # modules/launch_utils.run_extension_installer: the venv's python, PYTHONPATH = webui root + the old value
    # (unset under start.sh), the current directory the webui root
    env = _server_env()
    env["PYTHONPATH"] = f"{webui_root()}{os.pathsep}"
    result = subprocess.run([webui_python(), os.path.join(target, "install.py")], cwd=webui_root(), env=env,
                            capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise HarnessError(f"the extension's install.py failed (exit {result.returncode}):\n"
                           f"{(result.stdout + result.stderr)[-3000:]}")
    return target


def _server_env() -> Dict[str, str]:
    """start.sh's environment."""
    env = dict(os.environ)
    for name in ("COMMANDLINE_ARGS", "PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"):
        env.pop(name, None)
    n = threads()
    env.update(HF_HOME=os.path.join(prefix(), "hf"), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               HF_DATASETS_OFFLINE="1", OMP_NUM_THREADS=n, MKL_NUM_THREADS=n, OMP_WAIT_POLICY="PASSIVE",
               GRADIO_ANALYTICS_ENABLED="False", DO_NOT_TRACK="1", PYTHONUNBUFFERED="1", TORCHDYNAMO_DISABLE="1",
               GIT_CEILING_DIRECTORIES=prefix())
    return env


# ---------------------------------------------------------------------------------------------- motion files

@dataclass(frozen=True)
class MotionFile:
    """One file the tests put into motion_modules/: what it is and how it was written."""
    name: str
    kind: str                     # v1, v2, v3, AnimateLCM, LongAnimateDiff, SDXL, HotShot-XL, MotionLoRA, broken
    container: str = "safetensors"   # safetensors, zip (torch.save), legacy (torch.save before 1.6), raw
    dtype: str = "float16"
    wrapped: bool = False         # under a "state_dict" key
    module_prefix: bool = False   # keys prefixed with "module." (DataParallel)
    note: str = ""


# Names as the original downloads are named where there is one. Full SD1.5 widths (320/640/1280): the
# webui's UNet is the full-size one. float16 as most downloads; mm_sd_v15_v2.ckpt is float32 like the original.
MOTION_FILES = (
    MotionFile("mm_sd_v15_v2.safetensors", "v2"),
    MotionFile("mm_sd_v15_v2.ckpt", "v2", container="zip", dtype="float32"),
    MotionFile("mm_v2_legacy_wrapped.ckpt", "v2", container="legacy", wrapped=True,
               note="torch.save(_use_new_zipfile_serialization=False), under state_dict"),
    MotionFile("mm_v2_dataparallel.pth", "v2", container="zip", wrapped=True, module_prefix=True),
    MotionFile("mm_sd_v15.ckpt", "v1", container="zip", wrapped=True),
    MotionFile("v3_sd15_mm.ckpt", "v3", container="zip"),
    MotionFile("AnimateLCM_sd15_t2v.ckpt", "AnimateLCM", container="zip"),
    MotionFile("lt_long_mm_64_frames.safetensors", "LongAnimateDiff"),
    MotionFile("mm_sdxl_v10_beta.ckpt", "SDXL", container="zip"),
    MotionFile("hsxl_temporal_layers.safetensors", "HotShot-XL"),
    MotionFile("v2_lora_ZoomIn.ckpt", "MotionLoRA", container="zip"),
    MotionFile("broken_truncated.safetensors", "broken", container="raw", note="the first 1 MiB of a v2 file"),
    MotionFile("broken_truncated.ckpt", "broken", container="raw", note="the first 1 MiB of a zip .ckpt"),
    MotionFile("broken_python_object.ckpt", "broken", container="zip", note="holds a Python object: weights_only refuses"),
    MotionFile("broken_not_a_module.safetensors", "broken", note="tensors with unrelated names"),
    MotionFile("broken_sd15_checkpoint.safetensors", "broken", note="image-model keys: a checkpoint, not a motion module"),
    MotionFile("broken_empty.pth", "broken", container="raw", note="zero bytes"),
)
MOTION = {f.name: f for f in MOTION_FILES}
SEEDS = {"v1": 11, "v2": 12, "v3": 13, "AnimateLCM": 14, "LongAnimateDiff": 15, "SDXL": 16, "HotShot-XL": 17,
         "MotionLoRA": 18}


BUILDER_VERSION = 2   # raise when the way the files are written changes (the cache key holds it)


def _motion_cache_key() -> str:
    """The files depend on the list above, the builder's version and the code that makes modules."""
    digest = hashlib.sha256(f"{BUILDER_VERSION} {MOTION_FILES!r} {SEEDS!r}".encode())
    for path in ("lib_animlong/motion/synthetic.py", "lib_animlong/motion/module.py", "lib_animlong/motion/spec.py"):
        with open(os.path.join(ROOT, path), "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()[:16]


def motion_cache_dir() -> str:
    base = os.path.abspath(os.path.expanduser(os.environ.get("ANIMLONG_E2E_CACHE") or "~/.cache/animlong-e2e"))
    return os.path.join(base, "motion-" + _motion_cache_key())


def build_motion_files() -> str:
    """The folder holding every MOTION_FILES file (built once per machine and code version; locked)."""
    folder = motion_cache_dir()
    base = os.path.dirname(folder)
    os.makedirs(base, exist_ok=True)
    with open(os.path.join(base, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.isfile(os.path.join(folder, ".complete")):
            return folder
        for old in os.listdir(base):   # files of an older code version: gigabytes, never read again
            if old.startswith("motion-"):
                shutil.rmtree(os.path.join(base, old), ignore_errors=True)
        for old in os.listdir(base):
            if old.startswith(".building-"):   # an interrupted build
                shutil.rmtree(os.path.join(base, old), ignore_errors=True)
        building = tempfile.mkdtemp(prefix=".building-", dir=base)
        try:
            states = {}
            for motion_file in MOTION_FILES:
                _write_motion_file(motion_file, os.path.join(building, motion_file.name), building, states)
            with open(os.path.join(building, ".complete"), "w") as f:
                json.dump([vars(m) for m in MOTION_FILES], f, indent=1)
            os.rename(building, folder)
        finally:
            shutil.rmtree(building, ignore_errors=True)
    return folder


def _write_motion_file(motion_file: MotionFile, path: str, folder: str, states: Dict) -> None:
    import torch
    from lib_animlong.motion import synthetic

    dtype = getattr(torch, motion_file.dtype)
    kind = motion_file.kind
    if kind == "broken":
        _write_broken(motion_file, path, folder)
        return
    if kind not in states:   # the files of one kind hold the same weights (making them is the slow part)
        states.clear()
        states[kind] = _random_state(kind)
    state = {k: v.to(dtype) for k, v in states[kind].items()}
    state = synthetic.wrapped(state, state_dict=motion_file.wrapped, module_prefix=motion_file.module_prefix)
    if motion_file.container == "safetensors":
        synthetic.save(state, path)
    elif motion_file.container == "zip":
        torch.save(state, path)
    elif motion_file.container == "legacy":
        torch.save(state, path, _use_new_zipfile_serialization=False)
    else:
        raise ValueError(motion_file)


def _random_state(kind: str):
    """float32 random weights of one kind at full width, with the key names and shapes of the module the
    engine builds for that kind (formats.expected_shapes, on the meta device: free). Values as
    synthetic.randomize_ makes them (N(0, 0.1), 1-D weights around 1; the positional table the sinusoid),
    cut from one random pool instead of building and initialising a 450M-parameter module per kind."""
    import torch
    from lib_animlong.motion import synthetic
    from lib_animlong.motion.formats import expected_shapes
    from lib_animlong.motion.module import sinusoid_table

    if kind == "MotionLoRA":
        return synthetic.random_motion_lora(synthetic.sd15_spec("v2"), 4, SEEDS[kind])
    spec = {"SDXL": synthetic.sdxl_spec, "HotShot-XL": synthetic.hotshot_spec}.get(kind, None)
    spec = spec() if spec else synthetic.sd15_spec(kind)
    generator = torch.Generator().manual_seed(SEEDS[kind])
    pool = torch.randn(1 << 24, generator=generator) * 0.1
    state = {}
    for index, (key, shape) in enumerate(expected_shapes(spec).items()):
        count = math.prod(shape)
        if key.endswith("pos_encoder.pe"):
            state[key] = sinusoid_table(shape[1], shape[2]).reshape(shape)
            continue
        if count > pool.numel():
            values = torch.randn(shape, generator=generator) * 0.1
        else:
            start = (index * 1_000_003) % (pool.numel() - count + 1)
            values = pool[start:start + count].reshape(shape).clone()
        state[key] = values + 1.0 if key.endswith("weight") and len(shape) == 1 else values
    if kind == "HotShot-XL":   # HotShot-XL's own names (as synthetic.hotshot_state_dict writes them)
        state = {k.replace(".motion_modules.", ".temporal_attentions.").replace(".temporal_transformer.", ".")
                 .replace("pos_encoder.pe", "pos_encoder.positional_encoding"): v for k, v in state.items()}
    return state


def _write_broken(motion_file: MotionFile, path: str, folder: str) -> None:
    import argparse

    import torch
    from lib_animlong.motion import synthetic

    name = motion_file.name
    if name == "broken_truncated.safetensors":
        _copy_head(os.path.join(folder, "mm_sd_v15_v2.safetensors"), path, 1 << 20)
    elif name == "broken_truncated.ckpt":
        _copy_head(os.path.join(folder, "mm_sd_v15_v2.ckpt"), path, 1 << 20)
    elif name == "broken_python_object.ckpt":
        state = synthetic.random_state_dict(synthetic.sd15_spec("v2", width=32), 0)
        torch.save({"state_dict": state, "args": argparse.Namespace(lr=1e-4)}, path)
    elif name == "broken_not_a_module.safetensors":
        synthetic.save({"encoder.layer.0.weight": torch.randn(8, 8), "encoder.layer.0.bias": torch.randn(8)}, path)
    elif name == "broken_sd15_checkpoint.safetensors":
        synthetic.save({"model.diffusion_model.input_blocks.0.0.weight": torch.randn(320, 4, 3, 3),
                        "first_stage_model.decoder.conv_in.weight": torch.randn(512, 4, 3, 3)}, path)
    elif name == "broken_empty.pth":
        open(path, "wb").close()
    else:
        raise ValueError(name)


def _copy_head(source: str, destination: str, size: int) -> None:
    with open(source, "rb") as f:
        head = f.read(size)
    with open(destination, "wb") as f:
        f.write(head)


def link_motion_files(source: str, motion_modules: str, names: Optional[Sequence[str]] = None) -> List[str]:
    """Put the files into motion_modules/ (hard links: the same bytes as a copy, no second copy on disk)."""
    os.makedirs(motion_modules, exist_ok=True)
    names = list(names or [m.name for m in MOTION_FILES])
    for name in names:
        destination = os.path.join(motion_modules, name)
        with contextlib.suppress(FileNotFoundError):
            os.remove(destination)
        try:
            os.link(os.path.join(source, name), destination)
        except OSError:
            shutil.copy2(os.path.join(source, name), destination)
    return names


# ---------------------------------------------------------------------------------------------- the server

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_MIRRORS: Dict[str, str] = {}


def servable_webui_root() -> str:
    """The webui root a server with its page runs from. gradio 3.41 refuses every `file=` path with a
    dot-folder in it (routes.file: is_dotfile), so a webui under ~/.cache serves none of its own javascript
    (script.js: 403) and its page cannot generate or paste parameters. Such a root is mirrored once per test
    process by hard links (`cp -al`: same files, no space, well under a second) under the temp folder, and
    removed at exit; the API-only servers run from the original."""
    root = webui_root()
    if not any(part.startswith(".") for part in root.split(os.sep)):
        return root
    if root not in _MIRRORS:
        base = tempfile.mkdtemp(prefix="animlong-webui-root-")
        mirror = os.path.join(base, "stable-diffusion-webui")
        if any(part.startswith(".") for part in mirror.split(os.sep)):
            raise HarnessError(f"no folder without a dot in its path for the webui's page: {mirror}")
        subprocess.run(["cp", "-al", root, mirror], check=True)
        atexit.register(shutil.rmtree, base, True)
        _MIRRORS[root] = mirror
    return _MIRRORS[root]


@dataclass
class WebuiServer:
    """One webui process: start.sh's command line and environment plus --data-dir, on its own port."""
    data_dir: str
    log_path: str
    ui: bool = False
    extra_args: Sequence[str] = ()
    port: int = 0
    process: Optional[subprocess.Popen] = None
    started_s: float = 0.0
    _log: object = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> List[str]:
        args = [webui_python(), "-u", "launch.py", "--skip-prepare-environment", "--skip-install",
                "--skip-torch-cuda-test", "--skip-version-check", "--skip-python-version-check",
                "--no-download-sd-model", "--use-cpu", "all", "--precision", "full", "--no-half", "--no-half-vae",
                "--api"]
        args += [] if self.ui else ["--nowebui"]
        args += ["--server-name", "127.0.0.1", "--port", str(self.port), "--no-hashing", "--ckpt", checkpoint(),
                 "--data-dir", self.data_dir]
        return args + list(self.extra_args)

    def start(self, timeout: Optional[float] = None) -> "WebuiServer":
        timeout = float(timeout or os.environ.get("WEBUI_WAIT_TIMEOUT") or 300)
        self.port = free_port()
        self._log = open(self.log_path, "w")
        t0 = time.monotonic()
        root = servable_webui_root() if self.ui else webui_root()
        self.process = subprocess.Popen(self.command(), cwd=root, env=_server_env(), stdout=self._log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        _RUNNING.add(self)
        try:
            self._wait(t0, timeout)
        except BaseException:
            self.stop()
            raise
        self.started_s = time.monotonic() - t0
        return self

    def _wait(self, t0: float, timeout: float) -> None:
        import httpx
        loaded = False
        while True:
            if self.process.poll() is not None:
                raise HarnessError(f"the webui exited during start-up (exit {self.process.returncode}); last lines "
                                   f"of {self.log_path}:\n{_tail(self.log_path, 40)}")
            if not loaded:
                with open(self.log_path, errors="replace") as f:
                    loaded = "Model loaded" in f.read()
            if loaded:
                try:
                    if httpx.get(self.url + "/sdapi/v1/sd-models", timeout=5).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
            if time.monotonic() - t0 > timeout:
                raise HarnessError(f"no \"Model loaded\" and answering API after {timeout:.0f} s; last lines of "
                                   f"{self.log_path}:\n{_tail(self.log_path, 40)}")
            time.sleep(1)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM to the process group (uvicorn stops in about a second), SIGKILL after 20 s (stop.sh's way)."""
        process, self.process = self.process, None
        _RUNNING.discard(self)
        if process is not None:
            for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, sig)
                try:
                    process.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
            with contextlib.suppress(ProcessLookupError):   # anything left in the group
                os.killpg(process.pid, signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_text(self) -> str:
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def __hash__(self):
        return id(self)


_RUNNING = set()


@atexit.register
def _stop_all():   # a crash of the test process must not leave a 5 GB server behind
    for server in list(_RUNNING):
        server.stop()


def _tail(path: str, lines: int) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return f"({path} is unreadable)"


# ---------------------------------------------------------------------------------------------- the client

# Checked in plain generations (no extension) with this checkpoint: random weights give NaNs on some prompts.
PROMPT = "a red ball"
NEGATIVE = "blurry"
PLAIN = dict(prompt=PROMPT, negative_prompt=NEGATIVE, seed=1234, steps=1, sampler_name="Euler", cfg_scale=7,
             width=64, height=64, batch_size=1, n_iter=1)


@dataclass
class Response:
    status: int
    json: Dict

    @property
    def error(self) -> str:
        """The webui's error text for a failed request ("errors"/"detail")."""
        return str(self.json.get("errors") or self.json.get("detail") or self.json)

    @property
    def images(self) -> List[bytes]:
        return [base64.b64decode(image.split(",", 1)[-1]) for image in self.json.get("images") or []]

    @property
    def info(self) -> Dict:
        return json.loads(self.json["info"]) if isinstance(self.json.get("info"), str) else {}


class Client:
    def __init__(self, url: str, timeout: float = 1800):
        import httpx
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=timeout)

    def close(self):
        self.http.close()

    def get(self, path: str):
        response = self.http.get(path)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: Dict) -> Response:
        response = self.http.post(path, json=body)
        try:
            payload = response.json()
        except ValueError:
            payload = {"detail": response.text}
        return Response(response.status_code, payload)

    def txt2img(self, animlong=None, **fields) -> Response:
        return self.post("/sdapi/v1/txt2img", request_body(animlong, **fields))

    def img2img(self, init_images, animlong=None, **fields) -> Response:
        body = request_body(animlong, **fields)
        body.setdefault("denoising_strength", 0.75)
        body["init_images"] = [b64(image) for image in init_images]
        return self.post("/sdapi/v1/img2img", body)

    def plain(self) -> bytes:
        """One plain 64x64 1-step generation (no extension): the PNG bytes, to compare before and after."""
        response = self.txt2img()
        assert response.status == 200, f"a plain generation failed: {response.error}"
        return response.images[0]


def request_body(animlong=None, **fields) -> Dict:
    body = dict(PLAIN, **fields)
    if animlong is not None:
        body["alwayson_scripts"] = {"AnimLong": {"args": [animlong]}}
    return body


def b64(image) -> str:
    """A PIL image or encoded bytes as base64 text."""
    if isinstance(image, bytes):
        return base64.b64encode(image).decode()
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


# ---------------------------------------------------------------------------------------------- decoding

@dataclass(frozen=True)
class Decoded:
    format: str            # "GIF", "MP4", "WEBP", "PNG"
    frames: int
    size: tuple            # (width, height)
    comment: str = ""      # the generation parameters the file carries, where readable


def decode(data: bytes) -> Decoded:
    """What a returned file is: the container by its magic bytes, then its frames (Pillow; MP4 via imageio)."""
    from PIL import Image
    if data[4:8] == b"ftyp":
        import imageio.v3 as iio
        frames = iio.imread(data, index=None, extension=".mp4")   # imageio-ffmpeg's bundled ffmpeg
        return Decoded("MP4", int(frames.shape[0]), (int(frames.shape[2]), int(frames.shape[1])))
    image = Image.open(io.BytesIO(data))
    kind = image.format
    count = getattr(image, "n_frames", 1)
    comment = ""
    if kind == "GIF":
        comment = (image.info.get("comment") or b"").decode("utf8", "replace")
    elif kind == "PNG":
        comment = image.info.get("parameters", "")
    return Decoded(kind, int(count), image.size, comment)


def frames_of(data: bytes):
    """Every frame of a GIF/WebP/PNG as an RGB uint8 array (n, h, w, 3)."""
    import numpy as np
    from PIL import Image, ImageSequence
    image = Image.open(io.BytesIO(data))
    return np.stack([np.asarray(frame.convert("RGB")) for frame in ImageSequence.Iterator(image)])


def png_image(width=64, height=64, colour=(200, 40, 40)):
    from PIL import Image, ImageDraw
    image = Image.new("RGB", (width, height), colour)
    ImageDraw.Draw(image).ellipse((width // 4, height // 4, 3 * width // 4, 3 * height // 4), fill=(40, 40, 200))
    return image


# ---------------------------------------------------------------------------------------------- scenarios

V2 = "mm_sd_v15_v2.safetensors"


def animation(**options) -> Dict:
    """The AnimLong dict of a small animation (8 frames, context 4, GIF) with `options` on top."""
    return dict(dict(enable=True, motion_module=V2, frames=8, context_length=4, formats=["GIF"]), **options)


def assert_video(data: bytes, fmt: str, frames: int, size=(64, 64)) -> Decoded:
    decoded = decode(data)
    assert (decoded.format, decoded.frames, decoded.size) == (fmt, frames, tuple(size)), decoded
    return decoded


def output_files(folder: str) -> List[str]:
    """Every file under folder (relative paths), e.g. to show a refused request wrote nothing."""
    found = []
    for base, _, names in os.walk(folder):
        found += [os.path.relpath(os.path.join(base, name), folder) for name in names]
    return sorted(found)
