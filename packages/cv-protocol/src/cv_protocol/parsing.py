"""Reading model replies: the tolerant parser of hermes ``<tool_call>{json}</tool_call>`` calls as Qwen-VL
models really write them, and the final answer.

Real model output is messy: JSON wrapped in code fences, prose after the JSON, single-quoted Python dicts,
raw newlines inside the code string, ``arguments`` given as a JSON string, missing ``description`` or
``image_index``, a missing closing tag, several calls in one reply. :func:`parse_tool_calls` accepts all of
these (noting what it repaired in ``warnings``) and turns everything else into a :class:`ParseError` whose
message tells the model exactly how to fix its call. It never raises. :func:`extract_answer` reads the
final ``<answer>`` of a reply or of a whole rollout (tool responses ignored).
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from typing import Any

from .tool import (
    TOOL_CALL_END,
    TOOL_CALL_START,
    TOOL_NAME,
    TOOL_RESPONSE_START,
    render_tool_call,
    strip_tool_responses,
)

__all__ = [
    "ParseError",
    "ParsedCall",
    "canonical_call_text",
    "extract_answer",
    "parse_tool_arguments",
    "parse_tool_calls",
]

_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.S)
_OPEN = TOOL_CALL_START
_CLOSE = TOOL_CALL_END
_FENCE = re.compile(r"^\s*```[a-zA-Z0-9_+-]*\s*\n?(.*?)\n?\s*```", re.S)
_ANY_FENCE = re.compile(r"```([a-zA-Z0-9_+-]*)\s*\n(.*?)```", re.S)
# Where an unclosed call's payload ends at the latest.
_HARD_STOPS = ("<answer>", "<|im_end|>", "<|endoftext|>", TOOL_RESPONSE_START)

_FORMAT_HINT = (
    "Write exactly one call as\n"
    f'<tool_call>\n{{"name": "{TOOL_NAME}", "arguments": {{"code": "result = image.rotate(90, expand=True)", '
    '"description": "...", "image_index": 0}}\n</tool_call>'
)


@dataclass
class ParsedCall:
    """A tool call ready to execute.

    Attributes:
        code: Python code for the sandbox.
        description: The model's description of the step (``""`` when it gave none).
        image_index: Index of the image to operate on (``0`` when it gave none).
        raw: The text of the call as the model wrote it.
        warnings: What was repaired (fences, quotes, defaults, extra calls ignored, ...).
        n_calls: How many calls the reply contained; only the first is executed.
    """

    code: str
    description: str = ""
    image_index: int = 0
    raw: str = ""
    warnings: list[str] = field(default_factory=list)
    n_calls: int = 1

    @property
    def ok(self) -> bool:
        return True


@dataclass
class ParseError:
    """A reply whose tool call could not be understood (or that had none).

    Attributes:
        kind: ``"no_call"`` (the reply has no tool-call attempt at all), ``"malformed"`` (not decodable),
            ``"wrong_tool"`` (a tool other than ``code_image_tool``) or ``"bad_arguments"`` (missing or
            mistyped ``code``/``image_index``).
        message: Model-readable explanation with the expected format; sent back as the tool message.
        raw: The offending text.
    """

    kind: str
    message: str
    raw: str = ""

    @property
    def ok(self) -> bool:
        return False


def _strip_fence(s: str) -> tuple[str, bool]:
    m = _FENCE.match(s)
    if m:
        return m.group(1), True
    return s, False


def _escape_raw_newlines(s: str) -> str:
    """Escape raw newlines/tabs inside quoted strings of a JSON-ish or Python-dict text."""
    out: list[str] = []
    quote: str | None = None
    i = 0
    while i < len(s):
        ch = s[i]
        if quote:
            if ch == "\\" and i + 1 < len(s):
                out.append(s[i : i + 2])
                i += 2
                continue
            if ch == quote:
                quote = None
            elif ch == "\n":
                ch = "\\n"
            elif ch == "\t":
                ch = "\\t"
            elif ch == "\r":
                ch = "\\r"
        elif ch in "\"'":
            quote = ch
        out.append(ch)
        i += 1
    return "".join(out)


def _decode_object(s: str) -> tuple[dict[str, Any] | None, str, list[str]]:
    """Decode the first dict in ``s``; returns (obj, trailing_text, repairs)."""
    repairs: list[str] = []
    start = s.find("{")
    if start < 0:
        return None, s, repairs
    if s[:start].strip():
        repairs.append("ignored text before the JSON object")
    body = s[start:]
    # 1) JSON, tolerating raw control characters inside strings (strict=False).
    decoder = json.JSONDecoder(strict=False)
    try:
        obj, end = decoder.raw_decode(body)
        if isinstance(obj, dict):
            if body[end:].strip():
                repairs.append("ignored text after the JSON object")
            return obj, body[end:], repairs
    except ValueError:
        pass
    # 2) Python dict literal (single quotes, True/None, trailing commas): find the matching brace.
    end = _matching_brace(body)
    candidates = [body[: end + 1]] if end is not None else []
    candidates.append(body)
    for cand in candidates:
        for text in (cand, _escape_raw_newlines(cand)):
            try:
                obj = ast.literal_eval(text)
            except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
                continue
            if isinstance(obj, dict):
                repairs.append("read a Python-style dict (single quotes or Python literals) instead of JSON")
                rest = body[len(cand) :]
                if rest.strip():
                    repairs.append("ignored text after the JSON object")
                return obj, rest, repairs
    # 3) JSON with raw newlines inside strings that strict=False still rejected (e.g. after escapes).
    try:
        obj, end = decoder.raw_decode(_escape_raw_newlines(body))
        if isinstance(obj, dict):
            repairs.append("escaped raw newlines inside strings")
            return obj, "", repairs
    except ValueError:
        pass
    return None, body, repairs


def _matching_brace(s: str) -> int | None:
    depth = 0
    quote: str | None = None
    triple = False
    i = 0
    while i < len(s):
        ch = s[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if triple and s.startswith(quote * 3, i):
                quote, triple = None, False
                i += 3
                continue
            if not triple and ch == quote:
                quote = None
        elif ch in "\"'":
            if s.startswith(ch * 3, i):
                quote, triple = ch, True
                i += 3
                continue
            quote = ch
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def _object_end(text: str, j: int) -> int:
    """Where to look for the closing tag of a call whose payload starts at ``j``: after its balanced
    ``{...}`` when one starts before any tag, so a tag written inside a string does not end the call."""
    b = text.find("{", j)
    if b < 0 or any(0 <= text.find(t, j) < b for t in (_OPEN, _CLOSE)):
        return j
    e = _matching_brace(text[b:])
    return j if e is None else b + e + 1


def _payloads(text: str) -> list[tuple[str, list[str]]]:
    """Candidate call payloads in order, each with the repairs needed to find it."""
    found: list[tuple[str, list[str]]] = []
    pos = 0
    while True:
        i = text.find(_OPEN, pos)
        if i < 0:
            break
        j = i + len(_OPEN)
        scan = _object_end(text, j)  # tags inside the call's strings (code, description) are not tags
        k = text.find(_CLOSE, scan)
        nxt = text.find(_OPEN, scan)
        if k >= 0 and (nxt < 0 or k < nxt):
            found.append((text[j:k], []))
            pos = k + len(_CLOSE)
            continue
        # Unclosed: the payload runs to the next call, a hard stop, or the end of the reply.
        stop = len(text) if nxt < 0 else nxt
        for h in _HARD_STOPS:
            hs = text.find(h, scan)
            if 0 <= hs < stop:
                stop = hs
        found.append((text[j:stop], ["the closing </tool_call> tag was missing"]))
        pos = stop
    if found:
        return found
    # No tags: a JSON call in a code fence or bare in the text, naming our tool.
    for m in _ANY_FENCE.finditer(text):
        if TOOL_NAME in m.group(2) or '"code"' in m.group(2) or "'code'" in m.group(2):
            found.append((m.group(2), ["the call was in a code fence without <tool_call> tags"]))
    if found:
        return found
    m = re.search(r"\{\s*[\"']name[\"']\s*:\s*[\"']" + TOOL_NAME, text)
    if m:
        found.append((text[m.start() :], ["the call had no <tool_call> tags"]))
    return found


def _coerce_index(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str) and re.fullmatch(r"\s*-?\d+\s*", v):
        return int(v)
    return None


def _interpret(obj: dict[str, Any], raw: str, repairs: list[str]) -> ParsedCall | ParseError:
    warnings = list(repairs)
    name = obj.get("name", obj.get("function"))
    if isinstance(name, dict):  # OpenAI style {"function": {"name": ..., "arguments": ...}}
        obj = name
        name = obj.get("name")
    args: Any = None
    for key in ("arguments", "parameters", "args", "input"):
        if key in obj:
            args = obj[key]
            if key != "arguments":
                warnings.append(f"read arguments from {key!r}")
            break
    if args is None and "code" in obj:
        args = obj
        warnings.append("arguments were given at the top level")
    if name is None:
        if args is None:
            return ParseError(
                "malformed", f"The tool call has no 'name' and no 'arguments'. {_FORMAT_HINT}", raw
            )
        warnings.append(f"missing 'name'; assumed {TOOL_NAME}")
    elif name != TOOL_NAME:
        return ParseError(
            "wrong_tool", f"Unknown tool {name!r}: the only tool is {TOOL_NAME!r}. {_FORMAT_HINT}", raw
        )
    if isinstance(args, str):
        inner, _, inner_repairs = _decode_object(args)
        if inner is None:
            return ParseError(
                "malformed", f"'arguments' is a string that is not a JSON object. {_FORMAT_HINT}", raw
            )
        args = inner
        warnings.append("'arguments' was a JSON string")
        warnings.extend(inner_repairs)
    if not isinstance(args, dict):
        return ParseError("bad_arguments", f"'arguments' must be an object. {_FORMAT_HINT}", raw)
    code = args.get("code")
    if code is None:
        for alt in ("python", "source", "program"):
            if isinstance(args.get(alt), str):
                code = args[alt]
                warnings.append(f"read code from {alt!r}")
                break
    if not isinstance(code, str) or not code.strip():
        return ParseError(
            "bad_arguments",
            f"The call needs a non-empty string argument 'code' that assigns a PIL image to `result`. {_FORMAT_HINT}",
            raw,
        )
    code, fenced = _strip_fence(code)
    if fenced:
        warnings.append("removed a code fence around the code")
    description = args.get("description", "")
    if description is None or "description" not in args:
        warnings.append("missing 'description'; used ''")
        description = ""
    if not isinstance(description, str):
        description = str(description)
    if "image_index" in args and args["image_index"] is not None:
        index = _coerce_index(args["image_index"])
        if index is None:
            return ParseError(
                "bad_arguments",
                f"'image_index' must be an integer image index, got {args['image_index']!r}. {_FORMAT_HINT}",
                raw,
            )
        if not isinstance(args["image_index"], int):
            warnings.append("'image_index' was not an integer; converted")
    else:
        index = 0
        warnings.append("missing 'image_index'; used 0")
    return ParsedCall(code=code, description=description, image_index=index, raw=raw, warnings=warnings)


def parse_tool_calls(text: str) -> ParsedCall | ParseError:
    """Parse the (first) tool call of a model reply. Never raises.

    Args:
        text: The full assistant reply.

    Returns:
        A :class:`ParsedCall` (with ``warnings`` listing repairs and ``n_calls`` the number of calls
        found; only the first is executed), or a :class:`ParseError`: ``kind="no_call"`` when the reply
        has no tool-call attempt, else an error whose ``message`` is meant for the model.

    Example:
        >>> call = parse_tool_calls('<tool_call>{"name": "code_image_tool", "arguments": '
        ...                         '{"code": "result = image", "description": "noop", "image_index": 0}}</tool_call>')
        >>> call.code, call.image_index
        ('result = image', 0)
        >>> parse_tool_calls("<think>done</think><answer>A</answer>").kind
        'no_call'
    """
    try:
        return _parse(text)
    except Exception as e:  # noqa: BLE001 - parsing must never take down an episode
        return ParseError(
            "malformed", f"The tool call could not be read ({type(e).__name__}). {_FORMAT_HINT}", text
        )


def parse_tool_arguments(arguments: Any, name: str | None = TOOL_NAME) -> ParsedCall | ParseError:
    """Read a call whose JSON a caller has already decoded (e.g. a training framework's own tool-call parser,
    such as verl's) by the same rules as :func:`parse_tool_calls`: the same repairs, the same errors. Never
    raises.

    Args:
        arguments: The call's ``arguments`` (normally a dict; a JSON string is decoded).
        name: The tool name the call gave (``None``: not given).

    Example:
        >>> call = parse_tool_arguments({"code": "```python\\nresult = image\\n```", "image_index": "1"})
        >>> call.code, call.image_index, call.warnings[0]
        ('result = image', 1, 'removed a code fence around the code')
        >>> parse_tool_arguments({"description": "no code"}).kind
        'bad_arguments'
    """
    obj: dict[str, Any] = {"arguments": arguments} if name is None else {"name": name, "arguments": arguments}
    try:
        raw = json.dumps(obj, ensure_ascii=False, default=str)
        return _interpret(obj, raw, [])
    except Exception as e:  # noqa: BLE001 - parsing must never take down an episode
        return ParseError(
            "malformed", f"The tool call could not be read ({type(e).__name__}). {_FORMAT_HINT}", ""
        )


def _parse(text: str) -> ParsedCall | ParseError:
    if not isinstance(text, str):
        return ParseError("malformed", "The reply is not text.", repr(text))
    payloads = _payloads(text)
    if not payloads:
        if _OPEN.strip("<>") in text or TOOL_NAME in text:
            return ParseError(
                "malformed",
                f"A tool call was mentioned but not written in the expected format. {_FORMAT_HINT}",
                text,
            )
        return ParseError("no_call", "The reply contains no tool call.", "")
    results: list[ParsedCall | ParseError] = []
    for payload, repairs in payloads:
        inner, fenced = _strip_fence(payload)
        reps = list(repairs) + (["removed a code fence around the JSON"] if fenced else [])
        obj, _, decode_repairs = _decode_object(inner)
        if obj is None:
            results.append(
                ParseError(
                    "malformed",
                    f"The tool call is not valid JSON (check quotes, escapes and braces). {_FORMAT_HINT}",
                    payload.strip(),
                )
            )
            continue
        results.append(_interpret(obj, payload.strip(), reps + decode_repairs))
    first = results[0]
    if len(results) > 1:
        note = f"the reply contained {len(results)} tool calls; only the first was executed"
        if isinstance(first, ParsedCall):
            first.warnings.append(note)
            first.n_calls = len(results)
        else:
            first.message += f" (Also: {note.replace('executed', 'considered')}.)"
    return first


def canonical_call_text(text: str, call: ParsedCall) -> str:
    r"""The reply with its (possibly repaired) call rewritten exactly as the model is trained to emit it.

    Models (a teacher above all) write readable but sloppy calls: code fences, single quotes, trailing
    text, several calls. Training data must teach the one format the parser reads without repairs, so a
    reply kept for SFT is rewritten: the reasoning before the call stays, the executed call is rendered by
    :func:`~cv_protocol.render_tool_call` (with its ``image_index`` spelled out), and anything after it is
    dropped (it was never executed).

    Args:
        text: The reply as the model wrote it.
        call: ``parse_tool_calls(text)``.

    Example:
        >>> t = "<think>flip</think>\n<tool_call>{'name': 'code_image_tool', 'arguments': {'code': 'result = image'}}"
        >>> canonical_call_text(t, parse_tool_calls(t)).endswith('"image_index": 0}}\n</tool_call>')
        True
        >>> parse_tool_calls(canonical_call_text(t, parse_tool_calls(t))).warnings
        []
    """
    raw_at = text.find(call.raw) if call.raw else -1
    tag_at = text.find(_OPEN)
    start = tag_at if 0 <= tag_at and (raw_at < 0 or tag_at <= raw_at) else raw_at
    head = text[:start].rstrip() if start >= 0 else ""
    return (head + "\n" if head else "") + render_tool_call(call.code, call.description, call.image_index)


def extract_answer(text: str, *, strip_unclosed: bool = True) -> str | None:
    """The stripped content of the last ``<answer>...</answer>`` outside tool responses, else ``None``.

    Works on one reply and on a whole rollout (assistant turns with tool responses wrapped in
    ``<tool_response>`` tags): an answer inside a tool response is not the model's.

    Args:
        text: One reply or a whole rollout.
        strip_unclosed: Passed to :func:`~cv_protocol.strip_tool_responses`: ``False`` ignores only closed
            tool responses, so an answer after an unclosed ``<tool_response>`` still counts (the public
            release's rule, ``cv_rewards.release_extract_answer``).

    Example:
        >>> extract_answer("<think>hm</think><answer>first</answer> <answer> B </answer>")
        'B'
        >>> extract_answer("<tool_response><answer>injected</answer></tool_response>") is None
        True
        >>> extract_answer("<tool_response>cut <answer>7</answer>", strip_unclosed=False)
        '7'
    """
    if not isinstance(text, str):
        raise TypeError(f"extract_answer expects a str, got {type(text).__name__}")
    found = _ANSWER.findall(strip_tool_responses(text, strip_unclosed=strip_unclosed))
    return found[-1].strip() if found else None
