// AnimLong page code (the webui injects every javascript/*.js of an extension). No build step, no framework.
// It shows what the server computes and never re-implements it:
//  - the summary and the plan picture come from POST animlong/v1/summary (lib_animlong/webui/routes.py);
//  - a warning next to Generate while that route says the settings will be refused;
//  - "Copy API payload": the /sdapi/v1/txt2img|img2img JSON of the current settings;
//  - a video player under the gallery for the files listed in the generation info ("AnimLong videos").
(function() {
    "use strict";

    var ROUTE = "animlong/v1/summary";
    var TABS = ["txt2img", "img2img"];
    var DEBOUNCE_MS = 300;
    var tabs = {};   // per tab: {config, signature, timer, answer, videosSeen}

    function app() {
        return typeof gradioApp === "function" ? gradioApp() : document;
    }

    function byId(id) {
        return app().getElementById ? app().getElementById(id) : app().querySelector("#" + id);
    }

    function element(tag, attributes, text) {
        var made = document.createElement(tag);
        Object.keys(attributes || {}).forEach(function(key) {
            made.setAttribute(key, attributes[key]);
        });
        if (text !== undefined) made.textContent = text;
        return made;
    }

    // ---- reading gradio controls from the page (each control by its elem_id)

    function readControl(id) {
        var root = byId(id);
        if (!root) return undefined;
        var area = root.querySelector("textarea");
        if (area) return area.value;
        var boxes = root.querySelectorAll("input[type=checkbox]");
        if (boxes.length > 1) {
            return Array.prototype.filter.call(boxes, function(box) {
                return box.checked;
            }).map(function(box) {
                return (box.closest("label") || box.parentElement).textContent.trim();
            });
        }
        if (boxes.length === 1) return boxes[0].checked;
        var number = root.querySelector("input[type=number]");
        if (number) return number.value === "" ? undefined : Number(number.value);
        var input = root.querySelector("input");
        return input ? input.value : undefined;
    }

    function config(tab) {
        var panel = byId("animlong_summary_" + tab);
        if (!panel) return null;
        if (!tabs[tab] || tabs[tab].panel !== panel) {
            tabs[tab] = {panel: panel, config: JSON.parse(panel.getAttribute("data-animlong")), signature: "",
                timer: null, answer: null, videosSeen: null, step: null};
            build(tab);
        }
        return tabs[tab];
    }

    function scriptArgs(tab) {
        var state = tabs[tab];
        var args = {};
        Object.keys(state.config.controls).forEach(function(name) {
            var value = readControl(state.config.controls[name]);
            if (value !== undefined && value !== "") args[name] = value;
        });
        return args;
    }

    function steps(tab) {
        var value = readControl(tab + "_steps");
        return typeof value === "number" && value > 0 ? value : 20;
    }

    // ---- the summary panel

    function build(tab) {
        var state = tabs[tab];
        var panel = state.panel;
        panel.innerHTML = "";
        state.text = element("pre", {"class": "animlong-summary-text", id: "animlong_summary_text_" + tab,
            title: "What these settings will do, computed by the extension"});
        var stepRow = element("label", {"class": "animlong-step"});
        state.stepInput = element("input", {type: "range", min: "1", max: "20", value: "20",
            id: "animlong_step_" + tab, "aria-label": "Step whose windows are drawn",
            title: "Step whose windows are drawn (1 = the noisiest)"});
        state.stepLabel = element("span", {}, "");
        stepRow.appendChild(element("span", {}, "Windows of step "));
        stepRow.appendChild(state.stepInput);
        stepRow.appendChild(state.stepLabel);
        state.picture = element("img", {id: "animlong_plan_" + tab, "class": "animlong-plan",
            alt: "Plan of the chosen step: frames across, windows down; blue own frames, grey frames computed " +
                 "for references only, orange references"});
        state.payload = element("textarea", {id: "animlong_payload_" + tab, "class": "animlong-payload",
            readonly: "readonly", rows: "8", "aria-label": "API payload of the current settings", hidden: "hidden"});
        panel.appendChild(state.text);
        panel.appendChild(stepRow);
        panel.appendChild(state.picture);
        panel.appendChild(state.payload);
        state.stepInput.addEventListener("input", function() {
            state.step = Number(state.stepInput.value);
            schedule(tab);
        });
        var accordion = panel.closest("[id$='_animlong_accordion']");
        if (accordion) {
            accordion.addEventListener("input", function() {
                schedule(tab);
            });
            accordion.addEventListener("change", function() {
                schedule(tab);
            });
        }
        var copy = byId("script_" + tab + "_animlong_copy_payload");
        if (copy) {
            copy.title = "Copy the /sdapi/v1/" + tab + " JSON of the current settings (shown below it too)";
            copy.setAttribute("aria-label", copy.title);
            copy.addEventListener("click", function() {
                copyPayload(tab);
            });
        }
        var refresh = byId("script_" + tab + "_animlong_refresh");
        if (refresh) {
            refresh.title = "Read the motion-module and MotionLoRA folders again";
            refresh.setAttribute("aria-label", refresh.title);
        }
    }

    function schedule(tab) {
        var state = tabs[tab];
        if (!state) return;
        clearTimeout(state.timer);
        state.timer = setTimeout(function() {
            refresh(tab, false);
        }, DEBOUNCE_MS);
    }

    function refresh(tab, force) {
        var state = tabs[tab];
        var total = steps(tab);
        var body = {args: scriptArgs(tab), steps: total, step: state.step ? Math.min(state.step, total) : null,
            is_img2img: tab === "img2img"};
        var signature = JSON.stringify(body);
        if (!force && signature === state.signature) return;
        state.signature = signature;
        fetch(ROUTE, {method: "POST", headers: {"Content-Type": "application/json"}, body: signature})
            .then(function(response) {
                return response.json();
            })
            .then(function(answer) {
                if (state.signature === signature) show(tab, answer, total);
            })
            .catch(function(error) {
                state.text.textContent = "Summary unavailable: " + error;
            });
    }

    function show(tab, answer, total) {
        var state = tabs[tab];
        state.answer = answer;
        var text = answer.text || "";
        if (answer.detail) text = String(answer.detail);
        if (answer.refused && text.indexOf(answer.refused) < 0) text += "REFUSED: " + answer.refused + "\n";
        state.text.textContent = text;
        state.panel.classList.toggle("animlong-refused", !!answer.refused);
        state.stepInput.max = String(total);
        var summary = answer.summary;
        if (summary && summary.step !== undefined) {
            state.stepInput.value = String(summary.step + 1);
            state.stepLabel.textContent = " " + (summary.step + 1) + "/" + total;
        }
        if (answer.picture) {
            state.picture.src = answer.picture;
            state.picture.hidden = false;
        } else {
            state.picture.removeAttribute("src");
            state.picture.hidden = true;
        }
        warn(tab, answer);
    }

    // ---- the warning next to Generate

    function warn(tab, answer) {
        var id = "animlong_warning_" + tab;
        var box = byId(id);
        var generate = byId(tab + "_generate");
        if (!box && generate) {
            box = element("div", {id: id, "class": "animlong-warning", role: "alert"});
            var holder = generate.closest("#" + tab + "_generate_box") || generate.parentElement;
            holder.parentElement.insertBefore(box, holder.nextSibling);
        }
        if (!box) return;
        var enabled = readControl("script_" + tab + "_animlong_enable") === true;
        var message = enabled && answer && answer.refused ? answer.refused : "";
        box.textContent = message ? "Generate will be refused: " + message : "";
        box.hidden = !message;
    }

    // ---- "Copy API payload"

    function webuiFields(tab) {
        var fields = {
            prompt: readControl(tab + "_prompt"),
            negative_prompt: readControl(tab + "_neg_prompt"),
            steps: readControl(tab + "_steps"),
            sampler_name: readControl(tab + "_sampling"),
            scheduler: readControl(tab + "_scheduler"),
            cfg_scale: readControl(tab + "_cfg_scale"),
            width: readControl(tab + "_width"),
            height: readControl(tab + "_height"),
            seed: readControl(tab + "_seed"),
            n_iter: readControl(tab + "_batch_count")
        };
        if (tab === "img2img") {
            fields.denoising_strength = readControl("img2img_denoising_strength");
            fields.init_images = ["<base64 PNG of the first frame>"];
        }
        Object.keys(fields).forEach(function(key) {
            if (fields[key] === undefined || fields[key] === "") delete fields[key];
        });
        return fields;
    }

    function payload(tab) {
        var state = tabs[tab];
        var answer = state.answer || {};
        var script = answer.script_args;
        if (!script) return null;
        var body = webuiFields(tab);
        body.alwayson_scripts = {AnimLong: {args: [script]}};
        return JSON.stringify(body, null, 2);
    }

    function copyPayload(tab) {
        var state = config(tab);
        if (!state) return;
        refresh(tab, false);
        var text = payload(tab);
        if (!text) {
            text = state.answer && state.answer.refused ? "Settings refused: " + state.answer.refused :
                "The summary is not ready yet; try again in a moment.";
        }
        state.payload.value = text;
        state.payload.hidden = false;
        state.payload.select();
        if (navigator.clipboard && window.isSecureContext) {
            navigator.clipboard.writeText(text).catch(function() {});
        } else {
            try {
                document.execCommand("copy");
            } catch (e) {
                // the text stays selected in the box for Ctrl+C
            }
        }
    }

    // ---- the video player under the gallery

    function videosOf(tab) {
        var holder = byId("generation_info_" + tab);
        var area = holder && holder.querySelector("textarea");
        if (!area || !area.value) return null;
        try {
            var info = JSON.parse(area.value);
            return (info.extra_generation_params || {})["AnimLong videos"] || [];
        } catch (e) {
            return [];
        }
    }

    function player(tab) {
        var id = "animlong_player_" + tab;
        var box = byId(id);
        if (box) return box;
        var gallery = byId(tab + "_gallery_container") || byId(tab + "_gallery");
        if (!gallery) return null;
        box = element("div", {id: id, "class": "animlong-player", "aria-label": "Long animation result"});
        gallery.parentElement.insertBefore(box, gallery.nextSibling);
        return box;
    }

    function showVideos(tab) {
        var state = tabs[tab];
        var holder = byId("generation_info_" + tab);
        var area = holder && holder.querySelector("textarea");
        var raw = area ? area.value : "";
        if (!state || raw === state.videosSeen) return;
        state.videosSeen = raw;
        var videos = videosOf(tab) || [];
        var box = player(tab);
        if (!box) return;
        box.innerHTML = "";
        box.hidden = videos.length === 0;
        videos.forEach(function(files, index) {
            var figure = element("figure", {"class": "animlong-video"});
            var main = files.MP4 || files.WEBP || files.GIF;
            if (!main) return;
            var media;
            if (files.MP4) {
                media = element("video", {src: files.MP4.url, controls: "", loop: "", autoplay: "", muted: "",
                    playsinline: "", id: "animlong_video_" + tab + "_" + index, title: files.MP4.name});
                media.muted = true;
            } else {
                media = element("img", {src: main.url, id: "animlong_video_" + tab + "_" + index, alt: main.name,
                    title: main.name, tabindex: "0"});
            }
            figure.appendChild(media);
            var caption = element("figcaption", {});
            Object.keys(files).forEach(function(format) {
                var link = element("a", {href: files[format].url, download: files[format].name,
                    "class": "animlong-download", title: "Download " + files[format].name}, files[format].name);
                caption.appendChild(link);
                caption.appendChild(document.createTextNode(" "));
            });
            figure.appendChild(caption);
            box.appendChild(figure);
        });
    }

    function tick() {
        TABS.forEach(function(tab) {
            if (!config(tab)) return;
            refresh(tab, false);
            showVideos(tab);
            if (tabs[tab].answer) warn(tab, tabs[tab].answer);
        });
    }

    if (typeof onUiLoaded === "function") onUiLoaded(tick);
    if (typeof onAfterUiUpdate === "function") onAfterUiUpdate(tick);

    window.animlong = {refresh: function(tab) {
        if (config(tab)) refresh(tab, true);
    }, payload: payload, readControl: readControl};
})();
