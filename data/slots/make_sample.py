"""Writes the bundled sample corpus: small, in the ATIS/SNIPS split layout (`seq.in`,
`seq.out`, `label`), generated from templates and word lists written for this project (no
utterance comes from a real corpus). The test split uses some cities that train never
shows, so the character encoder has something to do.

    python data/slots/make_sample.py   # rewrites data/slots/sample/{train,dev,test}/
"""

from __future__ import annotations

import random
from pathlib import Path

CITIES = [
    "boston",
    "denver",
    "dallas",
    "atlanta",
    "seattle",
    "chicago",
    "phoenix",
    "miami",
    "new york",
    "san francisco",
    "salt lake city",
    "las vegas",
    "kansas city",
    "houston",
    "detroit",
    "portland",
    "orlando",
    "nashville",
]
UNSEEN_CITIES = ["albuquerque", "sacramento", "el paso", "tucson", "new orleans"]
DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
MONTHS = ["january", "march", "may", "july", "september", "november", "december"]
DAY_NUMBERS = [
    "first",
    "second",
    "third",
    "fifth",
    "tenth",
    "fifteenth",
    "twentieth",
    "twenty first",
]
PERIODS = ["morning", "afternoon", "evening", "night"]
AIRLINES = ["delta", "united", "american airlines", "us air", "continental", "alaska airlines"]
CLASSES = ["first class", "coach", "business class"]
TRANSPORT = ["limousine", "taxi", "rental car", "bus"]
CODES = ["ap", "ua", "dl", "qx", "ff", "yn"]


def span(words: str, kind: str) -> list[tuple[str, str]]:
    """`(word, tag)` pairs of one slot value: B- on the first word, I- on the rest."""
    parts = words.split()
    return [(w, ("B-" if i == 0 else "I-") + kind) for i, w in enumerate(parts)]


def plain(words: str) -> list[tuple[str, str]]:
    return [(w, "O") for w in words.split()]


def flight(rng: random.Random, cities: list[str]) -> tuple[list[tuple[str, str]], str]:
    src, dst = rng.sample(cities, 2)
    out = plain(
        rng.choice(
            [
                "show me flights",
                "i want to fly",
                "list flights",
                "i need a flight",
                "what flights are there",
            ]
        )
    )
    out += plain("from") + span(src, "fromloc.city_name")
    out += plain("to") + span(dst, "toloc.city_name")
    r = rng.random()
    if r < 0.3:
        out += plain("on") + span(rng.choice(DAYS), "depart_date.day_name")
    elif r < 0.5:
        out += plain("on") + span(rng.choice(MONTHS), "depart_date.month_name")
        out += span(rng.choice(DAY_NUMBERS), "depart_date.day_number")
    if rng.random() < 0.4:
        out += plain("in the") + span(rng.choice(PERIODS), "depart_time.period_of_day")
    if rng.random() < 0.3:
        out += plain("on") + span(rng.choice(AIRLINES), "airline_name")
    if rng.random() < 0.2:
        out += span("round trip", "round_trip")
    return out, "atis_flight"


def airfare(rng: random.Random, cities: list[str]) -> tuple[list[tuple[str, str]], str]:
    src, dst = rng.sample(cities, 2)
    out = plain(rng.choice(["what is the", "show me the", "list the"]))
    if rng.random() < 0.5:
        out += span(rng.choice(["cheapest", "lowest"]), "cost_relative")
    if rng.random() < 0.4:
        out += span(rng.choice(CLASSES), "class_type")
    out += plain(rng.choice(["fare", "fares", "airfare"]))
    out += plain("from") + span(src, "fromloc.city_name")
    out += plain("to") + span(dst, "toloc.city_name")
    if rng.random() < 0.3:
        out += plain("under") + span(f"{rng.randint(1, 9)}00 dollars", "fare_amount")
    if rng.random() < 0.3:
        out += span("round trip", "round_trip")
    return out, "atis_airfare"


def ground(rng: random.Random, cities: list[str]) -> tuple[list[tuple[str, str]], str]:
    out = plain(
        rng.choice(
            [
                "what ground transportation is available in",
                "is there ground transportation in",
                "show me transportation in",
            ]
        )
    )
    out += span(rng.choice(cities), "city_name")
    if rng.random() < 0.4:
        out += plain("by") + span(rng.choice(TRANSPORT), "transport_type")
    return out, "atis_ground_service"


def airline(rng: random.Random, cities: list[str]) -> tuple[list[tuple[str, str]], str]:
    src, dst = rng.sample(cities, 2)
    out = plain(rng.choice(["which airlines fly", "what airlines go", "list airlines flying"]))
    out += plain("from") + span(src, "fromloc.city_name")
    out += plain("to") + span(dst, "toloc.city_name")
    return out, "atis_airline"


def flight_time(rng: random.Random, cities: list[str]) -> tuple[list[tuple[str, str]], str]:
    src, dst = rng.sample(cities, 2)
    out = plain("what time does")
    if rng.random() < 0.5:
        out += span(rng.choice(AIRLINES), "airline_name")
        out += plain("flight") + span(str(rng.randint(100, 2999)), "flight_number")
    else:
        out += plain("the flight")
    out += plain("from") + span(src, "fromloc.city_name")
    out += plain("to") + span(dst, "toloc.city_name")
    out += plain(rng.choice(["leave", "depart", "arrive"]))
    return out, "atis_flight_time"


def abbreviation(rng: random.Random, cities: list[str]) -> tuple[list[tuple[str, str]], str]:
    out = plain(rng.choice(["what does", "what is", "explain"]))
    out += span(rng.choice(CODES), "fare_basis_code")
    out += plain(rng.choice(["mean", "stand for", ""]))
    return out, "atis_abbreviation"


def flight_and_fare(rng: random.Random, cities: list[str]) -> tuple[list[tuple[str, str]], str]:
    """Two intents in one question, labelled as ATIS labels them (`a#b`)."""
    src, dst = rng.sample(cities, 2)
    out = plain(
        rng.choice(
            [
                "show me flights and fares",
                "list flights and fares",
                "i need flight and fare information",
            ]
        )
    )
    out += plain("from") + span(src, "fromloc.city_name")
    out += plain("to") + span(dst, "toloc.city_name")
    if rng.random() < 0.4:
        out += plain("on") + span(rng.choice(DAYS), "depart_date.day_name")
    return out, "atis_flight#atis_airfare"


TEMPLATES = [
    (flight, 10),
    (airfare, 5),
    (ground, 3),
    (airline, 3),
    (flight_time, 2),
    (abbreviation, 1),
    (flight_and_fare, 2),
]


def utterance(rng: random.Random, cities: list[str]) -> tuple[list[tuple[str, str]], str]:
    makers = [m for m, w in TEMPLATES for _ in range(w)]
    return rng.choice(makers)(rng, cities)


def write_split(folder: Path, rows: list[tuple[list[tuple[str, str]], str]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    words = [" ".join(w for w, _ in pairs) for pairs, _ in rows]
    tags = [" ".join(t for _, t in pairs) for pairs, _ in rows]
    intents = [intent for _, intent in rows]
    for name, lines in (("seq.in", words), ("seq.out", tags), ("label", intents)):
        (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    rng = random.Random(20240603)
    out = Path(__file__).resolve().parent / "sample"
    write_split(out / "train", [utterance(rng, CITIES) for _ in range(360)])
    write_split(out / "dev", [utterance(rng, CITIES) for _ in range(60)])
    test_cities = CITIES[:8] + UNSEEN_CITIES
    write_split(out / "test", [utterance(rng, test_cities) for _ in range(80)])


if __name__ == "__main__":
    main()
