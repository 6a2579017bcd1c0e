using FalconOnnx.Tests.Support;

namespace FalconOnnx.Tests.Cli;

public sealed class ChatCommandTests
{
    [Test]
    public void Chat_AnswersEachLine_RetriesAndQuits()
    {
        var (exitCode, stdout, stderr) = CliRunner.RunWithInput("Hello falcon\n/retry\nAnd then?\n/quit\n",
            "chat", TinyAExports.TinyWithTokenizer(), "--temperature", "0", "-n", "8", "--threads", "1");
        var prompts = stdout.Split("> ").Length - 1;
        Assert.Multiple(() =>
        {
            Assert.That(exitCode, Is.EqualTo(0), stderr);
            Assert.That(stderr, Is.Empty);
            Assert.That(prompts, Is.EqualTo(4), "one prompt per input line");
            Assert.That(stdout, Does.StartWith("chatting with"));
        });
    }

    [Test]
    public void Chat_RetryWithoutAReply_IsRefusedAndTheChatGoesOn()
    {
        var (exitCode, _, stderr) = CliRunner.RunWithInput("/retry\nHi\n", "chat", TinyAExports.TinyWithTokenizer(), "--temperature", "0", "-n", "4", "--threads", "1");
        Assert.Multiple(() =>
        {
            Assert.That(exitCode, Is.EqualTo(0));
            Assert.That(stderr.Trim(), Is.EqualTo("error: there is no reply to regenerate"));
        });
    }
}
