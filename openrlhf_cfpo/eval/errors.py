"""The one exception type the eval CLI turns into clear error lines, one line per problem."""


class EvalError(Exception):
    """Problems the user can fix; each message says what is wrong and what to do."""

    def __init__(self, *problems: str):
        super().__init__("; ".join(problems))
        self.problems = problems
