"""The accordion, built from AnimationOptions' metadata (labels, defaults, ranges, help, choices).

Returns the controls in `request.control_names(is_img2img)` order plus the infotext fields that restore
them from a pasted PNG's parameters. Cheap and deterministic: the webui calls it three times per tab in
API mode.
"""
import html
import json
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from ..options import OUTPUT_FORMATS, option_fields
from .request import INFOTEXT_KEY, control_names, parse_infotext_value

ACCORDION_TITLE = "Long animation (AnimateDiff)"
NUMBER_INSTEAD_OF_SLIDER = 1000   # ranges with more steps than this get a number box


def build(elem_id: Callable[[str], str], is_img2img: bool, module_choices: Sequence[str],
          default_formats: Sequence[str], list_modules: Callable[[], List[str]],
          list_loras: Optional[Callable[[], List[str]]] = None):
    """(controls in argument order, infotext_fields). Every control has an elem_id and a help text; the
    summary panel (filled by javascript/animlong.js from the summary route) sits under the controls."""
    import gradio as gr
    list_loras = list_loras or (lambda: [])

    made: Dict[str, object] = {}
    fields = {f.name: f for f in option_fields()}
    wanted = set(control_names(is_img2img))
    with gr.Accordion(ACCORDION_TITLE, open=False, elem_id=elem_id("accordion")):
        made["enable"] = gr.Checkbox(label="Enable long animation", value=False, elem_id=elem_id("enable"),
                                     info="Frames become the batch; the result is saved as a video.")
        with gr.Row():
            made["motion_module"] = gr.Dropdown(
                label="Motion module", choices=list(module_choices),
                value=module_choices[0] if module_choices else None, elem_id=elem_id("motion_module"),
                info="Files in the extension's motion_modules/ folder and the folder set in Settings > "
                     "Long animation.")
            refresh = gr.Button(value="\u21bb", elem_id=elem_id("refresh"), elem_classes=["tool"],
                                scale=0, min_width=40)
        made["formats"] = gr.CheckboxGroup(label="Output formats", choices=list(OUTPUT_FORMATS),
                                           value=list(default_formats), elem_id=elem_id("formats"),
                                           info="Files written next to the outputs; the player under the "
                                                "gallery plays the MP4, WebP or GIF.")
        for name, f in fields.items():
            if name in wanted and not f.metadata["advanced"]:
                made[name] = _control(gr, f, elem_id)
        if is_img2img:
            made["last_frame"] = gr.Image(label="Last frame (optional)", type="pil", source="upload",
                                          elem_id=elem_id("last_frame"))
        with gr.Row():
            made["motion_loras"] = gr.Textbox(
                label="MotionLoRAs", value="", lines=1, elem_id=elem_id("motion_loras"),
                placeholder="v2_lora_ZoomIn.ckpt:0.8, v2_lora_PanLeft.ckpt:1",
                info="file:strength, separated by commas; files from the extension's motion_loras/ folder or "
                     "the webui's Lora folder (MotionLoRAs are made for v2 modules).")
            pick = gr.Dropdown(label="Add a MotionLoRA", choices=list_loras(), value=None,
                               elem_id=elem_id("motion_lora_pick"),
                               info="Appends the file with strength 1 to MotionLoRAs.")
        with gr.Row(elem_id=elem_id("summary_row")):
            gr.HTML(value=summary_panel(elem_id, is_img2img), elem_id=elem_id("summary_html"))
        with gr.Row():
            gr.Button(value="Copy API payload", elem_id=elem_id("copy_payload"), scale=0)   # javascript/animlong.js
        with gr.Accordion("Advanced", open=False, elem_id=elem_id("advanced")):
            for name, f in fields.items():
                if name in wanted and f.metadata["advanced"]:
                    made[name] = _control(gr, f, elem_id)
        made["return_frames"] = gr.Checkbox(label="Also return the frames (API)", value=False, visible=False,
                                            elem_id=elem_id("return_frames"),
                                            info="API only: every frame as a PNG after the video files.")
    refresh.click(fn=lambda: (gr.update(choices=list_modules()), gr.update(choices=list_loras())), inputs=[],
                  outputs=[made["motion_module"], pick])
    pick.select(fn=add_lora, inputs=[pick, made["motion_loras"]], outputs=[made["motion_loras"], pick])

    controls = [made[name] for name in control_names(is_img2img)]
    return controls, _infotext_fields(made)


def _control(gr, f, elem_id):
    meta, kind = f.metadata, f.type
    common = dict(label=meta["label"], value=f.default, info=meta["help"], elem_id=elem_id(f.name))
    if meta["choices"]:
        return gr.Dropdown(choices=list(meta["choices"]), **common)
    if kind is bool:
        return gr.Checkbox(**common)
    steps = (meta["maximum"] - meta["minimum"]) / (meta["step"] or 1)
    if steps > NUMBER_INSTEAD_OF_SLIDER:
        return gr.Number(minimum=meta["minimum"], maximum=meta["maximum"], precision=0 if kind is int else None,
                         **common)
    return gr.Slider(minimum=meta["minimum"], maximum=meta["maximum"], step=meta["step"], **common)


def _infotext_fields(made: Dict[str, object]) -> List[Tuple[object, Callable]]:
    """Each control restored from the one "AnimLong" infotext entry; enable is off when it is absent."""
    def reader(name):
        def read(params):
            if INFOTEXT_KEY not in params:
                return False if name == "enable" else None
            values = parse_infotext_value(params[INFOTEXT_KEY])
            return values.get(name, "" if name == "motion_loras" else None)
        return read
    return [(control, reader(name)) for name, control in made.items() if name not in ("last_frame", "return_frames")]


def add_lora(picked, current):
    """The MotionLoRAs text with `picked` appended at strength 1 (once); the picker is cleared."""
    import gradio as gr
    entries = [part.strip() for part in str(current or "").split(",") if part.strip()]
    if picked and not any(entry.rpartition(":")[0] == picked or entry == picked for entry in entries):
        entries.append(f"{picked}:1")
    return ", ".join(entries), gr.update(value=None)


def summary_panel(elem_id: Callable[[str], str], is_img2img: bool) -> str:
    """The HTML the page script fills: it names the tab and each control's elem_id and kind."""
    tab = "img2img" if is_img2img else "txt2img"
    controls = {name: elem_id(name) for name in control_names(is_img2img) if name not in ("last_frame",)}
    data = html.escape(json.dumps({"tab": tab, "controls": controls}), quote=True)
    return (f'<div class="animlong-summary" id="animlong_summary_{tab}" data-animlong="{data}" '
            f'aria-live="polite"><span class="animlong-summary-text">Summary: enable JavaScript to see what '
            f'these settings will do.</span></div>')
