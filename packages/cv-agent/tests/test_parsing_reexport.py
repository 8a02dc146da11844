"""cv_agent keeps its parsing names; the one implementation is cv_sandbox.protocol's (tested there)."""

from __future__ import annotations

import cv_agent
import cv_agent.agent
import cv_agent.parsing
import cv_sandbox.protocol as protocol


def test_parsing_names_are_the_protocols() -> None:
    for name in ("parse_tool_calls", "ParsedCall", "ParseError"):
        assert getattr(cv_agent.parsing, name) is getattr(protocol, name)
        assert getattr(cv_agent, name) is getattr(protocol, name) and name in cv_agent.__all__
    assert cv_agent.extract_final_answer is protocol.extract_final_answer
    assert cv_agent.agent.extract_final_answer is protocol.extract_final_answer
