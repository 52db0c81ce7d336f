"""The prompt format: what a policy reads and how its answer is read.

Simulation (policies), SFT data, RL data and evaluation all read ONE context format,
:func:`build_messages` (system prompt, then one user turn with the session's earlier pages and
actions inline before the current page), so a model is trained on exactly the text it will see
when it shops. Split by concern:

- :mod:`.render`: the system prompt (``system.md``, its action list rendered from
  ``shop_r1.envs.actions``), one decision's prompt (history and current page) under a token budget;
- :mod:`.budget`: token counting and the search for where a page is cut to fit the budget;
- :mod:`.answer`: the canonical answer :func:`format_answer` (an SFT example's assistant turn);
- :mod:`.parse`: a model's text back to an action (:func:`parse_output`), never raising;
- :mod:`.jsonscan`: the one string-aware JSON scanner (the parser and the rewards use it).
"""

from shop_r1.envs.actions import ParseErrorCode
from shop_r1.simulator.agent.prompt.answer import format_answer
from shop_r1.simulator.agent.prompt.budget import TokenCounter, approximate_tokens, truncate_to_tokens
from shop_r1.simulator.agent.prompt.parse import (
    PARSE_ERROR_CODES,
    Extraction,
    ParsedOutput,
    parse_output,
    parse_output_for,
)
from shop_r1.simulator.agent.prompt.render import (
    ANSWER_REMINDER,
    HISTORY_HEADER,
    OMITTED_MARKER,
    SYSTEM_PROMPT,
    TRUNCATION_MARKER,
    Prompt,
    PromptReport,
    build_messages,
    build_prompt,
    render_system_prompt,
    system_prompt,
)

__all__ = [
    "ANSWER_REMINDER", "Extraction", "HISTORY_HEADER", "OMITTED_MARKER", "PARSE_ERROR_CODES", "ParseErrorCode",
    "ParsedOutput", "Prompt", "PromptReport", "SYSTEM_PROMPT", "TRUNCATION_MARKER", "TokenCounter",
    "approximate_tokens", "build_messages", "build_prompt", "format_answer", "parse_output",
    "parse_output_for", "render_system_prompt", "system_prompt", "truncate_to_tokens",
]
