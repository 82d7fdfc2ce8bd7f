"""The official Python client against Stitch (run by tools/python-client-check.sh, which says how).

Each check prints what came back and raises if the answer is not what the API promises; the exit status is 0 only
when every check passed.
"""

import json
import os
import sys

import openai

client = openai.OpenAI(base_url=os.environ["STITCH_BASE_URL"], api_key=os.environ["STITCH_API_KEY"], max_retries=0)
example = json.load(open(os.environ["STITCH_EXAMPLE"]))
content = example["messages"][0]["content"]
question = next(p["text"] for p in content if p["type"] == "text")
image = next(p["image_url"]["url"] for p in content if p["type"] == "image_url")
# A bypass header makes every answer run the models (a rerun of this script would otherwise be answered from the cache).
FRESH = {"x-stitch-cache-bypass": "1"}


def stitch(obj):
    """The `stitch` extension object (pydantic keeps unknown fields)."""
    return obj.model_dump()["stitch"]


def check(condition, what):
    if not condition:
        raise AssertionError(what)


def responses_input(detail, url=image):
    return [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": question},
                {"type": "input_image", "image_url": url, "detail": detail},
            ],
        }
    ]


def responses_plain(detail):
    first = client.responses.create(model="stitch-sgl", input=responses_input(detail), extra_headers=FRESH)
    again = client.responses.create(model="stitch-sgl", input=responses_input(detail))  # may be a cache hit
    hit = client.responses.create(model="stitch-sgl", input=responses_input(detail))
    for r in (first, hit):
        s = stitch(r)
        print(
            f"  responses.create detail={detail:<4} -> {r.status} {r.output_text!r} path={s['path']} "
            f"image_detail={s['image_detail']} cache={s['cache']} input_tokens={r.usage.input_tokens} "
            f"details={r.usage.input_tokens_details.model_dump()} output_tokens={r.usage.output_tokens}"
        )
    check(first.object == "response" and first.status in ("completed", "incomplete"), "a response")
    check(stitch(hit)["cache"] == "HIT", "the repeat is answered from the cache")
    check(hit.usage.input_tokens_details.cached_tokens == hit.usage.input_tokens, "a hit caches the whole prompt")
    check(again.output_text == first.output_text == hit.output_text, "one answer")


def responses_streamed(detail):
    stream = client.responses.create(
        model="stitch-sgl", input=responses_input(detail), stream=True, extra_headers=FRESH
    )
    types, deltas, completed = [], [], None
    for event in stream:
        types.append(event.type)
        if event.type == "response.output_text.delta":
            deltas.append(event.delta)
        if event.type in ("response.completed", "response.incomplete"):
            completed = event.response
    print(f"  responses.create stream detail={detail:<4} -> {len(types)} events, {types[0]} … {types[-1]}; "
          f"deltas {deltas!r} = {completed.output_text!r}")
    check(types[:2] == ["response.created", "response.in_progress"], "the stream opens as OpenAI's does")
    check("".join(deltas) == completed.output_text, "the deltas join to the answer")


def responses_https():
    # A local server cannot be reached: the edge refuses a loopback, private or local host (and any port but 443)
    # before connecting, whatever serves there (README, Security). The refusal is what the client gets.
    url = "https://127.0.0.1/scene.png"
    try:
        client.responses.create(model="stitch-sgl", input=responses_input("auto", url))
    except openai.BadRequestError as err:
        print(f"  responses.create https: {url} -> {err.status_code} {err.body.get('code')}: {err.body.get('message')}")
        check(err.body.get("code") == "image_url_refused", "a loopback https: URL is refused")
        return
    raise AssertionError("a loopback https: URL was fetched")


def responses_logprobs():
    r = client.responses.create(
        model="stitch-small",
        input=responses_input("high"),
        include=["message.output_text.logprobs"],
        top_logprobs=2,
    )
    logprobs = r.output[0].content[0].logprobs
    print(f"  responses.create include logprobs -> {[(t.token, round(t.logprob, 4)) for t in logprobs]}")
    check(len(logprobs) > 0 and all(len(t.top_logprobs) == 2 for t in logprobs), "logprobs with 2 alternatives")


def chat_logprobs():
    messages = [{"role": "user", "content": [{"type": "text", "text": question},
                                             {"type": "image_url", "image_url": {"url": image, "detail": "low"}}]}]
    plain = client.chat.completions.create(model="stitch-sgl", messages=messages, logprobs=True, top_logprobs=3)
    tokens = plain.choices[0].logprobs.content
    print(f"  chat.completions.create logprobs -> {plain.choices[0].message.content!r} "
          f"{[(t.token, round(t.logprob, 4), [a.token for a in t.top_logprobs]) for t in tokens]} "
          f"usage={plain.usage.model_dump(exclude_none=True)}")
    for t in tokens:
        check(t.logprob == max(a.logprob for a in t.top_logprobs), "the chosen token is the most likely")
        check(bytes(t.bytes).decode("utf-8", "replace") == t.token or not t.token.isprintable(), "bytes spell it")
    stream = client.chat.completions.create(
        model="stitch-sgl",
        messages=messages,
        logprobs=True,
        top_logprobs=3,
        stream=True,
        stream_options={"include_usage": True},
    )
    streamed, last = [], None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].logprobs:
            streamed.extend(chunk.choices[0].logprobs.content)
        last = chunk
    print(f"  chat.completions.create stream logprobs + include_usage -> {len(streamed)} token(s); last chunk: "
          f"choices={last.choices} usage={last.usage.model_dump(exclude_none=True)}")
    check([t.model_dump() for t in streamed] == [t.model_dump() for t in tokens], "streamed logprobs = plain")
    check(last.choices == [] and last.usage.completion_tokens == plain.usage.completion_tokens, "the usage chunk")


def main():
    print(f"openai {openai.__version__} against {os.environ['STITCH_BASE_URL']}; question {question!r}")
    checks = [
        *[(f"responses plain {d}", lambda d=d: responses_plain(d)) for d in ("low", "high", "auto")],
        *[(f"responses stream {d}", lambda d=d: responses_streamed(d)) for d in ("low", "high", "auto")],
        ("responses https image", responses_https),
        ("responses logprobs", responses_logprobs),
        ("chat logprobs", chat_logprobs),
    ]
    failed = 0
    for name, run in checks:
        try:
            run()
            print(f"ok   {name}")
        except Exception as err:  # noqa: BLE001 - report every check, then fail
            failed += 1
            print(f"FAIL {name}: {type(err).__name__}: {err}")
    print(f"{len(checks) - failed}/{len(checks)} checks passed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
