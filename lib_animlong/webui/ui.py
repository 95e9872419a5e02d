"""The accordion, built from AnimationOptions' metadata (labels, defaults, ranges, help, choices).

Returns the controls in `request.control_names(is_img2img)` order plus the infotext fields that restore
them from a pasted PNG's parameters. Cheap and deterministic: the webui calls it three times per tab in
API mode.
"""
from typing import Callable, Dict, List, Sequence, Tuple

from ..options import OUTPUT_FORMATS, option_fields
from .request import INFOTEXT_KEY, control_names, parse_infotext_value

ACCORDION_TITLE = "Long animation (AnimateDiff)"
NUMBER_INSTEAD_OF_SLIDER = 1000   # ranges with more steps than this get a number box


def build(elem_id: Callable[[str], str], is_img2img: bool, module_choices: Sequence[str],
          default_formats: Sequence[str], list_modules: Callable[[], List[str]]):
    """(controls in argument order, infotext_fields)."""
    import gradio as gr

    made: Dict[str, object] = {}
    fields = {f.name: f for f in option_fields()}
    wanted = set(control_names(is_img2img))
    with gr.Accordion(ACCORDION_TITLE, open=False, elem_id=elem_id("accordion")):
        made["enable"] = gr.Checkbox(label="Enable long animation", value=False, elem_id=elem_id("enable"))
        with gr.Row():
            made["motion_module"] = gr.Dropdown(
                label="Motion module", choices=list(module_choices),
                value=module_choices[0] if module_choices else None, elem_id=elem_id("motion_module"),
                info="Files in the extension's motion_modules/ folder and the folder set in Settings > "
                     "Long animation.")
            refresh = gr.Button(value="\u21bb", elem_id=elem_id("refresh"), elem_classes=["tool"],
                                scale=0, min_width=40)
        made["formats"] = gr.CheckboxGroup(label="Output formats", choices=list(OUTPUT_FORMATS),
                                           value=list(default_formats), elem_id=elem_id("formats"))
        for name, f in fields.items():
            if name in wanted and not f.metadata["advanced"]:
                made[name] = _control(gr, f, elem_id)
        if is_img2img:
            made["last_frame"] = gr.Image(label="Last frame (optional)", type="pil", source="upload",
                                          elem_id=elem_id("last_frame"))
        with gr.Accordion("Advanced", open=False, elem_id=elem_id("advanced")):
            for name, f in fields.items():
                if name in wanted and f.metadata["advanced"]:
                    made[name] = _control(gr, f, elem_id)
        made["return_frames"] = gr.Checkbox(label="Also return the frames (API)", value=False, visible=False,
                                            elem_id=elem_id("return_frames"))
    refresh.click(fn=lambda: gr.update(choices=list_modules()), inputs=[], outputs=[made["motion_module"]])
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
            return parse_infotext_value(params[INFOTEXT_KEY]).get(name)
        return read
    return [(control, reader(name)) for name, control in made.items() if name not in ("last_frame", "return_frames")]
