"""The embedded default's support tickets: deterministic text with a known triage answer, for the demo warehouse's
batch prompts and labeled examples, and the corpus the tiny model's tokenizer is trained on.

A ticket states one problem (its phrasing decides the category), maybe an urgency cue (the priority: an urgent cue
is high, a relaxed one low, none medium) and maybe an order number (copied into the answer). Greetings, sign-offs
and filler vary the text without changing the answer. Pure stdlib, the same tickets for the same seed everywhere.
"""

import random
from dataclasses import dataclass

from waldinger_runtime.ticket_triage import format_answer, user_message

PROBLEMS = {
    "billing": (
        "I was charged twice for {order}",
        "my invoice for {order} shows the wrong amount",
        "the discount code was not applied to {order}",
        "I see a payment I do not recognise for {order}",
        "my card was billed but {order} says unpaid",
        "please send me a VAT invoice for {order}",
    ),
    "shipping": (
        "{order} has not arrived yet",
        "the tracking for {order} has not moved in a week",
        "{order} was delivered to the wrong address",
        "the courier lost {order}",
        "can you ship {order} faster",
        "{order} is stuck at customs",
    ),
    "returns": (
        "I want to return {order}",
        "{order} arrived damaged and I want to send it back",
        "how do I get a refund for {order}",
        "the size of {order} is wrong, I need an exchange",
        "I sent back {order} but got no refund",
        "please cancel {order} and take it back",
    ),
    "account": (
        "I cannot log in to my account",
        "please reset my password",
        "I want to change the email on my account",
        "my account was locked after too many attempts",
        "please delete my account and my data",
        "I never got the verification email",
    ),
    "technical": (
        "the app crashes when I open my orders",
        "the checkout page shows an error",
        "the website will not load on my phone",
        "I get error 500 when I pay for {order}",
        "the search on your site returns nothing",
        "the app will not let me upload a photo",
    ),
}
URGENT_CUES = ("This is urgent.", "Please help ASAP!", "I need this fixed today.", "URGENT, please reply now.")
RELAXED_CUES = ("No rush.", "Whenever you have time.", "Not urgent at all.", "Just letting you know.")
GREETINGS = ("", "Hi,", "Hello,", "Hi team,", "Good morning,", "Dear support,")
SIGN_OFFS = ("", "Thanks.", "Thank you!", "Regards, Sam", "Best, Alex", "Cheers")
ORDER_FORMS = ("order {id}", "order #{id}", "my order {id}", "order no. {id}")
ACCOUNT_ORDER_FORMS = ("(order {id})", "(my last order was #{id})")
ORDER_ID_SHARE = 0.8


@dataclass(frozen=True)
class Ticket:
    text: str
    category: str
    priority: str
    order_id: str | None

    @property
    def prompt(self) -> str:
        """The user message the pipeline sends for this ticket."""
        return user_message(self.text)

    @property
    def expected(self) -> str:
        return format_answer(self.category, self.priority, self.order_id)


def random_ticket(rng: random.Random) -> Ticket:
    category = rng.choice(list(PROBLEMS))
    problem = rng.choice(PROBLEMS[category])
    order_id = str(rng.randrange(10_000, 100_000)) if rng.random() < ORDER_ID_SHARE else None
    if "{order}" in problem:
        order = rng.choice(ORDER_FORMS).format(id=order_id) if order_id else "my order"
        sentence = problem.format(order=order)
    else:
        sentence = problem
        if order_id:
            sentence = f"{sentence} {rng.choice(ACCOUNT_ORDER_FORMS).format(id=order_id)}"
    sentence = sentence[0].upper() + sentence[1:] + "."
    priority = rng.choice(("low", "medium", "medium", "high"))
    cue = {"high": rng.choice(URGENT_CUES), "low": rng.choice(RELAXED_CUES), "medium": ""}[priority]
    parts = [rng.choice(GREETINGS), sentence, cue, rng.choice(SIGN_OFFS)]
    return Ticket(" ".join(part for part in parts if part), category, priority, order_id)


def tickets(seed: int, count: int) -> list[Ticket]:
    rng = random.Random(seed)
    return [random_ticket(rng) for _ in range(count)]


def tokenizer_corpus() -> list[str]:
    """Text of the task's kind for training the tiny model's tokenizer: prompts and answers of fixed tickets."""
    sample = tickets(seed=7, count=2_000)
    return [ticket.prompt for ticket in sample] + [ticket.expected for ticket in sample]
