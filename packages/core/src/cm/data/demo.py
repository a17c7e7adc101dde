"""Deterministic generator of a small synthetic dataset in the ReDSM5 layout.

Real ReDSM5 text is licensed and sensitive, so examples, smoke tests and CI train on invented
first-person posts instead. Posts are assembled from templated symptom sentences (several
phrasings with slots, so a model must generalise), neutral filler, near-miss sentences that
mention a topic without meeting the criterion (status 0), SPECIAL_CASE rows and a long tail of
long posts (> 512 tokens) so truncation matters. The output is committed under demo_data/;
regenerate it with ``python -m cm.data.demo``. The criteria are our own short paraphrase, not
the DSM-5 wording.
"""

from __future__ import annotations

import csv
import json
import random
import re
from pathlib import Path

DEMO_ROOT = Path(__file__).with_name("demo_data")
DEFAULT_POSTS = 300
DEFAULT_SEED = 13

CRITERIA = [
    ("A.1", "Feels sad, empty or hopeless most of the day on most days, or others see them low."),
    ("A.2", "Has lost interest in, or no longer enjoys, almost all activities on most days."),
    ("A.3", "Clear change in appetite or body weight (loss or gain) without trying."),
    ("A.4", "Sleeps far too little or far too much nearly every day."),
    ("A.5", "Moves or speaks visibly slower than usual, or is restless in a way others notice."),
    ("A.6", "Feels tired or without energy nearly every day."),
    ("A.7", "Feels worthless, or feels strong guilt that does not fit the situation."),
    ("A.8", "Struggles to think, concentrate or make decisions nearly every day."),
    ("A.9", "Keeps thinking about death or suicide, or has planned or attempted it."),
]
SYMPTOMS = [
    "DEPRESSED_MOOD", "ANHEDONIA", "APPETITE_CHANGE", "SLEEP_ISSUES", "PSYCHOMOTOR",
    "FATIGUE", "WORTHLESSNESS", "COGNITIVE_ISSUES", "SUICIDAL_THOUGHTS",
]  # fmt: skip
SYMPTOM_WEIGHTS = [1.6, 1.2, 0.8, 1.2, 0.6, 1.1, 1.1, 0.9, 0.8]

SLOTS = {
    "sad": "sad|empty|hopeless|low|miserable|flat and heavy|numb",
    "dur": "for weeks|for about two months|since the spring|for most of this year|since I moved"
    "|lately|for a while now|since the winter",
    "who": "my sister|my roommate|a coworker|my mum|my best friend|my partner|my dad|my cousin",
    "day": "Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday|the weekend",
    "hobby": "painting|running|the guitar|video games|baking|reading|climbing|gardening|chess",
    "food": "pasta|a curry|pancakes|soup|tacos|a stir fry|sandwiches|dumplings",
    "place": "the park|the library|the supermarket|my cousin's place|the beach|the market"
    "|the corner shop|the station",
    "task": "the quarterly report|a client presentation|the spreadsheet migration"
    "|the inventory count|the new rota|a grant application",
    "topic": "deep sea fish|old railways|volcanoes|the history of tea|space probes|bees",
    "job": "retail|logistics|an office|a warehouse|IT support|a call centre|a bakery",
    "pet": "cat|dog|rabbit|parrot",
    "weather": "grey and drizzly|weirdly warm|windy|freezing|sunny",
    "kg": "five|six|eight|ten|twelve",
    "time": "3am|4am|two in the morning|half past three",
}
SLOT_VALUES = {name: values.split("|") for name, values in SLOTS.items()}

POSITIVE = {
    "DEPRESSED_MOOD": """I have felt {sad} nearly every day {dur}.
Most mornings I wake up already feeling {sad} and it never really lifts.
{Who} keeps asking why I tear up over nothing.
There is a heavy grey feeling that follows me around all day, every day.
I cry in the car before work most days and I don't even know why.
Honestly I just feel hopeless about everything right now.
It is like someone turned the colour down on my whole life.
I feel {sad} in a way I can't explain, day after day.""",
    "ANHEDONIA": """I used to love {hobby} but now it feels like a chore I can't be bothered with.
Nothing is fun anymore, not even {hobby}.
{Who} invited me to {place} and I felt nothing about it either way.
I gave up on {hobby} {dur} because I just don't care anymore.
Things that used to make me happy just leave me cold now.
I have no interest in seeing friends or doing anything at all.
Even my favourite shows don't hold my attention or make me smile.
I can't enjoy anything, even the stuff I used to look forward to all week.""",
    "APPETITE_CHANGE": """I have lost about {kg} kilos {dur} without trying because I barely eat.
Food has no appeal; some days I realise at night that I haven't eaten at all.
I keep eating far more than usual and have put on a lot of weight {dur}.
My appetite is gone and I have to force down a few bites of {food}.
{Who} said my clothes are hanging off me now.
I snack constantly, even when I'm not hungry, and I've gained weight fast.
Meals feel pointless so I skip most of them.""",
    "SLEEP_ISSUES": """I lie awake until {time} most nights and then wake up way too early.
I have been sleeping twelve or more hours a day and still want more.
Insomnia has been brutal {dur}; I get maybe three hours a night.
I wake up at {time} every morning and can't get back to sleep.
I sleep through most afternoons and then stay awake all night.
My sleep is a mess, I can't fall asleep no matter how tired I am.""",
    "PSYCHOMOTOR": """{Who} said I move and talk so slowly now that it's like I'm underwater.
I can't sit still; I pace around the flat for hours and pick at my hands.
My body feels like it's moving through wet cement, everything takes forever.
People at work noticed I take ages to answer even simple questions.
I'm restless all the time, tapping my feet and getting up every few minutes.
Even getting dressed happens in slow motion now and {who} has commented on it.""",
    "FATIGUE": """I am exhausted all the time, even after a full night in bed.
I have had no energy {dur}; a shower feels like running a marathon.
By lunchtime I'm completely drained and have nothing left.
Every small task wipes me out and I have to lie down afterwards.
I feel physically worn out every single day for no reason.
Just walking to {place} leaves me needing to rest.""",
    "WORTHLESSNESS": """I feel completely worthless and like a burden to {who}.
I blame myself for everything that goes wrong, even things that aren't my fault.
I keep thinking I'm a failure who doesn't deserve anyone's kindness.
The guilt about tiny mistakes eats at me for days.
I feel like I have nothing at all to offer anyone.
I'm convinced everyone would see I'm useless if they looked closely.""",
    "COGNITIVE_ISSUES": """I can't concentrate on anything; I read the same page five times.
At work I stare at {task} for hours and can't make sense of it.
Making even tiny decisions, like what to eat, feels impossible.
My brain is foggy and I keep forgetting what I was saying mid-sentence.
I can't focus long enough to finish a single email.
I keep losing track of conversations because my mind just goes blank.""",
    "SUICIDAL_THOUGHTS": """Some nights I think everyone would be better off without me.
I have been having thoughts about not wanting to be alive anymore.
I keep thinking about death much more than I used to.
Sometimes I wish I could just go to sleep and not wake up.
The thought of ending my life has crossed my mind more than once {dur}.
I've started wondering whether it's worth staying around at all.""",
}
# Sentences that touch a topic in an ordinary way: annotated with status 0.
NEAR_MISS = {
    "DEPRESSED_MOOD": """I was a little sad when {who} moved away, but we talk every week.
The film had a sad ending and I teared up for a minute.
I felt down after we lost the match, but it passed by the evening.""",
    "ANHEDONIA": """I got bored of {hobby} after a while, so I took a break from it for a bit.
I skipped the party on {day} because I already had plans.
I've never been that interested in football, it's just not my thing.""",
    "APPETITE_CHANGE": """I had a huge plate of {food} at lunch and skipped dinner.
I'm trying to cut down on sugar this month.
I wasn't very hungry after the big breakfast on {day}.""",
    "SLEEP_ISSUES": """I slept in on {day}, which was nice.
I stayed up late finishing a book and was a bit groggy the next morning.
The neighbours' party kept me awake for one night.""",
    "PSYCHOMOTOR": """I was fidgety in the waiting room before my dentist appointment.
I walked home slowly because it was such a nice evening.""",
    "FATIGUE": """I was tired after the long hike on {day}, but a good night's sleep fixed it.
Long shifts leave me a bit tired, like anyone.""",
    "WORTHLESSNESS": """I felt guilty for forgetting {who}'s birthday, so I called the next day.
I made a mistake on {task} and fixed it before anyone noticed.""",
    "COGNITIVE_ISSUES": """I forgot my keys this morning, classic me.
It took me a while to decide between two jackets in the shop.
I was distracted in the meeting because of the drilling outside.""",
    "SUICIDAL_THOUGHTS": """My grandmother passed away last year and I still think about her.
We talked about death a bit after a documentary, which was interesting.""",
}
SPECIAL = """My doctor switched me to a different medication last month.
I've been seeing a therapist every two weeks.
I was diagnosed with an anxiety disorder a few years ago.
I've had panic attacks on and off since school.
I'm on a waiting list for counselling."""
COMBINED = {  # one sentence annotated with two symptoms, as in the real data
    ("DEPRESSED_MOOD", "WORTHLESSNESS"): "I feel {sad} and worthless pretty much all day.",
    ("SLEEP_ISSUES", "FATIGUE"): "I barely sleep and I'm exhausted from the moment I get up.",
    ("FATIGUE", "COGNITIVE_ISSUES"): "I'm so drained that I can't think straight at work.",
}
FILLER = """On {day} I went to {place} with {who}.
Work has been busy because of {task}.
I have been getting into {hobby} again.
We cooked {food} for dinner and it turned out well.
The weather here has been {weather} all week.
My {pet} knocked a plant off the windowsill this morning.
I need to sort out my car insurance before the end of the month.
The bus was late again, so I walked part of the way.
{Who} is planning a trip to the coast in the summer.
I finally fixed the leaking tap in the kitchen.
There's a new café near {place} that does decent coffee.
My manager moved our weekly meeting to {day}.
I watched a documentary about {topic} last night.
Rent went up again this year, which is annoying.
I spent the afternoon tidying up my desk.
The gym near my flat is closing for renovations.
I started a new book about {topic}.
My phone screen cracked when I dropped it on {day}.
We have a family dinner planned for {who}'s birthday.
I work in {job} and the hours are all over the place.
The train was packed this morning.
I repainted the hallway a pale green.
I keep meaning to call the bank about a fee.
Our team is switching to a new scheduling tool.
{Who} lent me a board game that we played on {day}.
I bought a second-hand bike and it needs new brakes.
We had a power cut for an hour on {day}.
I went to {place} to return a parcel.
I signed up for a pottery class that starts next month.
The lift in our building has been broken since {day}.
I tried a new recipe for {food} from a cooking channel.
{Who} got a new job and we went out to celebrate.
I've been walking to work to save money on fares.
Our landlord finally replied about the damp in the bathroom.
I found an old photo album while cleaning out a cupboard.
We're thinking about adopting a {pet} from the shelter.
The new season of my favourite show comes out on {day}.
I had a dentist appointment on {day} and it was fine.
Traffic near {place} was terrible on the way home.
I helped {who} carry a sofa up three flights of stairs.
My laptop has started making a strange buzzing noise.
We ordered {food} and watched a quiz show.
I renewed my library card and borrowed three books about {topic}.
The clocks changed this week, so everything feels a bit off.
There was a street market near {place} on {day}.
I've been listening to a podcast about {topic}."""
OPENERS = """Not sure where else to post this.
Throwaway account for obvious reasons.
Long time lurker, first post.
This might be a ramble, sorry."""
CLOSERS = """Thanks for reading if you got this far.
Does anyone else deal with this?
Any advice would be appreciated.
I just needed to write this down somewhere."""
# (min words, max words, weight): long-tailed, median ~130, a few posts well past 512 tokens.
LENGTHS = [(25, 60, 15), (60, 100, 23), (100, 160, 27), (160, 260, 17), (260, 400, 11),
           (450, 850, 5)]  # fmt: skip


def scaled_lengths(scale: float) -> list[tuple[int, int, int]]:
    """LENGTHS with every word range multiplied by ``scale`` (0.5: half-length posts)."""
    return [(max(1, round(low * scale)), max(2, round(high * scale)), weight)
            for low, high, weight in LENGTHS]


def _lines(block: str) -> list[str]:
    return block.strip().splitlines()


def _fill(rng: random.Random, template: str) -> str:
    def pick(match: re.Match) -> str:
        name = match.group(1)
        value = rng.choice(SLOT_VALUES[name.lower()])
        return value[0].upper() + value[1:] if name[0].isupper() else value

    return re.sub(r"\{(\w+)\}", pick, template)


def _pick_symptoms(rng: random.Random, n_posts: int) -> list[list[str]]:
    """Positive symptoms per post: ~35% none, long-tailed counts, every symptom topped up."""
    n_neg = round(0.35 * n_posts)
    flags = [False] * n_neg + [True] * (n_posts - n_neg)
    rng.shuffle(flags)
    chosen: list[list[str]] = []
    for positive in flags:
        k = rng.choices([1, 2, 3, 4, 5, 6], weights=[34, 26, 18, 11, 7, 4])[0] if positive else 0
        names, weights, picked = list(SYMPTOMS), list(SYMPTOM_WEIGHTS), []
        for _ in range(k):
            i = rng.choices(range(len(names)), weights=weights)[0]
            picked.append(names.pop(i))
            weights.pop(i)
        chosen.append(picked)
    floor = max(1, round(n_posts / 12))  # each symptom in at least 1 post in 12
    candidates = [s for s in chosen if s]
    for symptom in SYMPTOMS:
        while candidates and sum(symptom in s for s in chosen) < floor:
            lacking = [s for s in candidates if symptom not in s]
            if not lacking:
                break
            rng.choice(lacking).append(symptom)
    return chosen


def _content(rng: random.Random, symptoms: list[str]) -> list[tuple[str, list[tuple[str, int]]]]:
    """Annotated sentences of one post: (text, [(symptom, status), ...])."""
    out, todo = [], list(symptoms)
    for pair, template in COMBINED.items():
        if all(s in todo for s in pair) and rng.random() < 0.5:
            out.append((_fill(rng, template), [(s, 1) for s in pair]))
            todo = [s for s in todo if s not in pair]
    for symptom in todo:
        for template in rng.sample(_lines(POSITIVE[symptom]), 2 if rng.random() < 0.25 else 1):
            out.append((_fill(rng, template), [(symptom, 1)]))
    others = [s for s in SYMPTOMS if s not in symptoms or rng.random() < 0.1]
    n_near = min(len(others), rng.choices([0, 1, 2], weights=[45, 40, 15])[0])
    for symptom in rng.sample(others, n_near):
        out.append((_fill(rng, rng.choice(_lines(NEAR_MISS[symptom]))), [(symptom, 0)]))
    if rng.random() < 0.12:
        out.append((rng.choice(_lines(SPECIAL)), [("SPECIAL_CASE", 1)]))
    return out


def _why(symptom: str, status: int) -> str:
    if symptom == "SPECIAL_CASE":
        return "Synthetic demo label: mentions treatment or another condition, no single criterion."
    verdict = "meets" if status else "mentions but does not meet"
    return f"Synthetic demo label: the sentence {verdict} {symptom}."


def _post(rng: random.Random, post_id: str, symptoms: list[str],
          lengths=LENGTHS) -> tuple[str, list[list]]:
    """One post's text and its annotation rows."""
    low, high, _ = rng.choices(lengths, weights=[w for *_, w in lengths])[0]
    target = rng.randint(low, high)
    content = _content(rng, symptoms)
    body = [(rng.choice(_lines(OPENERS)), [])] if rng.random() < 0.3 else []
    words = sum(len(t.split()) for t, _ in content + body)
    filler: list[tuple[str, list]] = []
    deck: list[str] = []  # deal filler templates without replacement to limit repetition
    while words < target:
        if not deck:
            deck = _lines(FILLER)
            rng.shuffle(deck)
        sentence = _fill(rng, deck.pop())
        filler.append((sentence, []))
        words += len(sentence.split())
    for item in content:
        filler.insert(rng.randrange(len(filler) + 1), item)
    sentences = body + filler
    if rng.random() < 0.35:
        sentences.append((rng.choice(_lines(CLOSERS)), []))
    parts, rows = [], []
    for index, (text, labels) in enumerate(sentences):
        if index and words > 150 and rng.random() < 0.15:
            parts.append("\n\n")
        elif index:
            parts.append(" ")
        parts.append(text)
        for symptom, status in labels:
            rows.append(
                [post_id, f"{post_id}_{index}", text, symptom, status, _why(symptom, status)]
            )
    return "".join(parts), rows


def write_demo(root: Path, n_posts: int = DEFAULT_POSTS, seed: int = DEFAULT_SEED,
               lengths=LENGTHS) -> Path:
    """Write root/redsm5/*.csv and root/DSM5/MDD_Criteira.json; same arguments, same bytes.
    ``lengths``: (min words, max words, weight) rows the post lengths are drawn from."""
    rng = random.Random(seed)
    root = Path(root)
    (root / "redsm5").mkdir(parents=True, exist_ok=True)
    (root / "DSM5").mkdir(parents=True, exist_ok=True)
    posts, annotations = [], []
    for number, symptoms in enumerate(_pick_symptoms(rng, n_posts), start=1):
        post_id = f"demo_{number:04d}"
        text, rows = _post(rng, post_id, symptoms, lengths)
        posts.append([post_id, text])
        annotations.extend(rows)
    header = ["post_id", "sentence_id", "sentence_text", "DSM5_symptom", "status", "explanation"]
    for name, head, rows in [
        ("redsm5_posts.csv", ["post_id", "text"], posts),
        ("redsm5_annotations.csv", header, annotations),
    ]:
        with open(root / "redsm5" / name, "w", newline="", encoding="utf-8") as fh:
            csv.writer(fh, lineterminator="\n").writerows([head, *rows])
    criteria = {
        "diagnosis": "Major Depressive Disorder (cm demo paraphrase, not the DSM-5 wording)",
        "criteria": [{"id": cid, "text": text} for cid, text in CRITERIA],
    }
    dumped = json.dumps(criteria, indent=2, ensure_ascii=False) + "\n"
    (root / "DSM5" / "MDD_Criteira.json").write_bytes(dumped.encode("utf-8"))
    return root


if __name__ == "__main__":
    print(write_demo(DEMO_ROOT))
