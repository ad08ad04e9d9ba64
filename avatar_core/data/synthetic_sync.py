"""The two families that need sight and hearing together: av_match (s2) and localise (s3).

Scene: 2 (easy) or 3 (hard) squares of different colours (red, green, blue: the three colour
channels, so glows of squares flashing at once add up without one colour passing for another),
one per quadrant of the frame, each flashing a different number of times on the sampled frames;
a flash lights the whole scene in the square's colour. Beeps sound exactly while one square (the
target) flashes. av_match asks which colour makes the sound (options always red, green, blue);
localise asks where that square is (options always the four quadrants); locate (not in the default
list) shows one silent square and asks where it is, localise's last step on its own. With
`data.synthetic.glow: patterned` a flash lights the scene through its quadrant's stripes instead of
evenly, so the place can be read from the mean of a frame's tokens. Each quadrant's
background carries its own stripe pattern, so where a square is can be read from what is around
it. Blanking the audio leaves 2 or 3 candidates; blanking the video leaves only the beep count.

The reasoning trace goes one checkable step at a time: "I hear 3 beeps; red flashes 1, blue
flashes 3, as many; blue is at the top left." It counts the beeps, then states each square's
flash count in the fixed colour order up to the one that matches.

Why it is built this way (measured with SFT of the tiny thinker on one family, 400-1500 steps):
a family that needs both modalities has, by construction, no answer signal in either modality
alone (that is what its controls check), so the model must discover an interaction of the two
with no first-order gradient towards it. Every design that asked for the match in one step
stayed at its blank level: squares pulsing on disjoint frames with a tone on the target's
(0.3M and 1.45M models), one square per quadrant with distinct flash counts, one beep at one of
the flashes, colour options in random order. Stating the intermediate counts made every step
learnable on its own: av_match reached 0.63-0.71 held out after 1500 SFT steps of all four
families, against 0.31-0.44 with either modality blanked. localise did not learn its last step,
the place of the matched colour: its counting steps were as good as av_match's (beeps 1.00,
matched colour 0.75), the place was right 0.36 of the time (chance 0.33), with flat grey or
striped quadrant backgrounds, and with squares that stay lit. A linear probe reads the quadrant
from the vision tokens of the untrained model (0.98) but not after SFT (0.24): training the
encoders at the decoder's learning rate grows their outputs to about 100x the norm of the text
embeddings and the spatial information is lost; at a tenth of the learning rate the probe keeps
0.85 but generation degenerates (repeated digits). docs/embedded-default.md has the figures.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from avatar_core.data.schema import OPTION_LETTERS
from avatar_core.data.synthetic_scene import (
    PALETTE,
    QUADRANTS,
    STYLES,
    ClipSpec,
    Rendered,
    canvas,
    draw_square,
    finish_audio,
    finish_frames,
    lit_frames,
    quadrant_box,
    quadrant_centres,
    slot_seconds,
    square_box,
    tone,
)

# av_match always offers these three colours in this order, so an option letter names a colour
# itself. They are the three colour channels: when several squares flash at once their glows add
# up without one colour turning into another (red + green light would pass for yellow).
AV_COLOURS = ("red", "green", "blue")
AV_RGB = {"red": (230, 30, 30), "green": (30, 210, 30), "blue": (40, 60, 255)}
# A flash lights the whole scene in the square's colour (grey levels times the colour, before
# noise), so the number of flashes of each colour is read from every token of a frame.
SYNC_GLOW = {"easy": 100.0, "hard": 70.0}
# Each quadrant's background carries its own stripe pattern (QUADRANTS order: horizontal, vertical,
# diagonal, checkered), a landmark that tells the quadrants apart by what they look like. The
# decoder's rotary positions cannot: on a 2x2 token grid the height and width positions differ by
# 1, a rotation of at most 0.03 rad at the tiny model's frequencies; and a pattern of 4-pixel
# stripes is what a linear patch embedding separates at once (flat grey shades were not enough).
LANDMARK_CONTRAST = 40.0
# A patterned glow (`data.synthetic.glow: patterned`) keeps this share of its light off the stripes,
# so the flash still brightens every pixel and the colour counts read the same way as with plain glow.
PATTERN_FLOOR = 0.35


def landmark(quadrant: str, height: int, width: int) -> np.ndarray:
    """[h, w] grey offsets of a quadrant's background pattern (0 or LANDMARK_CONTRAST)."""
    y, x = np.mgrid[0:height, 0:width]
    pattern = {
        "top left": (y // 4) % 2,
        "top right": (x // 4) % 2,
        "bottom left": ((x + y) // 4) % 2,
        "bottom right": ((x // 4) + (y // 4)) % 2,
    }[quadrant]
    return LANDMARK_CONTRAST * pattern.astype(np.float32)


def glow_mask(spec: ClipSpec, quadrant: str) -> np.ndarray:
    """[H, W] share of a flash's glow that reaches each pixel: 1 everywhere (plain), or the stripes of
    the flashing square's quadrant spread over the whole frame (patterned: PATTERN_FLOOR off the
    stripes, 1 on them), so the frame's mean says where the flash is."""
    if not spec.patterned_glow:
        return np.ones((spec.size, spec.size), dtype=np.float32)
    stripes = landmark(quadrant, spec.size, spec.size) / LANDMARK_CONTRAST  # [H, W] 0 or 1
    return PATTERN_FLOOR + (1.0 - PATTERN_FLOOR) * stripes


def _sync_counts(n: int, target_count: int, rng: np.random.Generator) -> list[int]:
    """Flash counts of n squares, the target's first: all different, drawn from 1..n+1 (one value
    is left out, so the target's count says nothing about the others')."""
    others = [c for c in range(1, n + 2) if c != target_count]
    return [target_count, *(int(c) for c in rng.choice(others, size=n - 1, replace=False))]


def sync_scene(
    rng: np.random.Generator,
    spec: ClipSpec,
    difficulty: str,
    quadrants: list[str],
    colours: list[str],
    target: int,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """One square per quadrant, each flashing a different number of times on the sampled frames
    (flashes of different squares may coincide); beeps sound exactly while the target flashes, so
    the target is the square in time with the beeps and the one that flashes as often as they sound."""
    style = STYLES[difficulty]
    n = len(quadrants)
    target_count = int(rng.integers(1, n + 2))
    counts = _sync_counts(n, target_count, rng)
    counts = counts[1 : target + 1] + [counts[0]] + counts[target + 1 :]  # the target's count at its index
    flash_slots = [sorted(rng.choice(spec.slots, size=c, replace=False).tolist()) for c in counts]
    centres = quadrant_centres(spec)
    jitter = 2 * spec.scale
    frames = canvas(spec, style)
    for quadrant in QUADRANTS:
        y0, x0, y1, x1 = quadrant_box(spec, quadrant)
        frames[:, y0:y1, x0:x1] += landmark(quadrant, y1 - y0, x1 - x0)[None, :, :, None]
    boxes = []
    for quadrant, colour, slots in zip(quadrants, colours, flash_slots, strict=True):
        rgb = AV_RGB.get(colour, PALETTE[colour])
        glow = SYNC_GLOW[difficulty] * np.asarray(rgb, dtype=np.float32) / 255.0  # [3]
        light = glow_mask(spec, quadrant)  # [H, W]
        for t in sorted(lit_frames(spec, slots)):
            frames[t] += light[:, :, None] * glow  # [H, W, 3]: the scene lights up in the square's colour
        cy, cx = centres[quadrant]
        box = square_box(
            cy + rng.uniform(-jitter, jitter), cx + rng.uniform(-jitter, jitter), style.side, spec
        )
        draw_square(frames, box, rgb, style, lit_frames(spec, slots), spec)
        boxes.append(box)
    audio = np.zeros(spec.n_samples, dtype=np.float32)
    freq = rng.uniform(500, 1000)
    for slot in flash_slots[target]:
        tone(audio, *slot_seconds(spec, slot), freq, style.tone_amp, spec.sample_rate)
    layout = {
        "boxes": boxes,
        "quadrants": quadrants,
        "counts": counts,
        "flash_slots": flash_slots,
        "target": target,
        "beeps": counts[target],
    }
    return finish_frames(frames, style, rng), finish_audio(audio, style, rng), layout


def sync_steps(beeps: int, colours: list[str], counts: list[int]) -> str:
    """The counting part of a sync trace: the beeps, then the squares in the fixed colour order with
    their flash counts, up to the one that flashes as many times as the beeps. Every step is one
    count, or one comparison of two numbers already in the text; the match itself is never guessed.
    E.g. "I hear 3 beeps; red flashes 1, blue flashes 3, as many"."""
    seen = []
    for colour in sorted(colours, key=AV_COLOURS.index):
        count = counts[colours.index(colour)]
        seen.append(f"{colour} flashes {count}" + (", as many" if count == beeps else ""))
        if count == beeps:
            break
    return f"I hear {beeps} beeps; {', '.join(seen)}"


def _n_objects(difficulty: str) -> int:
    return 2 if difficulty == "easy" else 3


def render_av_match(rng: np.random.Generator, spec: ClipSpec, difficulty: str, key: int) -> Rendered:
    n = _n_objects(difficulty)
    others = [AV_COLOURS[i] for i in rng.permutation(len(AV_COLOURS)) if i != key][: n - 1]
    target = int(rng.integers(n))
    colours = others[:target] + [AV_COLOURS[key]] + others[target:]
    quadrants = [QUADRANTS[i] for i in rng.permutation(len(QUADRANTS))[:n]]
    frames, audio, layout = sync_scene(rng, spec, difficulty, quadrants, colours, target)
    beeps, letter = layout["beeps"], OPTION_LETTERS[key]
    return Rendered(
        frames,
        audio,
        letter,
        list(AV_COLOURS),
        f"<think>{sync_steps(beeps, colours, layout['counts'])}.</think><answer>{letter}</answer>",
        {"beeps": beeps, "colour": AV_COLOURS[key]},
        layout,
    )


def render_localise(rng: np.random.Generator, spec: ClipSpec, difficulty: str, key: int) -> Rendered:
    n = _n_objects(difficulty)
    others = [QUADRANTS[i] for i in rng.permutation(len(QUADRANTS)) if i != key][: n - 1]
    target = int(rng.integers(n))
    quadrants = others[:target] + [QUADRANTS[key]] + others[target:]
    colours = [AV_COLOURS[i] for i in rng.permutation(len(AV_COLOURS))[:n]]
    frames, audio, layout = sync_scene(rng, spec, difficulty, quadrants, colours, target)
    beeps, letter = layout["beeps"], OPTION_LETTERS[key]
    steps = sync_steps(beeps, colours, layout["counts"])
    return Rendered(
        frames,
        audio,
        letter,
        list(QUADRANTS),
        f"<think>{steps}; {colours[target]} is at the {QUADRANTS[key]}.</think><answer>{letter}</answer>",
        {"beeps": beeps, "position": QUADRANTS[key]},
        layout,
    )


def render_locate(rng: np.random.Generator, spec: ClipSpec, difficulty: str, key: int) -> Rendered:
    """One square, in quadrant `key`, flashing once or twice on the sync scene (striped quadrants,
    glow of its colour); no sound. The purely visual form of localise's last step."""
    colour = AV_COLOURS[int(rng.integers(len(AV_COLOURS)))]
    frames, audio, layout = sync_scene(rng, spec, difficulty, [QUADRANTS[key]], [colour], 0)
    audio = np.zeros_like(audio)  # the one square is the target of sync_scene: silence its beeps
    letter = OPTION_LETTERS[key]
    return Rendered(
        frames,
        audio,
        letter,
        list(QUADRANTS),
        f"<think>The square is at the {QUADRANTS[key]}.</think><answer>{letter}</answer>",
        {"position": QUADRANTS[key]},
        {**layout, "beeps": 0},
    )
