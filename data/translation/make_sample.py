"""Writes the bundled translation sample: a synthetic English -> German-like pair with a
small vocabulary (number words, plural forms, adjective agreement, verb-second word order
after a fronted time phrase), deterministic, learnable by a tiny model in seconds.

    python data/translation/make_sample.py  # writes sample/{train,val,test}.{en,de}
"""

from __future__ import annotations

import itertools
import random
from pathlib import Path

SUBJECTS = {
    "the dog": "der Hund",
    "the cat": "die Katze",
    "a man": "ein Mann",
    "a woman": "eine Frau",
    "the child": "das Kind",
}
VERBS = {"sees": "sieht", "likes": "mag", "finds": "findet", "carries": "trägt"}
NUMBERS = {"two": "zwei", "three": "drei", "four": "vier", "five": "fünf", "six": "sechs"}
OBJECTS = {
    "apples": "Äpfel",
    "balls": "Bälle",
    "books": "Bücher",
    "flowers": "Blumen",
    "stones": "Steine",
}
ADJECTIVES = {"": "", "red": "rote", "big": "große", "old": "alte"}
TIMES = {"": "", "today": "heute", "in the morning": "am Morgen", "at night": "nachts"}
SPLITS = {"train": 700, "val": 60, "test": 60}


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def pair(
    subject: str, verb: str, number: str, obj: str, adjective: str, time: str
) -> tuple[str, str]:
    en_obj = " ".join(w for w in (number, adjective, obj) if w)
    de_obj = " ".join(w for w in (NUMBERS[number], ADJECTIVES[adjective], OBJECTS[obj]) if w)
    en = f"{subject} {verb} {en_obj}" + (f" {time}" if time else "")
    if time:  # German puts the verb second: the time phrase first, then verb, subject
        de = f"{TIMES[time]} {VERBS[verb]} {SUBJECTS[subject]} {de_obj}"
    else:
        de = f"{SUBJECTS[subject]} {VERBS[verb]} {de_obj}"
    return _cap(en) + ".", _cap(de) + "."


def main() -> None:
    combos = list(itertools.product(SUBJECTS, VERBS, NUMBERS, OBJECTS, ADJECTIVES, TIMES))
    random.Random(14).shuffle(combos)
    out = Path(__file__).resolve().parent / "sample"
    out.mkdir(exist_ok=True)
    start = 0
    for split, count in SPLITS.items():
        pairs = [pair(*c) for c in combos[start : start + count]]
        start += count
        for lang, side in (("en", 0), ("de", 1)):
            (out / f"{split}.{lang}").write_text(
                "".join(p[side] + "\n" for p in pairs), encoding="utf-8"
            )


if __name__ == "__main__":
    main()
