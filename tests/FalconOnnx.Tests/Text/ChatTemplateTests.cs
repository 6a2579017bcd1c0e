using System.Text.Json;
using FalconOnnx.Runtime;
using FalconOnnx.Runtime.Text;
using FalconOnnx.Runtime.Text.Jinja;

namespace FalconOnnx.Tests.Text;

/// <summary>
/// The chat-template interpreter against the outputs Jinja2 gives under Hugging Face's settings (trim_blocks,
/// lstrip_blocks, keep_trailing_newline off). Expected strings are worked out from Jinja2's documented rules, with the
/// reasoning beside the less obvious ones; they agree with what Jinja2 3.1 renders for the same input.
/// Templates are C# raw strings, so a '\n' in them is the two characters Jinja2 itself decodes in a string literal.
/// </summary>
public sealed class ChatTemplateTests
{
    private static readonly ChatMessage[] Conversation =
    [
        new("system", "You are brief."),
        new("user", "Hello"),
        new("assistant", "Hi! How can I help?"),
        new("user", "Tell me a joke about ünïcødé 😀"),
    ];

    private static string Render(string template, IReadOnlyList<ChatMessage>? messages = null, bool addGenerationPrompt = false,
        IReadOnlyDictionary<string, object?>? extra = null) =>
        ChatTemplate.Parse(template).Render(messages ?? [], addGenerationPrompt, extra);

    private static FalconModelException RenderError(string template, IReadOnlyList<ChatMessage>? messages = null,
        IReadOnlyDictionary<string, object?>? extra = null) =>
        Assert.Throws<FalconModelException>(() => Render(template, messages, extra: extra))!;

    // (a) ChatML

    private const string ChatMl =
        """{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}""";

    [Test]
    public void ChatMl_WithGenerationPrompt_IsByteExact()
    {
        string expected =
            "<|im_start|>system\nYou are brief.<|im_end|>\n" +
            "<|im_start|>user\nHello<|im_end|>\n" +
            "<|im_start|>assistant\nHi! How can I help?<|im_end|>\n" +
            "<|im_start|>user\nTell me a joke about ünïcødé 😀<|im_end|>\n" +
            "<|im_start|>assistant\n";
        Assert.That(Render(ChatMl, Conversation, addGenerationPrompt: true), Is.EqualTo(expected));
    }

    [Test]
    public void ChatMl_WithoutGenerationPrompt_EndsAfterLastTurn()
    {
        string rendered = Render(ChatMl, Conversation[..2]);
        Assert.That(rendered, Is.EqualTo("<|im_start|>system\nYou are brief.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n"));
    }

    [Test]
    public void ChatMl_IndentedHuggingFaceStyle_LeavesNoIndentation()
    {
        // Every tag strips the whitespace before it ('-' or lstrip_blocks) and trim_blocks drops the newline after
        // each block tag, so only the quoted strings reach the output.
        const string template = """
            {%- for message in messages %}
                {{- '<|im_start|>' + message.role + '\n' }}
                {%- if message.content %}
                    {{- message.content }}
                {%- endif %}
                {{- '<|im_end|>\n' }}
            {%- endfor %}

            """;
        string rendered = Render(template, [new("user", "Hi"), new("assistant", "")]);
        Assert.That(rendered, Is.EqualTo("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<|im_end|>\n"));
    }

    // (b) a system prompt split off the conversation

    private const string SystemPromptTemplate = """
        {%- if messages[0]['role'] == 'system' %}
            {%- set system_message = messages[0]['content'] %}
            {%- set loop_messages = messages[1:] %}
        {%- else %}
            {%- set system_message = 'You are a helpful assistant.' %}
            {%- set loop_messages = messages %}
        {%- endif %}
        {%- for message in loop_messages %}
            {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
                {{- raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}
            {%- endif %}
            {%- if loop.index0 == 0 %}
                {%- set content = '<<SYS>>\n' + system_message + '\n<</SYS>>\n\n' + message['content'] %}
            {%- else %}
                {%- set content = message['content'] %}
            {%- endif %}
            {%- if message['role'] == 'user' %}
                {{- bos_token + '[INST] ' + content | trim + ' [/INST]' }}
            {%- else %}
                {{- ' ' + content | trim + ' ' + eos_token }}
            {%- endif %}
        {%- endfor %}
        """;

    private static readonly Dictionary<string, object?> LlamaTwoTokens = new() { ["bos_token"] = "<s>", ["eos_token"] = "</s>" };

    [Test]
    public void SystemPrompt_IsFoldedIntoFirstUserTurn()
    {
        ChatMessage[] messages = [new("system", "Be brief."), new("user", "Hi"), new("assistant", " Hello! "), new("user", "Bye")];
        string rendered = Render(SystemPromptTemplate, messages, extra: LlamaTwoTokens);
        Assert.That(rendered, Is.EqualTo("<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello! </s><s>[INST] Bye [/INST]"));
    }

    [Test]
    public void SystemPrompt_DefaultsWhenAbsent()
    {
        string rendered = Render(SystemPromptTemplate, [new("user", "Hi")], extra: LlamaTwoTokens);
        Assert.That(rendered, Is.EqualTo("<s>[INST] <<SYS>>\nYou are a helpful assistant.\n<</SYS>>\n\nHi [/INST]"));
    }

    [Test]
    public void SystemPrompt_RejectsRolesOutOfOrder()
    {
        var error = RenderError(SystemPromptTemplate, [new("user", "a"), new("user", "b")], LlamaTwoTokens);
        Assert.That(error.Message, Does.Contain("Conversation roles must alternate user/assistant/user/assistant/..."));
    }

    // (c) Llama 3

    [Test]
    public void LlamaThree_PrefixesBosAndTrimsContent()
    {
        const string template =
            """{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}""";
        ChatMessage[] messages = [new("system", "  Be brief.  "), new("user", "Hi\n")];
        string rendered = Render(template, messages, addGenerationPrompt: true, new Dictionary<string, object?> { ["bos_token"] = "<|begin_of_text|>" });
        Assert.That(rendered, Is.EqualTo(
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>" +
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>" +
            "<|start_header_id|>assistant<|end_header_id|>\n\n"));
    }

    // (d) ChatML with tools, in the style of Qwen2.5

    private const string ToolTemplate = """
        {%- if tools %}
            {{- '<|im_start|>system\n' }}
            {%- if messages[0].role == 'system' %}
                {{- messages[0].content + '\n\n' }}
            {%- endif %}
            {{- '# Tools\n<tools>' }}
            {%- for tool in tools %}
                {{- '\n' + tool | tojson }}
            {%- endfor %}
            {{- '\n</tools><|im_end|>\n' }}
        {%- elif messages[0].role == 'system' %}
            {{- '<|im_start|>system\n' + messages[0].content + '<|im_end|>\n' }}
        {%- endif %}
        {%- set ns = namespace(tool_turns=0) %}
        {%- for message in messages %}
            {%- if message.role not in ['system', 'user', 'assistant', 'tool'] %}
                {{- raise_exception('Unexpected role: ' ~ message.role) }}
            {%- elif message.role == 'system' %}
                {%- if not loop.first %}{{- raise_exception('The system message must come first') }}{%- endif %}
            {%- elif message.role == 'assistant' and message.tool_calls is defined %}
                {{- '<|im_start|>assistant' }}
                {%- if message.content %}{{- '\n' + message.content }}{%- endif %}
                {%- for call in message.tool_calls %}
                    {{- '\n<tool_call>\n' + {'name': call.function.name, 'arguments': call.function.arguments} | tojson + '\n</tool_call>' }}
                {%- endfor %}
                {{- '<|im_end|>\n' }}
            {%- elif message.role == 'tool' %}
                {%- set ns.tool_turns = ns.tool_turns + 1 %}
                {%- if loop.previtem is not defined or loop.previtem.role != 'tool' %}{{- '<|im_start|>user' }}{%- endif %}
                {{- '\n<tool_response>\n' + message.content + '\n</tool_response>' }}
                {%- if loop.last or loop.nextitem.role != 'tool' %}{{- '<|im_end|>\n' }}{%- endif %}
            {%- else %}
                {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' }}
            {%- endif %}
        {%- endfor %}
        {%- if add_generation_prompt %}
            {{- '<|im_start|>assistant\n' }}
        {%- endif %}
        {{- '<!-- tool turns: ' ~ ns.tool_turns ~ ' -->' if ns.tool_turns }}
        """;

    private static readonly ChatMessage[] ToolConversation =
    [
        new("system", "You are a weather bot."),
        new("user", "Weather in Paris?"),
        new("assistant", null)
        {
            ToolCalls = [new ChatToolCall("get_weather", new Dictionary<string, object?> { ["city"] = "Paris", ["days"] = 2 }) { Id = "call-1" }],
        },
        new("tool", """{"temp_c": 21}""") { ToolCallId = "call-1" },
        new("tool", "sunny"),
        new("assistant", "It is 21 °C and sunny in Paris."),
        new("user", "Thanks!"),
    ];

    [Test]
    public void ToolTemplate_RendersToolsCallsAndResponses()
    {
        using JsonDocument tools = JsonDocument.Parse("""
            [{"type": "function", "function": {"name": "get_weather", "description": "Current weather ☀ for a city",
              "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
            """);
        string rendered = Render(ToolTemplate, ToolConversation, addGenerationPrompt: true,
            new Dictionary<string, object?> { ["tools"] = tools.RootElement });

        // tojson is json.dumps as Hugging Face calls it: ", " and ": " separators, keys in their order, non-ASCII kept.
        // The two tool turns share one user turn: the first opens it (its previtem is no tool), the last closes it.
        Assert.That(rendered, Is.EqualTo(
            "<|im_start|>system\nYou are a weather bot.\n\n# Tools\n<tools>\n" +
            """{"type": "function", "function": {"name": "get_weather", "description": "Current weather ☀ for a city", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}""" +
            "\n</tools><|im_end|>\n" +
            "<|im_start|>user\nWeather in Paris?<|im_end|>\n" +
            "<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": 2}}\n</tool_call><|im_end|>\n" +
            "<|im_start|>user\n<tool_response>\n{\"temp_c\": 21}\n</tool_response>\n<tool_response>\nsunny\n</tool_response><|im_end|>\n" +
            "<|im_start|>assistant\nIt is 21 °C and sunny in Paris.<|im_end|>\n" +
            "<|im_start|>user\nThanks!<|im_end|>\n" +
            "<|im_start|>assistant\n" +
            "<!-- tool turns: 2 -->"));
    }

    [Test]
    public void ToolTemplate_WithoutTools_HasPlainSystemTurn()
    {
        // tools is none unless given, as transformers passes it, so '{% if tools %}' is false.
        string rendered = Render(ToolTemplate, Conversation[..2]);
        Assert.That(rendered, Is.EqualTo("<|im_start|>system\nYou are brief.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n"));
    }

    [Test]
    public void ToolTemplate_RaisesOnUnknownRole()
    {
        var error = RenderError(ToolTemplate, [new("robot", "beep")]);
        Assert.That(error.Message, Does.Contain("Unexpected role: robot"));
    }

    // (e) whitespace control, trim_blocks and lstrip_blocks

    [TestCase("{% if true %}\nyes\n{% endif %}\nafter", "yes\nafter",
        Description = "trim_blocks: the newline right after each block tag is dropped, the one after 'yes' stays")]
    [TestCase("<ul>\n    {% for i in [1, 2] %}\n    <li>{{ i }}</li>\n    {% endfor %}\n</ul>", "<ul>\n    <li>1</li>\n    <li>2</li>\n</ul>",
        Description = "lstrip_blocks: the indentation before a block tag alone on its line goes, the text's own indentation stays")]
    [TestCase("  {{ 'v' }}\n  {% if true %}z{% endif %}", "  v\nz",
        Description = "neither setting touches '{{ }}': its indentation and the newline after it stay; the block tag's indentation goes")]
    [TestCase("text  {% if true %}x{% endif %}.", "text  x.",
        Description = "lstrip_blocks only strips when the tag is preceded by nothing but whitespace on its line")]
    [TestCase("a   {%- if true -%}   b   {%- endif -%}   c", "abc",
        Description = "'-' strips all whitespace on its side of the tag")]
    [TestCase("a\n\n  {{- 'x' -}}\n\n  b", "axb",
        Description = "'-' on a variable tag strips across newlines too")]
    [TestCase("  {%+ if true %}x{% endif +%}\ny", "  x\ny",
        Description = "'+' opts a tag out of lstrip_blocks (before) and trim_blocks (after)")]
    [TestCase("a\n  {# a comment #}\nb", "a\nb",
        Description = "comments are lstripped and trimmed like block tags")]
    [TestCase("line\n", "line",
        Description = "keep_trailing_newline is off: the template's final newline is dropped")]
    [TestCase("line\n\n", "line\n",
        Description = "only one final newline is dropped")]
    [TestCase("a\r\n{% if true %}\r\nb\r\n{% endif %}\r\n", "a\nb\n",
        Description = "line breaks become '\\n' before trim_blocks applies")]
    [TestCase("{% raw %}\n{{ not evaluated }}\n{% endraw %}\nafter", "\n{{ not evaluated }}\nafter",
        Description = "raw text is kept verbatim; trim_blocks applies after endraw but not after raw")]
    [TestCase("{% for i in [1, 2] %}\n  {{ i }}\n{% endfor %}\n", "  1\n  2\n",
        Description = "the body keeps its own lines: only the newlines after the for and endfor tags go")]
    [TestCase("x\n   {% if false %}no{% else %}\n   yes\n   {% endif %}\n", "x\n   yes\n",
        Description = "the else tag follows other text on its line, so only trim_blocks acts on it")]
    public void Whitespace_FollowsJinjaRules(string template, string expected) =>
        Assert.That(Render(template), Is.EqualTo(expected));

    // (f) syntax errors

    [TestCase("{% if x %}", 1, 11, "the 'if' at line 1, column 1 is not closed by 'endif'")]
    [TestCase("first\nsecond\n  {{ a b }}", 3, 8, "expected '}}' but found 'b'")]
    [TestCase("{{ 'abc }}", 1, 4, "string literal is not closed")]
    [TestCase("{% foo %}", 1, 4, "unknown tag 'foo'")]
    [TestCase("{% if x %}{% endfor %}", 1, 14, "unexpected 'endfor'")]
    [TestCase("{{ x | }}", 1, 8, "expected a filter name")]
    [TestCase("{% for x in %}{% endfor %}", 1, 13, "expected an expression")]
    [TestCase("{# never closed", 1, 1, "comment is not closed")]
    [TestCase("{{ (1 }}", 1, 7, "unexpected '}', expected ')'")]
    [TestCase("{% include 'other.jinja' %}", 1, 4, "'include' tag is not supported")]
    [TestCase("{% break %}", 1, 4, "only allowed inside a 'for' loop")]
    [TestCase("{{ 'a' ! 'b' }}", 1, 8, "unexpected character '!'")]
    public void SyntaxError_IsOneLineNamingLineAndColumn(string template, int line, int column, string problem)
    {
        var error = Assert.Throws<FalconModelException>(() => ChatTemplate.Parse(template))!;
        Assert.Multiple(() =>
        {
            Assert.That(error.Message.Split('\n'), Has.Length.EqualTo(1), "one line");
            Assert.That(error.Message, Does.StartWith($"Chat template syntax error at line {line}, column {column}: "));
            Assert.That(error.Message, Does.Contain(problem));
        });
    }

    // (g) raise_exception

    [Test]
    public void RaiseException_SurfacesTheTemplatesMessage()
    {
        var error = RenderError("{% if messages | length == 0 %}{{ raise_exception('No messages given: ' ~ 0) }}{% endif %}");
        Assert.That(error.Message, Is.EqualTo("Chat template raised an error: No messages given: 0"));
    }

    // Runtime errors, expressions and the rest of the supported language

    [Test]
    public void RuntimeError_NamesPosition()
    {
        var error = RenderError("ok\n{{ 'a' + 1 }}");
        Assert.That(error.Message, Is.EqualTo("Chat template error at line 2, column 4: unsupported operand type(s) for +: 'str' and 'int'"));
    }

    [TestCase("{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 / 2 }} {{ 4 / 2 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 1.5 + 1 }}", "3 -4 3.5 2.0 2 1024 2.5",
        Description = "Python arithmetic: / always gives a float, // and % floor")]
    [TestCase("{{ 1e16 }} {{ 1e15 }} {{ 0.1 + 0.2 }} {{ 1e-5 }} {{ 0.0001 }}", "1e+16 1000000000000000.0 0.30000000000000004 1e-05 0.0001",
        Description = "floats print as Python's repr")]
    [TestCase("{{ 'a' ~ 1 ~ none ~ true ~ missing ~ [1, 'x'] ~ {'k': none} ~ (1,) }}", "a1NoneTrue[1, 'x']{'k': None}(1,)",
        Description = "~ joins Python's str() of each side; undefined is empty")]
    [TestCase("{{ 1 < 2 < 3 }} {{ 1 == 1.0 }} {{ 'b' in 'abc' }} {{ 2 not in [1, 3] }} {{ 'k' in {'k': 1} }}", "True True True True True")]
    [TestCase("{{ 0 or 'x' }} {{ 1 and 'y' }} {{ 'p' if 0 else 'q' }} [{{ 'never' if false }}]", "x y q []")]
    [TestCase("""{{ 'it\'s' }} {{ "tab\there" }} {{ '\u00e9\x41' }} {{ 'adj' 'acent' }}""", "it's tab\there éA adjacent")]
    [TestCase("{{ [1, 2, 3, 4][1:] }} {{ [1, 2, 3][-1] }} {{ 'hello'[::-1] }} {{ 'hello'[1:3] }} {{ '😀ab' | length }}", "[2, 3, 4] 3 olleh el 3",
        Description = "slices and lengths count code points, as Python does")]
    [TestCase("{{ '  x  ' | trim }}|{{ 'Hi' | upper }} {{ 'Hi' | lower }} {{ 'hello world' | capitalize }} {{ 'a-b c' | title }}", "x|HI hi Hello world A-B C")]
    [TestCase("{{ [1, 2] | join(', ') }} {{ 'ab' | list }} {{ [3, 1] | first }} {{ [3, 1] | last }} {{ 'aXbX' | replace('X', '-') }}", "1, 2 ['a', 'b'] 3 1 a-b-")]
    [TestCase("{{ 12 | string }} {{ '42' | int + 1 }} {{ '4.7' | int }} {{ 'x' | int }} {{ none | default('d') }} {{ missing | default('d') }} {{ '' | default('d', true) }}",
        "12 43 4 0 None d d", Description = "default replaces undefined only, unless boolean=true")]
    [TestCase("{% for k, v in {'a': 1, 'b': 2} | items %}{{ k }}={{ v }};{% endfor %} {% for k, v in {'c': 3}.items() %}{{ k }}{{ v }}{% endfor %}", "a=1;b=2; c3")]
    [TestCase("{{ {'a': 1, 'b': [true, none], 'c': 'é \"q\" </x>'} | tojson }}", """{"a": 1, "b": [true, null], "c": "é \"q\" </x>"}""",
        Description = "Hugging Face's tojson: json.dumps without ASCII or HTML escaping")]
    [TestCase("{{ {'a': [1, {}], 'b': []} | tojson(indent=2) }}", "{\n  \"a\": [\n    1,\n    {}\n  ],\n  \"b\": []\n}")]
    [TestCase("{{ ' a  b '.split() }} {{ 'a,b'.split(',') }} {{ 'xhix'.strip('x') }} {{ 'abc'.startswith('a') }} {{ 'abc'.endswith(('x', 'c')) }} {{ 'hi there'.title() }}",
        "['a', 'b'] ['a', 'b'] hi True True Hi There")]
    [TestCase("{% set d = {'a': 1} %}{{ d.get('a') }} {{ d.get('z', 'none here') }} {{ d.keys() | list }} {{ d.values() | list }}", "1 none here ['a'] [1]")]
    [TestCase("{{ 1 is number }} {{ true is number }} {{ 1 is integer }} {{ 'a' is string }} {{ {} is mapping }} {{ [] is iterable }} {{ none is none }} {{ 1 is not none }} {{ 9 is divisibleby 3 }}",
        "True True True True True True True True True", Description = "bool is a number in Python")]
    [TestCase("{{ range(3) | list }} {{ range(1, 7, 2) | list }} {{ range(3, 0, -1) | list }}", "[0, 1, 2] [1, 3, 5] [3, 2, 1]")]
    public void Expression_MatchesJinja(string template, string expected) =>
        Assert.That(Render(template), Is.EqualTo(expected));

    [Test]
    public void Undefined_IsEmptyFalseAndTestable()
    {
        // Attributes of undefined values are undefined too, so deep probes never fail.
        const string template =
            "[{{ missing }}] {{ missing is defined }} {{ missing.deeper.still is defined }} {{ messages[0].nope is defined }} " +
            "{{ missing | length }} {% for x in missing %}x{% else %}empty{% endfor %} {{ 'y' if missing else 'n' }}";
        Assert.That(Render(template, Conversation), Is.EqualTo("[] False False False 0 empty n"));
    }

    [Test]
    public void Loop_ExposesItsVariables()
    {
        const string template =
            "{% for x in ['a', 'b', 'c'] %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.first }}{{ loop.last }}{{ loop.length }}" +
            "{{ loop.previtem }}{{ loop.nextitem }};{% endfor %}";
        Assert.That(Render(template), Is.EqualTo("103TrueFalse3b;212FalseFalse3ac;321FalseTrue3b;"));
    }

    [Test]
    public void Loop_InlineFilter_CountsOnlyKeptItems()
    {
        const string template = "{% for m in messages if m.role != 'system' %}{{ loop.index }}/{{ loop.length }}:{{ m.role }}{{ ',' if not loop.last }}{% endfor %}";
        Assert.That(Render(template, Conversation), Is.EqualTo("1/3:user,2/3:assistant,3/3:user"));
    }

    [Test]
    public void Loop_BreakContinueElseAndUnpacking()
    {
        Assert.Multiple(() =>
        {
            Assert.That(Render("{% for i in range(10) %}{% if i == 1 %}{% continue %}{% endif %}{% if i == 4 %}{% break %}{% endif %}{{ i }}{% endfor %}"),
                Is.EqualTo("023"));
            Assert.That(Render("{% for x in [] %}x{% else %}none{% endfor %}"), Is.EqualTo("none"));
            Assert.That(Render("{% for a, b in [(1, 2), [3, 4]] %}{{ a }}-{{ b }} {% endfor %}"), Is.EqualTo("1-2 3-4 "));
        });
    }

    [Test]
    public void Set_InsideLoopIsLocal_NamespaceCarriesOut()
    {
        // A plain set in a loop body lasts for that iteration only; namespace attributes are how templates count.
        const string template =
            "{% set x = 0 %}{% set ns = namespace(users=0) %}{% for m in messages %}{% set x = x + 1 %}" +
            "{% if m.role == 'user' %}{% set ns.users = ns.users + 1 %}{% endif %}{% endfor %}{{ x }} {{ ns.users }}";
        Assert.That(Render(template, Conversation), Is.EqualTo("0 2"));
    }

    [Test]
    public void Filters_SelectAndMapMessages()
    {
        const string template =
            "{{ messages | selectattr('role', 'equalto', 'user') | map(attribute='content') | join(' | ') }}; " +
            "{{ messages | rejectattr('role', 'equalto', 'user') | map(attribute='role') | list }}";
        Assert.That(Render(template, Conversation),
            Is.EqualTo("Hello | Tell me a joke about ünïcødé 😀; ['system', 'assistant']"));
    }

    [Test]
    public void Macros_TakeDefaultsAndRecurse()
    {
        const string template = """
            {%- macro show(value) -%}
                {%- if value is mapping -%}
                    {{- '{' }}{% for k, v in value.items() %}{{ k }}={{ show(v) }}{{ ',' if not loop.last }}{% endfor %}{{ '}' -}}
                {%- else -%}
                    {{- value -}}
                {%- endif -%}
            {%- endmacro -%}
            {%- macro greet(name, punctuation='!') %}Hi {{ name }}{{ punctuation }}{% endmacro -%}
            {{ show({'a': {'b': 1}, 'c': 2}) }} {{ greet('Bo') }} {{ greet('Al', punctuation='?') }}
            """;
        Assert.That(Render(template), Is.EqualTo("{a={b=1},c=2} Hi Bo! Hi Al?"));
    }

    [Test]
    public void SetBlock_AndGenerationTag_RenderTheirBodies()
    {
        // {% generation %} marks assistant text for Hugging Face's training masks and renders as its body.
        Assert.That(Render("{% set text | upper %}loud{% endset %}{{ text }} {% generation %}said{% endgeneration %}"),
            Is.EqualTo("LOUD said"));
    }

    [Test]
    public void StrftimeNow_ReadsTheClock()
    {
        var template = ChatTemplate.Parse("{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%-d %B, %H:%M') }}")
            .WithClock(new FixedClock(new DateTimeOffset(2025, 3, 5, 14, 7, 0, TimeSpan.Zero)));
        Assert.That(template.Render([], addGenerationPrompt: false), Is.EqualTo("05 Mar 2025|5 March, 14:07"));
    }

    [Test]
    public void ExtraVariables_AreConvertedAndCannotReplaceMessages()
    {
        var extra = new Dictionary<string, object?>
        {
            ["numbers"] = new[] { 1, 2 },
            ["settings"] = new Dictionary<string, object?> { ["on"] = true, ["ratio"] = 0.5 },
        };
        Assert.Multiple(() =>
        {
            Assert.That(Render("{{ numbers | sum }} {{ settings.on }} {{ settings | tojson }}", extra: extra),
                Is.EqualTo("3 True {\"on\": true, \"ratio\": 0.5}"));
            Assert.That(RenderError("x", extra: new Dictionary<string, object?> { ["messages"] = "no" }).Message, Does.Contain("'messages'"));
            Assert.That(RenderError("x", extra: new Dictionary<string, object?> { ["clock"] = new object() }).Message, Does.Contain("'clock'"));
        });
    }

    private sealed class FixedClock(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;

        public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;
    }
}
