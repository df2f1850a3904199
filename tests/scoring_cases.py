r"""A fixed set of model responses to the four reasoning benchmarks, for the scoring parity tests.

Each case is ``{"id", "task", "row", "response"}``: ``row`` is the benchmark row as the official dataset file has it
(invented content in the official columns), ``response`` what a model might answer. The set covers right, wrong and
tricky forms for every task: boxed and unboxed answers, '####', 'The answer is', 'final answer is ... I hope',
thousands separators, units, percentages, LaTeX fractions, several boxes, truncated boxes, empty answers, and GPQA
letters in every form models write them. No verdicts are stored here: the tests compare ours with the references'
own code run on these cases (tests/lighteval/reference_verdicts.py, run in .venv-lighteval).

Loaded by file path (the lighteval environment and the main one both read it), so it imports nothing of ours.
"""

from __future__ import annotations

import json

# ---------------------------------------------------------------- MATH-500 (problem, solution, answer, unique_id)

MATH500_ROWS = [
    ("What is $7+11$?", r"Adding, $7+11=\boxed{18}$.", "18"),
    (
        "What share of the square is shaded?",
        r"Half of the area is shaded, so the share is $\boxed{\frac{1}{2}}$.",
        r"\frac{1}{2}",
    ),
    ("How many dollars in all?", r"We add the four amounts and get $\boxed{1,\!234}$ dollars.", r"1,\!234"),
    ("Where does the line meet the $x$-axis?", r"Setting $y=0$ gives $x=3$, so the point is $\boxed{(3,0)}$.", "(3,0)"),
    ("Solve $x^2=2$ for $x>0$.", r"Taking the positive root, $x = \boxed{\sqrt{2}}$.", r"\sqrt{2}"),
    ("Which option is right?", r"Only (C) works, so the answer is $\boxed{\text{(C)}}$.", r"\text{(C)}"),
    ("Expand $(x+1)^2 - 2x$.", r"$(x+1)^2-2x = x^2+2x+1-2x = \boxed{x^2+1}$.", "x^2+1"),
    ("For which $x$ is $1 \le x < 3$?", r"The set is $\boxed{[1,3)}$.", "[1,3)"),
    ("What is the speed in m/s?", r"The speed is $\boxed{2.5}$ meters per second.", "2.5"),
    ("What is $3-6$?", r"We get $\boxed{-3}$.", "-3"),
    ("What is $\pi$ to two decimal places?", r"Since $\pi = 3.14159\ldots$, it is $\boxed{3.14}$.", "3.14"),
    ("Find the line through $(0,3)$ with slope 2.", r"The line is $\boxed{y = 2x + 3}$.", "y = 2x + 3"),
    ("Solve $x^2-5x+6=0$.", r"It factors as $(x-2)(x-3)=0$, so the roots are $\boxed{2}$ and $\boxed{3}$.", "2, 3"),
    ("How many cases are there?", r"Counting them, the final answer is $\boxed{5}$.", "5"),
]

FORMS = [  # every math task: {a}: the gold answer as the row writes it, {w}: a wrong one
    r"Step by step: ... Therefore, the final answer is: $\boxed{{{a}}}$. I hope it is correct",
    r"So the answer is $\boxed{{{a}}}$.",
    r"\boxed{{{a}}}",
    r"\[\boxed{{{a}}}\]",
    r"The answer is {a}.",
    r"The answer is ${a}$.",
    r"Therefore, the final answer is: ${a}$",
    r"ANSWER: {a}",
    r"#### {a}",
    r"Reasoning: step one gives 3, step two gives {a}.",
    r"So the answer is $\boxed{{{w}}}$.",
    r"The answer is {w}.",
    r"First I got \boxed{{{w}}}, but rechecking gives \boxed{{{a}}}.",
    r"First I got \boxed{{{a}}}, but rechecking gives \boxed{{{w}}}.",
    r"So the answer is \boxed{{{a}",
    r"I am not sure.",
]
MATH_WRONG = {
    "2, 3": "2, 4",
    "5": "6",
    "y = 2x + 3": "y = 2x - 3",
    "3.14": "3.15",
    "18": "19",
    r"\frac{1}{2}": r"\frac{1}{3}",
    r"1,\!234": "1,243",
    "(3,0)": "(0,3)",
    r"\sqrt{2}": r"\sqrt{3}",
    r"\text{(C)}": r"\text{(D)}",
    "x^2+1": "x^2-1",
    "[1,3)": "[1,3]",
    "2.5": "25",
    "-3": "3",
}

MATH500_EXTRA = [  # (row index, response): equivalent, unit-bearing, unboxed and malformed answers
    (0, r"so $x = \boxed{18}$"),
    (0, r"\boxed{x = 18}"),
    (0, r"\boxed{18 \text{ apples}}"),
    (0, r"\boxed{18^\circ}"),
    (0, r"\boxed{18.0}"),
    (0, r"\boxed{\approx 18}"),
    (0, r"It has 18 apples, then 4 are eaten, leaving 14."),
    (0, r"\boxed{}"),
    (0, ""),
    (0, r"The final answer is 18. I hope it is correct"),
    (0, r"**Final Answer:** 18"),
    (0, r"$\boxed{\mathbf{18}}$"),
    (0, r"\fbox{18}"),
    (0, r"\boxed{18} and \boxed{18}"),
    (0, r"the answer is $\boxed{18}$ or $\boxed{19}$"),
    (1, r"\boxed{0.5}"),
    (1, r"\boxed{1/2}"),
    (1, r"\boxed{\dfrac12}"),
    (1, r"\boxed{\frac{2}{4}}"),
    (1, r"\boxed{50\%}"),
    (1, r"\boxed{0.50}"),
    (1, r"The answer is 1/2."),
    (1, r"The answer is 0.5."),
    (1, r"\boxed{\frac{1}{"),
    (1, r"\boxed{\frac{1}{2}} but then cut off in \boxed{\frac{1}{"),
    (1, r"\boxed{\tfrac{1}{2}}"),
    (1, r"\boxed{.5}"),
    (2, "So the total is $1,234$ dollars."),
    (2, r"\boxed{1234}"),
    (2, r"\boxed{1,234}"),
    (2, r"\boxed{1\,234}"),
    (2, r"The total is 1 234 dollars."),
    (2, r"\boxed{\$1,234}"),
    (2, r"The answer is \$1,234."),
    (3, r"\boxed{(3, 0)}"),
    (3, r"\boxed{3, 0}"),
    (3, r"\boxed{\left( 3, 0 \right)}"),
    (4, r"\boxed{2^{1/2}}"),
    (4, r"\boxed{1.41421356}"),
    (4, r"\boxed{\pm\sqrt{2}}"),
    (5, r"\boxed{C}"),
    (5, r"\boxed{(C)}"),
    (5, r"The answer is (C)."),
    (6, r"\boxed{1+x^2}"),
    (6, r"\boxed{y = x^2+1}"),
    (6, r"\boxed{x^{2} + 1}"),
    (7, r"\boxed{1 \le x < 3}"),
    (7, r"\boxed{[1, 3)}"),
    (8, r"\boxed{a = 2.5\ \text{m/s}}"),
    (8, r"\boxed{2.5 \text{ m/s}}"),
    (8, r"\boxed{\frac{5}{2}}"),
    (8, r"\boxed{2.50}"),
    (8, r"The speed is 2.5 m/s."),
    (9, r"\boxed{-3}"),
    (9, r"\boxed{- 3}"),
    (10, r"\boxed{\approx 3.14}"),
    (10, r"\boxed{\pi}"),
    (10, r"The value is about 3.14159."),
    (10, r"\boxed{3.140}"),
    (10, r"\boxed{\frac{157}{50}}"),
    (0, r"$\frac{36}{2}$"),
    (0, r"The answer is: 18"),
    (0, r"\(\boxed{18}\)"),
    (0, r"$$18$$"),
    (0, r"**Answer: 18**"),
    (0, r"The answer is \boxed{18}. I hope it is correct"),
    (0, r"\boxed{18\%}"),
    (0, r"\boxed{\text{eighteen}}"),
    (0, r"\boxed{18}\boxed{19}"),
    (0, r"The final answer is $\boxed{18}$"),
    (0, "The answer is 18\n\nWait, 7+11 is 18, yes."),
    (1, r"The probability is $\frac{1}{2}$."),
    (1, r"Answer: \frac{1}{2}"),
    (1, r"The final answer is $\frac{1}{2}$. I hope it is correct"),
    (2, r"\boxed{1234.}"),
    (3, r"The point is $(3,0)$."),
    (5, r"\boxed{\textbf{(C)}}"),
    (6, r"\boxed{(x+1)^2 - 2x}"),
    (7, r"\boxed{x \in [1,3)}"),
    (11, r"\boxed{2x+3}"),  # equations and assignments, on either side
    (11, r"\boxed{y=3+2x}"),
    (11, r"\boxed{z = 2x + 3}"),
    (11, r"\boxed{y - 2x = 3}"),
    (11, r"The line is $y = 2x + 3$."),
    (11, r"\boxed{y = 2x + 3 = 3 + 2x}"),
    (0, r"\boxed{n = 7 + 11 = 18}"),
    (0, r"\boxed{18 = 18}"),
    (0, r"\boxed{36/2}"),  # unevaluated forms
    (0, r"\boxed{9 \cdot 2}"),
    (0, r"\boxed{\sqrt{324}}"),
    (0, r"\boxed{\frac{1}{0}}"),
    (0, r"\boxed{\infty}"),
    (0, r"\boxed{x \equiv 18 \pmod{100}}"),
    (8, r"\boxed{v = 2.5}"),
    (8, r"\boxed{v = \frac{5}{2} = 2.5}"),
    (0, r"The final answer is $18$. Then again, maybe \boxed{19}."),  # which anchor wins
    (0, r"Maybe \boxed{19}. The final answer is $18$."),
    (0, r"The final answer is $19$. Then again, maybe \boxed{18}."),
    (0, r"Answer: $19$, no: \boxed{18}"),
    (12, r"\boxed{3, 2}"),  # a gold of two boxes
    (12, r"$\boxed{2}$ and $\boxed{3}$"),
    (12, r"\boxed{3}"),
    (12, r"The roots are $x = 2$ or $x = 3$."),
    (12, r"\boxed{\{2, 3\}}"),
    (12, r"\boxed{x = 2, 3}"),
    (13, r"The final answer is $5$."),  # a gold after "final answer"
    (13, r"\boxed{5.0}"),
]

# ---------------------------------------------------------------- GSM8K (question, answer with its '#### n' line)

GSM8K_ROWS = [
    ("Sam has 7 apples and buys 11 more. How many now?", "Sam has 7 + 11 = <<7+11=18>>18 apples.\n#### 18", "18"),
    (
        "A shop sells 250 pens a day. How many pens in 4 days and 234 more?",
        "4 days give 250 * 4 = <<250*4=1000>>1000 pens.\nWith 234 more: 1000 + 234 = <<1000+234=1234>>1234.\n#### 1234",
        "1234",
    ),
    ("Half of 9 dollars is how much?", "Half is 9 / 2 = <<9/2=4.5>>4.5 dollars.\n#### 4.5", "4.5"),
]
GSM8K_WRONG = {"18": "17", "1234": "1243", "4.5": "5"}
GSM8K_EXTRA = [
    (0, "So the total is $18$ apples."),
    (0, "**18**"),
    (0, "18 apples"),
    (0, "The answer is 18 apples. Question: another one? Answer: 7"),
    (0, "The answer is 18.00"),
    (0, r"The answer is \(18\)."),
    (0, "7 + 11 = 18"),
    (0, "Answer: 18 apples, since 7 + 11 = 18."),
    (0, r"$\boxed{18 \text{ apples}}$"),
    (0, ""),
    (1, "So the total is $1,234$ dollars."),
    (1, "So the total is 1,234 pens."),
    (1, "The answer is 1 234."),
    (1, r"\boxed{1,234}"),
    (1, "#### 1,234"),
    (1, "The answer is $1234.00."),
    (2, "The answer is $4.50."),
    (2, "The answer is 4.5 dollars."),
    (2, r"\boxed{\frac{9}{2}}"),
    (2, r"The answer is 9/2."),
    (2, "Each gets 4 dollars and 50 cents, so 4.50."),
    (0, r"The final answer is $18$. Then again, maybe \boxed{17}."),
    (0, r"Maybe \boxed{17}. The final answer is 18."),
]

# ---------------------------------------------------------------- AIME 2024 (problem, answer)

AIME_ROWS = [
    ("Find the remainder when 2024 is divided by 1000.", "24"),
    ("Compute seventeen times twelve.", "204"),
    ("How many ordered pairs are there?", "33"),
]
AIME_WRONG = {"24": "42", "204": "240", "33": "3"}
AIME_EXTRA = [
    (0, r"\boxed{024}"),
    (0, r"\boxed{24.0}"),
    (0, r"\boxed{2024 \bmod 1000 = 24}"),
    (0, r"The remainder is $24$."),
    (1, r"\boxed{17 \times 12 = 204}"),
    (1, r"\boxed{204 \text{ ways}}"),
    (2, r"\boxed{033}"),
    (2, r"There are 33 pairs."),
    (2, r"so $n = 33$ and $m = 4$."),
]

# ---------------------------------------------------------------- GPQA-Diamond (question, correct, 3 incorrect)

GPQA_ROWS = [
    ("Which particle has no electric charge?", "Neutron", "Proton", "Electron", "Positron"),
    ("Which gas is noble?", "Argon", "Oxygen", "Nitrogen", "Chlorine"),
    ("Which number is prime?", "Seven", "Nine", "Fifteen", "Twenty-one"),
    ("What is the SI unit of force?", "Newton", "Joule", "Watt", "Pascal"),
]
GPQA_FORMS = [  # {g}: the gold letter, {l}: it in lower case, {x}: another letter
    "Step by step... Answer: {g}",
    "**Answer:** {g}",
    "**Final Answer:** {g}",
    "Answer: Option {g}",
    "{g}",
    r"\boxed{{g}}",
    r"The answer is $\boxed{{g}}$.",
    "The answer is ({g}).",
    "The correct answer is {g}.",
    "Answer: {g}) the right choice",
    "answer: {g}",
    "Answer: {x}",
    "**Answer:** {x}",
    r"\boxed{{x}}",
    "I first thought {x}, but the answer is {g}.",
    "Answer: {g}. Wait, no. Answer: {x}",
    "Therefore, the final answer is: {g}. I hope it is correct",
    "None of these.",
]
GPQA_EXTRA = [  # (row, response)
    (0, r"\boxed{A + B}"),
    (0, r"\boxed{a = 2.5\ \text{m/s}}"),
    (0, r"\boxed{\text{{g}}}"),
    (0, r"$\boxed{(\text{{g}})}$"),
    (0, "({g}) is right"),
    (0, "Answer: **{g}**"),
    (1, "Answer: E"),
    (1, "The answer is {g} or {x}."),
    (1, "Between {x} and {g}, I pick {g}"),
    (1, ""),
    (2, "ANSWER: {g}"),
    (2, "Final answer: {g}"),
    (3, "{g}) Newton"),
    (3, "It is a noun, so {g}."),
    (0, "Answer:\n{g}"),
    (0, "The answer is:\n\n**{g}**"),
    (1, "{g}."),
    (1, "({g})"),
    (1, "Answer: ({g})"),
    (2, "the answer is {l}"),
    (2, "Option {g}"),
    (2, "**{g}) Newton**"),
    (3, "The best choice is {g}"),
    (3, "Checking A, then B, then C, then D: the answer is {g}."),
    (3, "Final answer: \\boxed{{g}}"),
    (0, "Answer: $\\boxed{{g}}$"),
    (0, "Dear reader, Carbon is not it.\nAnswer: {g}"),
    (1, "Carbon Dioxide"),
    (1, "The answer is {x}\n\nAnswer: {g}"),
    (2, "After eliminating A and B, Answer: ({g})"),  # lighteval reads the B of "B, Answer"
    (2, "ANSWER: {x}\n**Final Answer:** {g}"),
]


def gpqa_row(question, correct, *incorrect) -> dict:
    """A row with GPQA's official columns."""
    return {
        "Question": question,
        "Correct Answer": correct,
        "Incorrect Answer 1": incorrect[0],
        "Incorrect Answer 2": incorrect[1],
        "Incorrect Answer 3": incorrect[2],
        "Record ID": f"rec-{question[:12]}",
    }


def cases() -> list[dict]:
    """Every case, in a fixed order with stable ids."""
    out = []

    def add(task, row, response):
        out.append({"id": f"{task}-{len(out)}", "task": task, "row": row, "response": response})

    for i, (problem, solution, answer) in enumerate(MATH500_ROWS):
        row = {"problem": problem, "solution": solution, "answer": answer, "unique_id": f"test/x/{i}.json"}
        forms = FORMS if i < 4 else FORMS[:1] + FORMS[4:8] + FORMS[10:14]  # every form on four rows, some on the rest
        for form in forms:
            add("math500", row, form.format(a=answer, w=MATH_WRONG[answer]))
    for i, response in MATH500_EXTRA:
        problem, solution, answer = MATH500_ROWS[i]
        add(
            "math500",
            {"problem": problem, "solution": solution, "answer": answer, "unique_id": f"test/x/{i}.json"},
            response,
        )
    for question, answer, final in GSM8K_ROWS:
        for form in FORMS:
            add("gsm8k", {"question": question, "answer": answer}, form.format(a=final, w=GSM8K_WRONG[final]))
    for i, response in GSM8K_EXTRA:
        add("gsm8k", {"question": GSM8K_ROWS[i][0], "answer": GSM8K_ROWS[i][1]}, response)
    for i, (problem, answer) in enumerate(AIME_ROWS):
        for form in FORMS:
            add("aime24", {"id": i, "problem": problem, "answer": answer}, form.format(a=answer, w=AIME_WRONG[answer]))
    for i, response in AIME_EXTRA:
        add("aime24", {"id": i, "problem": AIME_ROWS[i][0], "answer": AIME_ROWS[i][1]}, response)
    # GPQA: the correct choice goes to position gold_index (0-3 in turn), the placeholders become its letter and another
    gpqa = [(row, form) for row in GPQA_ROWS for form in GPQA_FORMS] + [(GPQA_ROWS[i], form) for i, form in GPQA_EXTRA]
    for n, (row, form) in enumerate(gpqa):
        gold_index = n % 4
        add(
            "gpqa_diamond",
            {**gpqa_row(*row), "gold_index": gold_index},
            form.replace("{g}", "ABCD"[gold_index])
            .replace("{l}", "abcd"[gold_index])
            .replace("{x}", "ABCD"[(gold_index + 1) % 4]),
        )
    return out


if __name__ == "__main__":
    print(json.dumps(cases(), indent=1))
