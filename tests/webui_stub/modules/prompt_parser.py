"""Prompt editing `[from:to:when]` (one level), AND with weights, and the conditioning containers the
CFG denoiser reconstructs per step, as in the webui (same class and function names)."""
import re
from collections import namedtuple

import torch

ScheduledPromptConditioning = namedtuple("ScheduledPromptConditioning", ["end_at_step", "cond"])
_EDIT = re.compile(r"\[([^\[\]:]*):([^\[\]:]*):([0-9.]+)\]")
_AND = re.compile(r"\bAND\b(?![\W_]*$)")
_WEIGHT = re.compile(r"^(.*?)(?:\s*:\s*([-+]?[0-9.]+))?\s*$", re.S)


class ComposableScheduledPromptConditioning:
    def __init__(self, schedules, weight=1.0):
        self.schedules = schedules
        self.weight = weight


class MulticondLearnedConditioning:
    def __init__(self, shape, batch):
        self.shape = shape
        self.batch = batch


def get_learned_prompt_schedules(prompts, steps):
    result = []
    for prompt in prompts:
        edits = list(_EDIT.finditer(prompt))
        ends = sorted({_when(float(m.group(3)), steps) for m in edits} | {steps})
        schedule = []
        for end in ends:
            text = _EDIT.sub(lambda m: m.group(1) if end <= _when(float(m.group(3)), steps) else m.group(2), prompt)
            schedule.append([end, text])
        result.append(schedule)
    return result


def _when(value, steps):
    return int(value * steps) if value < 1 else int(value)


def get_learned_conditioning(model, prompts, steps):
    res, cache = [], {}
    for prompt, schedule in zip(prompts, get_learned_prompt_schedules(prompts, steps)):
        if prompt not in cache:  # identical prompts share one list, as in the webui
            conds = model.get_learned_conditioning([text for _, text in schedule])
            cache[prompt] = [ScheduledPromptConditioning(end, conds[i]) for i, (end, _) in enumerate(schedule)]
        res.append(cache[prompt])
    return res


def get_multicond_prompt_list(prompts):
    res_indexes, flat, index_of = [], [], {}
    for prompt in prompts:
        indexes = []
        for part in _AND.split(prompt):
            match = _WEIGHT.match(part)
            text, weight = match.group(1).strip(), float(match.group(2)) if match.group(2) else 1.0
            if text not in index_of:
                index_of[text] = len(flat)
                flat.append(text)
            indexes.append((index_of[text], weight))
        res_indexes.append(indexes)
    return res_indexes, flat, index_of


def get_multicond_learned_conditioning(model, prompts, steps):
    res_indexes, flat, _ = get_multicond_prompt_list(prompts)
    learned = get_learned_conditioning(model, flat, steps)
    batch = [[ComposableScheduledPromptConditioning(learned[i], w) for i, w in idx] for idx in res_indexes]
    return MulticondLearnedConditioning(shape=(len(prompts),), batch=batch)


def _at_step(schedules, step):
    for entry in schedules:
        if step <= entry.end_at_step:
            return entry.cond
    return schedules[-1].cond


def _pad_rows(tensors):
    rows = max(t.shape[0] for t in tensors)
    return [t if t.shape[0] == rows else torch.cat([t, t[-1:].expand(rows - t.shape[0], -1)]) for t in tensors]


def reconstruct_cond_batch(c, current_step):
    return torch.stack(_pad_rows([_at_step(schedules, current_step) for schedules in c]))


def reconstruct_multicond_batch(c, current_step):
    tensors, conds_list = [], []
    for composable_prompts in c.batch:
        conds_for_batch = []
        for composable in composable_prompts:
            conds_for_batch.append((len(tensors), composable.weight))
            tensors.append(_at_step(composable.schedules, current_step))
        conds_list.append(conds_for_batch)
    return conds_list, torch.stack(_pad_rows(tensors))
