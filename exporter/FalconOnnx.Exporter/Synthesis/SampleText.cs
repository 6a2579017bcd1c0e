namespace FalconOnnx.Synthesis;

/// <summary>
/// The English text the synthetic tokenizer learns its merges from: a few paragraphs of ordinary prose with
/// numbers, contractions and punctuation, so that common words, their leading spaces and digits get tokens.
/// Written for FalconOnnx; changing it changes every synthetic tokenizer.
/// </summary>
internal static class SampleText
{
    public const string English = """
        The lighthouse stood at the end of the harbour wall, where the road turned to gravel and then to rock.
        Every evening the keeper climbed the one hundred and twelve steps to the lamp room, wound the clockwork,
        trimmed the wick and wrote the weather in a small green book. Wind from the west, light rain, a heavy
        swell. Three fishing boats returned before dark; the fourth came in at half past nine, and the keeper
        wrote that down too, because he wrote everything down.

        People in the town said that he had not missed a single night in forty years. That was not quite true.
        In the winter of 1987 a storm tore the door from its hinges and he spent the night holding a lantern
        in the gallery while the sea came over the wall. The lamp kept turning. The ships kept away from the
        rocks. In the morning the harbour master brought him tea and bread, and they sat on the steps without
        saying much, watching the water settle into long grey lines.

        A language model does something that sounds simpler and is in fact much stranger. It reads a sequence
        of tokens and predicts the next one. The tokens are not letters and not quite words: they are pieces of
        text that appear often enough to deserve their own number. A tokenizer learns them by counting. It
        starts from single bytes, finds the pair of neighbours that occurs most often, merges it into a new
        symbol, and repeats. After a few thousand merges the common words of the language have become single
        tokens, while rare words are still spelled out from smaller pieces.

        The model itself is a stack of layers. Each layer reads the hidden state of every position, mixes in
        information from earlier positions and passes the result on. Attention compares the current position
        with all of the previous ones and takes a weighted average of what it finds. A state space model keeps
        a running summary instead, a fixed amount of memory that it updates at every step. Falcon-H1 runs both
        side by side in every layer and adds their outputs, so it can look back precisely when it needs to and
        still remember the gist of a very long text without storing all of it.

        Training such a model takes weeks on thousands of processors, but running it is a matter of arithmetic.
        Multiply, add, normalise, repeat. The numbers have to be right, though: a single wrong sign in one layer
        turns fluent sentences into noise, and a scale that is off by a factor of two may go unnoticed for a
        while before the answers slowly drift. That is why careful engineers compare their results with a
        reference, token by token, and write down every difference they cannot yet explain.

        On Saturday the market opens at seven. By eight the square is full: bread, cheese, apples, pears and
        plums in wooden boxes, fish on ice, flowers in buckets of water. A kilo of tomatoes costs 3.50, a dozen
        eggs 4.20, and the man who sells honey will let you taste it from a small wooden spoon. Children run
        between the stalls, dogs wait patiently under the tables, and somebody is always playing an accordion
        near the fountain. It's noisy and crowded and nobody would have it any other way.

        When the market closes, the square is swept and washed, and by two o'clock it looks as if nothing had
        happened there at all. The pigeons return. The old men come back to their benches with newspapers and
        argue about the weather, the price of coffee and who won the match on Sunday. They have argued about
        the same things for twenty years, and they will argue about them for twenty more, and they wouldn't
        want it to be different.

        Questions are easy to ask and hard to answer well. What is the capital of France? Paris. How far is
        the moon? About 384,000 kilometres, give or take. Why is the sky blue? Because the air scatters short
        wavelengths of sunlight more than long ones, so blue light reaches our eyes from every direction. A good
        answer is short, correct and honest about what it does not know; a bad one is long, confident and wrong.

        The river rises in the hills to the north and flows south for two hundred kilometres before it reaches
        the sea. In spring, when the snow melts, it is wide and fast and brown with mud; in late summer it shrinks
        to a chain of quiet pools where children swim and herons stand motionless in the shallows. Bridges cross
        it at every town, some of them very old, built of stone by people whose names nobody remembers.

        My grandmother kept a garden behind the house, and she believed that every plant had an opinion. The beans
        wanted to climb, the potatoes wanted to be left alone, and the roses wanted to be admired every morning
        before breakfast. She talked to all of them. When I asked her whether they could hear her, she said that
        it did not matter: talking to them made her look at them, and looking at them was what they really needed.
        I have thought about that answer many times since, usually while looking at something I did not understand.

        The train left the station at ten minutes past six. It was almost empty: a student asleep against the
        window, two nurses going home after the night shift, a man in a dark suit reading the same page of his
        report again and again. Outside, the fields were white with frost and the sun was just coming up over the
        hills, turning the sky from grey to pink to a pale, clean blue. Nobody said a word until the first town,
        where a group of school children got on and the whole carriage woke up at once.

        Good software is written twice. The first version teaches you what the problem really is; the second one
        solves it. Most of the time there is no budget for the second version, so the first one is patched and
        extended until nobody remembers why it works. The best teams I have known were not the fastest ones. They
        were the ones that wrote small tests for every bug they fixed, read each other's code with care, and were
        not afraid to delete a thousand lines when a hundred would do.

        How do you make bread? Mix 500 grams of flour with 350 grams of warm water, 10 grams of salt and a little
        yeast. Knead the dough for ten minutes, until it is smooth and elastic, then cover it and let it rise for
        an hour or two. Shape it into a loaf, let it rise again, and bake it in a hot oven for about forty minutes.
        The crust should be dark and the loaf should sound hollow when you knock on the bottom. Let it cool before
        you cut it, if you can wait that long.

        There are about eight billion people on the planet, and every one of them was a child once. Children ask
        questions all the time: why is the grass green, where does the rain come from, what happens when we sleep,
        how many stars are there in the sky? Some of these questions have simple answers and some of them have
        kept scientists busy for centuries. The important thing is not to stop asking, even when the answers get
        harder to find and the people around you would rather talk about something else.

        The meeting was supposed to last for thirty minutes, and it lasted for two hours. Everyone agreed that the
        project was important, that the deadline was too close and that somebody should do something about it.
        By the end of the afternoon there was a plan: a list of tasks, a name next to each of them, and a date by
        which it would be done. Most of the dates were missed, of course, but the plan was still better than no
        plan at all, because at least everybody knew what they were supposed to be doing.

        Winter came early that year. By the middle of November the lake had frozen and the roads over the mountain
        were closed. The village was quiet and white. People stayed at home, made soup, mended their clothes and
        told old stories by the fire. Once a week a tractor came down from the farm with milk and eggs, and the
        children ran out to meet it as if it were a ship coming home from the other side of the world.

        The library on the corner of the square is open every day except Monday. It has three floors: novels and
        poetry at the bottom, history and science in the middle, and at the top a reading room with tall windows,
        long tables and a clock that has been five minutes slow for as long as anyone can remember. Students come
        to work there in the afternoon, old people come to read the newspapers in the morning, and in the evening
        the librarian walks through the rooms, turning off the lamps one by one, and listens to the building settle.

        "Are you sure?" she asked. "Quite sure," he said, though he wasn't. They had been walking for three hours
        and the map didn't show the path they were on. The light was going. Somewhere below them a dog barked and
        a door closed, and they followed the sound down through the trees until they reached a road, a farm and
        a woman in boots who laughed when she heard where they'd come from and offered them a lift back to town.

        Numbers tell stories too. In 1900 most people lived in the countryside; by 2000 most lived in cities. A
        century ago a letter took weeks to cross the ocean; now a message takes less than a second. The average
        person in a rich country lives about eighty years, which is roughly 29,000 days, or 700,000 hours. It
        sounds like a lot, and it is, but it goes faster than you expect, so spend some of it outside, with friends,
        doing something you will still be glad about in ten years.

        Every morning the baker opens the shop at half past six, and by seven there is a line of people waiting
        outside the door. Some of them buy the same thing every day: one white loaf, two croissants, a small cake
        for later. Others change their minds at the counter, point at something in the window and then at something
        else. The baker never hurries them. She says that choosing bread is one of the few decisions in the day that
        is both important and easy, and that people should be allowed to enjoy it.

        A good map shows what you need and leaves out the rest. It does not draw every tree in the forest or every
        stone on the beach; it shows the roads, the rivers, the towns and the height of the hills, and it trusts
        you to fill in the details when you get there. Explanations work the same way. Say what matters first,
        say it plainly, and give the reader a way to check it for themselves.

        Write the date at the top of the page. Number the lines. Check the units before you check the result.
        If two measurements disagree, measure a third time, and if they still disagree, find out why before you
        go on. Keep the notes simple, keep them honest, and keep them where the next person will find them.
        """;
}
