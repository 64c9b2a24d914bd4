/*  nf_ai: see nf_ai.h. The built-in generator writes from the video: its
    transcript's key phrases (over the whole text, and per fifth for the
    outline), its opening words (quoted in the hook), its metrics (the
    hook's figure, "why it worked"). The sentence frames come from pools,
    taken by the outlier's rank so that a job's outliers do not share
    them; the same input always gives the same text (golden-tested in
    tests/test_stages.c). */
#define _GNU_SOURCE /* qsort_r */
#include "nf_ai.h"
#include "nf_util.h"

#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const s_stop =
    "the and for that this with you your are was were have has had not but all can will just "
    "what when where who why how which there their them they then than its it's i'm you're "
    "we're don't can't that's there's from into onto about out our ours his her hers she him "
    "one two get got going gonna want wanna like really very much more most some any also "
    "too here now well yeah okay right know think thing things way lot lots let let's say said "
    "see look make made even still because over under again back only own same each every "
    "other such being been did does doing would could should might must shall may these "
    "those him himself herself itself myself yourself ourselves themselves video videos "
    "today guys channel subscribe something anything everything nothing actually basically "
    "once instead without felt happens happened realising realizing probably exactly whole "
    "started finally clicked real first time times";

void
nf_ai_free (nf_ai_t *ai)
{
    for (int i = 0; i < NF_AI_TITLES; i++)
        free (ai->titles[i]);
    for (int i = 0; i < NF_AI_POINTS; i++)
        free (ai->outline[i]);
    free (ai->hook);
    free (ai->thumbnail);
    free (ai->why);
    memset (ai, 0, sizeof *ai);
}

int
nf_ai_sentences (const char *text)
{
    int n = 0;
    bool open = false;
    for (const char *p = text; *p; p++) {
        if (*p == '.' || *p == '!' || *p == '?') {
            while (p[1] == '.' || p[1] == '!' || p[1] == '?' || p[1] == '"' || p[1] == '\'')
                p++;
            if (p[1] == 0 || isspace ((unsigned char) p[1])) {
                if (open)
                    n++;
                open = false;
            }
        }
        else if (!isspace ((unsigned char) *p))
            open = true;
    }
    return n + (open ? 1 : 0);
}

/* ---- key phrases ------------------------------------------------------- */

/* s_stop as a sorted array, made once: a transcript's every word is looked
   up, and the linear scan of the list (nf_word_in) was 27% of the
   sanitizer's CPU (perf, bench/profile.py, 2026-12-03). */
static char s_stop_copy[2048];
static const char *s_stop_words[256];
static size_t s_nstop;
static pthread_once_t s_stop_once = PTHREAD_ONCE_INIT;

static int
s_cmp_str (const void *a, const void *b)
{
    return strcmp (*(const char *const *) a, *(const char *const *) b);
}

static void
s_stop_init (void)
{
    if (strlen (s_stop) >= sizeof s_stop_copy)
        abort (); /* the list outgrew its copy: a build-time fact, caught by every test */
    strcpy (s_stop_copy, s_stop);
    char *save = NULL;
    for (char *w = strtok_r (s_stop_copy, " ", &save); w; w = strtok_r (NULL, " ", &save)) {
        if (s_nstop == sizeof s_stop_words / sizeof *s_stop_words)
            abort ();
        s_stop_words[s_nstop++] = w;
    }
    qsort (s_stop_words, s_nstop, sizeof *s_stop_words, s_cmp_str);
}

/* Whether W (lower-cased, NUL-terminated) is a stop word. */
static bool
s_is_stop (const char *w)
{
    pthread_once (&s_stop_once, s_stop_init);
    return bsearch (&w, s_stop_words, s_nstop, sizeof *s_stop_words, s_cmp_str) != NULL;
}

/* A distinct word of a text: where its lower-cased copy is, how often it
   came, and whether it is left out (a stop word, under 3 or over 24
   letters). */
typedef struct {
    const char *text;
    int count;
    bool stop;
} s_word_t;

/* Two distinct words, A then B, side by side, and how often. */
typedef struct {
    uint32_t a, b;
    int count;
} s_pair_t;

static int
s_cmp_words (const void *x, const void *y)
{
    const s_word_t *a = *(const s_word_t *const *) x, *b = *(const s_word_t *const *) y;
    if (a->count != b->count)
        return a->count > b->count ? -1 : 1;
    return strcmp (a->text, b->text);
}

/* By count, then as the text "A B" would sort (qsort_r passes the
   words): A first, then B (a word that is a prefix of another sorts first
   either way, ' ' and NUL both being below every letter and the
   apostrophe). */
static int
s_cmp_pairs (const void *x, const void *y, void *arg)
{
    const s_word_t *w = arg;
    const s_pair_t *a = x, *b = y;
    if (a->count != b->count)
        return a->count > b->count ? -1 : 1;
    int c = strcmp (w[a->a].text, w[b->a].text);
    return c ? c : strcmp (w[a->b].text, w[b->b].text);
}

static uint32_t
s_fnv (const char *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char) p[i]) * 16777619u;
    return h;
}

size_t
nf_ai_key_phrases (const char *text, char **phrases, size_t max)
{
    /* Words: ASCII letters and apostrophes, lower-cased, each distinct one
       copied once into BUF and numbered (a hash table of its numbers),
       the text as a sequence of numbers; then unigram and bigram counts
       by number. No allocation per word: the old version's strndup and
       asprintf per word and pair, and the sorts of every occurrence, were
       the most of its cost after the stop-word lookup (perf, 2026-12-03). */
    text = text ? text : "";
    size_t len = strlen (text), most = len / 2 + 2; /* a word is a letter and a gap */
    size_t slots = 16;
    while (slots < 2 * most)
        slots *= 2;
    char *buf = malloc (len + 1);
    uint32_t *seq = malloc (most * sizeof *seq), *slot = malloc (slots * sizeof *slot);
    s_word_t *words = malloc (most * sizeof *words);
    if (!buf || !seq || !slot || !words)
        abort (); /* nicheflow's out-of-memory policy (nf_util.h) */
    memset (slot, 0xff, slots * sizeof *slot);
    size_t nw = 0, nu = 0, used = 0;
    for (const char *p = text; *p;) {
        while (*p && !isalpha ((unsigned char) *p))
            p++;
        const char *s = p;
        while (*p && (isalpha ((unsigned char) *p) || *p == '\''))
            p++;
        size_t n = (size_t) (p - s);
        while (n && s[n - 1] == '\'')
            n--;
        if (n == 0)
            continue;
        char *w = buf + used;
        for (size_t i = 0; i < n; i++)
            w[i] = (char) tolower ((unsigned char) s[i]);
        w[n] = 0;
        size_t h = s_fnv (w, n) & (slots - 1);
        while (slot[h] != UINT32_MAX && strcmp (words[slot[h]].text, w) != 0)
            h = (h + 1) & (slots - 1);
        if (slot[h] == UINT32_MAX) {
            slot[h] = (uint32_t) nu;
            words[nu++] = (s_word_t){w, 0, n < 3 || n > 24 || s_is_stop (w)};
            used += n + 1; /* kept; a word seen before leaves BUF as it was */
        }
        seq[nw++] = slot[h];
    }
    /* Pairs: a table of their own over SLOT's memory (as many slots). */
    s_pair_t *pairs = malloc (slots * sizeof *pairs);
    if (!pairs)
        abort ();
    memset (slot, 0xff, slots * sizeof *slot);
    size_t np = 0;
    for (size_t i = 0; i < nw; i++) {
        if (words[seq[i]].stop)
            continue;
        words[seq[i]].count++;
        if (i + 1 == nw || words[seq[i + 1]].stop || seq[i] == seq[i + 1])
            continue;
        uint32_t a = seq[i], b = seq[i + 1];
        size_t h = ((size_t) a * 2654435761u ^ (size_t) b * 40503u) & (slots - 1);
        while (slot[h] != UINT32_MAX && (pairs[slot[h]].a != a || pairs[slot[h]].b != b))
            h = (h + 1) & (slots - 1);
        if (slot[h] == UINT32_MAX) {
            slot[h] = (uint32_t) np;
            pairs[np++] = (s_pair_t){a, b, 0};
        }
        pairs[slot[h]].count++;
    }
    /* Phrases said at least twice first, then single words not already inside one. */
    size_t nb = 0;
    for (size_t i = 0; i < np; i++)
        if (pairs[i].count >= 2)
            pairs[nb++] = pairs[i];
    qsort_r (pairs, nb, sizeof *pairs, s_cmp_pairs, words);
    size_t out = 0;
    for (size_t i = 0; i < nb && out < max; i++)
        if (asprintf (&phrases[out++], "%s %s", words[pairs[i].a].text, words[pairs[i].b].text) < 0)
            abort ();
    const s_word_t **uni = malloc ((nu + 1) * sizeof *uni);
    if (!uni)
        abort ();
    size_t nk = 0;
    for (size_t i = 0; i < nu; i++)
        if (!words[i].stop)
            uni[nk++] = &words[i];
    qsort (uni, nk, sizeof *uni, s_cmp_words);
    for (size_t i = 0; i < nk && out < max; i++) {
        const char *u = uni[i]->text;
        size_t l = strlen (u);
        bool inside = false;
        for (size_t j = 0; j < out && !inside; j++) {
            const char *hit = strstr (phrases[j], u);
            inside = hit && (hit == phrases[j] || hit[-1] == ' ') && (hit[l] == 0 || hit[l] == ' ');
        }
        if (!inside)
            phrases[out++] = strdup (u);
    }
    free (uni);
    free (pairs);
    free (words);
    free (slot);
    free (seq);
    free (buf);
    return out;
}

/* ---- the generator --------------------------------------------------------- */

static uint32_t
s_hash (const char *text)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *) (text ? text : ""); *p; p++)
        h = (h ^ *p) * 16777619u;
    return h;
}

/* "Title Case" of TEXT (ASCII words). Caller frees. */
static char *
s_title_case (const char *text)
{
    char *t = strdup (text);
    bool start = true;
    for (char *p = t; *p; p++) {
        if (start && isalpha ((unsigned char) *p))
            *p = (char) toupper ((unsigned char) *p);
        start = *p == ' ' || *p == '-';
    }
    return t;
}

/* 1234567 as "1.2M", 34500 as "34.5K", 950 as "950". */
static void
s_human (double n, char *out, size_t len)
{
    if (n >= 1e9)
        snprintf (out, len, "%.1fB", n / 1e9);
    else if (n >= 1e6)
        snprintf (out, len, "%.1fM", n / 1e6);
    else if (n >= 1e4)
        snprintf (out, len, "%.0fK", n / 1e3);
    else if (n >= 1e3)
        snprintf (out, len, "%.1fK", n / 1e3);
    else
        snprintf (out, len, "%.0f", n);
}

static char *s_printf (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

static char *
s_printf (const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    char *s = NULL;
    if (vasprintf (&s, fmt, ap) < 0)
        abort ();
    va_end (ap);
    return s;
}

/* The words nf_ai_generate builds with: three key phrases (the
   transcript's, topped up from the title, then fallbacks), two of them
   title-cased, the niche title-cased, and the views in short form. */
typedef struct {
    char *kp[3];
    char *k1, *k2, *niche;
    char views[32];
    uint32_t h; /* the video id's hash: picks among variants */
} s_words_t;

/* Whether every word of PHRASE is a word of the job's niche or sub-niche. */
static bool
s_niche_only (const char *phrase, const nf_ai_input_t *in)
{
    char niche[512];
    snprintf (niche, sizeof niche, " %s %s ", in->niche ? in->niche : "",
              in->sub_niche ? in->sub_niche : "");
    for (char *p = niche; *p; p++)
        *p = (char) tolower ((unsigned char) *p);
    char copy[256], *save = NULL;
    snprintf (copy, sizeof copy, "%s", phrase);
    for (char *word = strtok_r (copy, " ", &save); word; word = strtok_r (NULL, " ", &save)) {
        char needle[80];
        snprintf (needle, sizeof needle, " %s ", word);
        for (char *p = needle; *p; p++)
            *p = (char) tolower ((unsigned char) *p);
        if (!strstr (niche, needle))
            return false;
    }
    return true;
}

static void
s_words_init (s_words_t *w, const nf_ai_input_t *in)
{
    memset (w, 0, sizeof *w);
    /* The transcript's own phrases, not the niche's: every video of the job
       says the niche's words, so a phrase made only of them tells nothing
       about this one. */
    char *cand[20];
    size_t nc = 0, nk = 0;
    for (int k = 0; k < 8 && in->phrases[k] && nc < 8; k++) /* the distinct ones first */
        cand[nc++] = strdup (in->phrases[k]);
    nc += nf_ai_key_phrases (in->transcript, cand + nc, 12);
    for (size_t i = 0; i < nc; i++) {
        bool dup = false;
        for (size_t j = 0; j < nk; j++)
            dup = dup || strcmp (w->kp[j], cand[i]) == 0;
        if (nk < 3 && !dup && !s_niche_only (cand[i], in))
            w->kp[nk++] = cand[i];
        else
            free (cand[i]);
    }
    if (nk < 3) /* a thin transcript: the title's words fill in */
        nk += nf_ai_key_phrases (in->title, w->kp + nk, 3 - nk);
    const char *fallback[] = {in->niche && *in->niche ? in->niche : "this topic", "the basics",
                              "the details"};
    for (size_t i = nk; i < 3; i++)
        w->kp[i] = strdup (fallback[i]);
    w->k1 = s_title_case (w->kp[0]);
    w->k2 = s_title_case (w->kp[1]);
    w->niche = s_title_case (in->niche && *in->niche ? in->niche : "your niche");
    w->h = s_hash (in->video_id);
    s_human (in->views, w->views, sizeof w->views);
}

static void
s_words_free (s_words_t *w)
{
    for (int i = 0; i < 3; i++)
        free (w->kp[i]);
    free (w->k1);
    free (w->k2);
    free (w->niche);
}

/* "a" or "an" before WORD, by its sound: a vowel letter takes "an",
   except the "you" and "w" sounds (unique, user, one, euro); a silent h
   takes "an" (hour, honest, heir); "an" before an initialism read
   letter by letter from a vowel sound (an FAQ, an MBA). */
static const char *
s_article (const char *word)
{
    char w[16] = "";
    size_t n = 0;
    for (const char *p = word ? word : ""; *p && n < sizeof w - 1 && isalpha ((unsigned char) *p);
         p++)
        w[n++] = (char) *p;
    w[n] = 0;
    if (!n)
        return "a";
    bool upper = n > 1 && isupper ((unsigned char) w[0]) && isupper ((unsigned char) w[1]);
    if (upper) /* an initialism: the letter's name */
        return strchr ("AEFHILMNORSX", w[0]) ? "an" : "a";
    char l[16];
    for (size_t i = 0; i <= n; i++)
        l[i] = (char) tolower ((unsigned char) w[i]);
    static const char *const a_words[] = {"uni", "use", "usu", "uti", "ure", "eu", "one", "once"};
    for (size_t i = 0; i < sizeof a_words / sizeof a_words[0]; i++)
        if (strncmp (l, a_words[i], strlen (a_words[i])) == 0)
            return "a";
    static const char *const an_words[] = {"hour", "honest", "honor", "honour", "heir"};
    for (size_t i = 0; i < sizeof an_words / sizeof an_words[0]; i++)
        if (strncmp (l, an_words[i], strlen (an_words[i])) == 0)
            return "an";
    return strchr ("aeiou", l[0]) ? "an" : "a";
}

/* "1 mistake", "5 mistakes". */
static const char *
s_plural (int n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

/* TPL with "{1}", "{2}" and "{3}" replaced by A, B and C. Caller frees. */
static char *
s_fill (const char *tpl, const char *a, const char *b, const char *c)
{
    nf_buf_t out;
    nf_buf_init (&out);
    for (const char *p = tpl; *p; p++) {
        if (p[0] == '{' && p[1] >= '1' && p[1] <= '3' && p[2] == '}') {
            const char *v = p[1] == '1' ? a : p[1] == '2' ? b : c;
            nf_buf_puts (&out, v ? v : "");
            p += 2;
        }
        else
            nf_buf_append (&out, p, 1);
    }
    return out.data ? out.data : strdup ("");
}

/* The frames: sentence patterns, several per field. An outlier takes its
   frames by its rank (the N outliers of a job have ranks 1..N), so no two
   outliers of a job share a frame while N is at most the pool's size
   divided by the frames it takes (12 for the titles, the hooks, the
   thumbnails and the outlines); beyond that they come round again. Which
   frames a video used is kept in NF_AI.frames, so a test can see it. */
#define S_POOL 12

static int
s_slot (const nf_ai_input_t *in, const s_words_t *w, int k, int per)
{
    int r = in->rank > 0 ? in->rank - 1 : (int) (w->h % S_POOL);
    return ((r % S_POOL) * per + k) % (S_POOL * per);
}

static void
s_gen_titles (const nf_ai_input_t *in, const s_words_t *w, nf_ai_t *out)
{
    int n = 3 + (int) (w->h % 7);
    char num[64];
    snprintf (num, sizeof num, "%d %s", n, s_plural (n, "Mistake", "Mistakes"));
    const char *k1 = w->k1, *k2 = w->k2, *ni = w->niche;
    for (int t = 0; t < NF_AI_TITLES; t++) {
        int f = s_slot (in, w, t, NF_AI_TITLES);
        out->frames[t] = f;
        switch (f) {
        case 0: out->titles[t] = s_printf ("%s: What Nobody Tells You About %s", ni, k1); break;
        case 1: out->titles[t] = s_printf ("I Tried %s So You Don't Have To", k1); break;
        case 2: out->titles[t] = s_printf ("%s %s People Make With %s", num, ni, k1); break;
        case 3: out->titles[t] = s_printf ("%s vs %s: Which One Actually Works?", k1, k2); break;
        case 4: out->titles[t] = s_printf ("The %s Guide to %s I Wish I Had Sooner", ni, k2); break;
        case 5: out->titles[t] = s_printf ("Why %s Beats %s (Real Numbers)", k1, k2); break;
        case 6:
            out->titles[t] = s_printf ("%s Views Later: What %s Taught Me", w->views, k1);
            break;
        case 7: out->titles[t] = s_printf ("Stop Ignoring %s in %s", k2, ni); break;
        case 8: out->titles[t] = s_printf ("%s in One Week: %s, Then %s", ni, k1, k2); break;
        case 9: out->titles[t] = s_printf ("The %s Nobody Explains Properly", k1); break;
        case 10: out->titles[t] = s_printf ("How I Fixed My %s With %s", ni, k2); break;
        case 11: out->titles[t] = s_printf ("%s, Honestly Reviewed", k1); break;
        case 12: out->titles[t] = s_printf ("Everything I Got Wrong About %s", k2); break;
        case 13: out->titles[t] = s_printf ("Is %s Worth It? My %s Test", k1, ni); break;
        case 14: out->titles[t] = s_printf ("%s Explained in Under 10 Minutes", k2); break;
        case 15: out->titles[t] = s_printf ("The Cheapest Way to Start With %s", k1); break;
        case 16: out->titles[t] = s_printf ("%s Without the Hype: %s", ni, k2); break;
        case 17: out->titles[t] = s_printf ("What Changed When I Tried %s", k1); break;
        case 18: out->titles[t] = s_printf ("%s Before You Start %s", num, k2); break;
        case 19: out->titles[t] = s_printf ("My %s Routine Now Starts With %s", ni, k1); break;
        case 20: out->titles[t] = s_printf ("The Truth About %s After a Month", k2); break;
        case 21: out->titles[t] = s_printf ("Beginner to Confident: %s in %s", k1, ni); break;
        case 22: out->titles[t] = s_printf ("%s or %s? I Tested Both", k2, k1); break;
        case 23: out->titles[t] = s_printf ("The One %s Habit That Matters", ni); break;
        case 24: out->titles[t] = s_printf ("I Was Wrong About %s", k1); break;
        case 25: out->titles[t] = s_printf ("%s: The Only Guide You Need", k2); break;
        case 26:
            out->titles[t] = s_printf ("What %s Looks Like After %s Views", ni, w->views);
            break;
        case 27: out->titles[t] = s_printf ("Don't Start %s Until You Know %s", ni, k1); break;
        case 28: out->titles[t] = s_printf ("%s Made Simple", k2); break;
        case 29: out->titles[t] = s_printf ("Testing %s So You Can Skip the Bad Parts", k1); break;
        case 30: out->titles[t] = s_printf ("The Real Cost of %s", k2); break;
        case 31: out->titles[t] = s_printf ("%s: Myths vs Facts", k1); break;
        case 32: out->titles[t] = s_printf ("Watch This Before Your Next %s Attempt", ni); break;
        case 33: out->titles[t] = s_printf ("How %s Changed My %s", k2, ni); break;
        case 34: out->titles[t] = s_printf ("%s for Absolute Beginners", k1); break;
        case 35: out->titles[t] = s_printf ("The Lazy Way to Get %s Right", k2); break;
        case 36: out->titles[t] = s_printf ("%s Tier List: From %s Down", ni, k1); break;
        case 37: out->titles[t] = s_printf ("Why Everyone Gets %s Wrong", k2); break;
        case 38: out->titles[t] = s_printf ("%s, Step by Step, With %s", ni, k1); break;
        case 39: out->titles[t] = s_printf ("The %s Trick I Use Every Time", k2); break;
        case 40: out->titles[t] = s_printf ("Start Here: %s", k1); break;
        case 41: out->titles[t] = s_printf ("%s Is Easier Than You Think", k2); break;
        case 42: out->titles[t] = s_printf ("I Spent a Month on %s. Here's the Verdict", k1); break;
        case 43: out->titles[t] = s_printf ("%s Checklist: %s First", ni, k2); break;
        case 44: out->titles[t] = s_printf ("Pros Don't Talk About %s", k1); break;
        case 45: out->titles[t] = s_printf ("From Zero to %s", k2); break;
        case 46: out->titles[t] = s_printf ("%s: Three Ways, One Winner", k1); break;
        case 47: out->titles[t] = s_printf ("The Quiet Rise of %s in %s", k2, ni); break;
        case 48: out->titles[t] = s_printf ("Can %s Really Replace %s?", k1, k2); break;
        case 49: out->titles[t] = s_printf ("%s Done Right", k2); break;
        case 50: out->titles[t] = s_printf ("My Biggest %s Lesson: %s", ni, k1); break;
        case 51: out->titles[t] = s_printf ("%s in 60 Seconds, Then the Details", k2); break;
        case 52: out->titles[t] = s_printf ("The %s Setup Nobody Shows", k1); break;
        case 53: out->titles[t] = s_printf ("Upgrade Your %s With %s", ni, k2); break;
        case 54: out->titles[t] = s_printf ("%s: Worth the Hype?", k1); break;
        case 55: out->titles[t] = s_printf ("Small %s Changes, Big Results", k2); break;
        case 56: out->titles[t] = s_printf ("What I'd Tell Myself About %s", k1); break;
        case 57: out->titles[t] = s_printf ("The %s Question Everyone Asks: %s", ni, k2); break;
        case 58: out->titles[t] = s_printf ("%s, Ranked by Someone Who Tried Them All", k1); break;
        default: out->titles[t] = s_printf ("Finally, %s That Works", k2); break;
        }
    }
}

/* The first sentence of TRANSCRIPT (at most MAX words; timestamps
   skipped, its final punctuation dropped): how the video itself opened.
   Caller frees. */
static char *
s_opening (const char *transcript, int max)
{
    const char *p = transcript ? transcript : "";
    nf_buf_t b;
    nf_buf_init (&b);
    int words = 0;
    bool in_word = false;
    bool cut = false;
    for (; *p; p++) {
        if (*p == '[') { /* the next timestamp: skip it */
            while (*p && *p != ']')
                p++;
            if (!*p)
                break;
            continue;
        }
        char c = *p == '\n' ? ' ' : *p;
        if (c == ' ' && (!b.len || b.data[b.len - 1] == ' '))
            continue;
        if (!isspace ((unsigned char) c) && !in_word && words == max) {
            cut = true; /* no half words: the quote stops before the next one */
            break;
        }
        nf_buf_append (&b, &c, 1);
        if (!isspace ((unsigned char) c) && !in_word)
            words++;
        in_word = !isspace ((unsigned char) c);
        if ((c == '.' || c == '?' || c == '!') && words >= 3)
            break; /* its first sentence */
    }
    /* Quoted inside the hook's sentence: no end of its own. */
    while (b.len && strchr (" ,.;:!?", b.data[b.len - 1]))
        b.data[--b.len] = 0;
    if (cut && b.len)
        nf_buf_puts (&b, "\xE2\x80\xA6"); /* ... */
    return b.data ? b.data : strdup ("");
}

/* The key phrase of section K (of N equal parts) of TRANSCRIPT, or NULL. */
static char *
s_section_phrase (const char *transcript, int k, int n, const nf_ai_input_t *in)
{
    size_t len = transcript ? strlen (transcript) : 0;
    if (len < (size_t) n * 40)
        return NULL;
    size_t from = len * (size_t) k / (size_t) n, to = len * (size_t) (k + 1) / (size_t) n;
    char *part = strndup (transcript + from, to - from);
    char *kp[8];
    size_t got = part ? nf_ai_key_phrases (part, kp, 8) : 0, pick = got;
    for (size_t i = 0; i < got; i++)
        if (pick == got && !s_niche_only (kp[i], in))
            pick = i;
        else
            free (kp[i]);
    free (part);
    return pick < got ? kp[pick] : NULL;
}

static void
s_gen_hook_outline (const nf_ai_input_t *in, const s_words_t *w, nf_ai_t *out)
{
    char *const *kp = w->kp;
    const char *sub = in->sub_niche && *in->sub_niche ? in->sub_niche : NULL;
    const char *topic = sub ? sub : (in->niche && *in->niche ? in->niche : "the topic");
    char *open = s_opening (in->transcript, 18);
    int f = s_slot (in, w, 0, 1);
    out->frames[NF_AI_TITLES] = f;
    bool quoted = *open != 0;
    char figure[64] = "";
    if (in->has_multiplier && in->multiplier >= 1.5)
        snprintf (figure, sizeof figure, "%.1fx its channel's usual views", in->multiplier);
    else
        snprintf (figure, sizeof figure, "%s views", w->views);
    /* The hook: how this video opened (its own words), then the promise. */
    static const char *const hooks[S_POOL] = {
        "It opened with \"{1}\" and earned {2}. Open yours on {3} in the first five seconds.",
        "\"{1}\": that first line is why it got {2}. Start on {3}, not on an intro.",
        "The video starts \"{1}\" and it reached {2}. Lead with {3} the same way.",
        "Its first words were \"{1}\", and {2} followed. Say your own version about {3}.",
        "\"{1}\" is all it takes to hook: {2}. Put {3} in your opening line.",
        "Before any intro it says \"{1}\", and it got {2}. Do that with {3}.",
        "Listen to the opening: \"{1}\". That is {2} worth of hook; build yours around {3}.",
        "\"{1}\" comes first, and {2} came after. Give {3} that spot.",
        "It skips the welcome: \"{1}\". The result is {2}; skip yours and open on {3}.",
        "The hook is one line, \"{1}\", and it earned {2}. Yours: {3}, in one line.",
        "Here is how it opens: \"{1}\". That bought {2}; your first line is {3}.",
        "\"{1}\": straight in, and {2}. Go straight to {3}.",
    };
    if (quoted)
        out->hook = s_fill (hooks[f], open, figure, kp[0]);
    else
        out->hook = s_printf ("It earned %s with %s up front. Open yours on %s in the first "
                              "five seconds.",
                              figure, kp[0], kp[1]);
    free (open);
    /* The outline: the video's own sections, each by its key phrase. */
    static const char *const leads[S_POOL] = {
        "Open on",          "Start with",     "Lead with",          "Begin on",
        "Hook with",        "Cold-open on",   "First show",         "Kick off with",
        "Open straight on", "Start right at", "Lead straight into", "Begin with"};
    static const char *const mids[S_POOL] = {
        "Then",           "Next",     "After that", "Move on to", "Follow with",   "Build to",
        "Go deeper into", "Bring in", "Turn to",    "Add",        "Continue with", "Step into"};
    for (int i = 0; i < NF_AI_POINTS; i++) {
        char *phrase = s_section_phrase (in->transcript, i, NF_AI_POINTS, in);
        const char *what = phrase ? phrase : kp[i % 3];
        if (i == 0)
            out->outline[i] =
                s_printf ("%s %s: the payoff, in the first 15 seconds.", leads[f], what);
        else if (i == NF_AI_POINTS - 1)
            out->outline[i] = s_printf ("Close on %s, then ask which %s tip viewers try "
                                        "first.",
                                        what, topic);
        else
            out->outline[i] = s_printf ("%s %s, as the original's %s fifth covers it, with "
                                        "your own example.",
                                        mids[(f + i) % S_POOL], what,
                                        i == 1   ? "second"
                                        : i == 2 ? "third"
                                                 : "fourth");
        free (phrase);
    }
}

static void
s_gen_thumbnail (const nf_ai_input_t *in, const s_words_t *w, nf_ai_t *out)
{
    static const char *const colors[S_POOL] = {"yellow", "electric blue", "red",   "green",
                                               "orange", "purple",        "teal",  "black",
                                               "white",  "pink",          "amber", "ocean blue"};
    static const char *const shots[S_POOL] = {
        "A close-up, surprised face on the left",   "A hand holding {1} up to the lens",
        "A split screen, before on the left",       "An over-the-shoulder shot of the work",
        "A wide shot with one bright object",       "An arrow pointing at the key detail",
        "A face looking at the result, mouth open", "An extreme close-up of the detail",
        "A top-down flat lay of the tools",         "A red circle around the mistake",
        "An empty background and one object",       "A side-by-side of two choices"};
    int f = s_slot (in, w, 0, 1);
    out->frames[NF_AI_TITLES + 1] = f;
    char *caps = strdup (w->kp[0]);
    for (char *p = caps; *p; p++)
        *p = (char) toupper ((unsigned char) *p);
    char *shot = s_fill (shots[(f + 3) % S_POOL], w->kp[1], NULL, NULL);
    const char *color = colors[f];
    out->thumbnail = s_printf ("%s; %s shown big and simple; the 2-4 word caption \"%s\" in bold "
                               "white on %s %s background; nothing else in frame.",
                               shot, w->kp[1], caps, s_article (color), color);
    free (shot);
    free (caps);
}

/* "Why it worked": the figures, where the video stands among the niche's,
   engagement, and what the transcript keeps returning to. */
static char *
s_gen_why (const nf_ai_input_t *in, const s_words_t *w)
{
    nf_buf_t why;
    nf_buf_init (&why);
    nf_buf_printf (&why, "It reached %s views", w->views);
    if (in->has_multiplier && in->has_channel_avg) {
        char avg[32];
        s_human (in->channel_avg, avg, sizeof avg);
        nf_buf_printf (&why,
                       in->baseline_median ? ", %.1fx the %s views a recent upload of %s gets"
                                           : ", %.1fx the %s views an average video of %s gets",
                       in->multiplier, avg,
                       in->channel && *in->channel ? in->channel : "its channel");
    }
    if (in->has_velocity && in->has_age)
        nf_buf_printf (&why, ", at %.0f views a day over %.0f days", in->velocity, in->age_days);
    nf_buf_puts (&why, ". ");
    if (in->pct_multiplier >= 0 || in->pct_velocity >= 0) {
        bool mult_lead = in->pct_multiplier >= in->pct_velocity;
        double best = mult_lead ? in->pct_multiplier : in->pct_velocity;
        const char *what = mult_lead ? "multiplier" : "velocity";
        const char *niche_name = in->niche && *in->niche ? in->niche : "niche";
        if (best >= 0.999)
            nf_buf_printf (&why, "That is the highest %s of the %s videos we ranked", what,
                           niche_name);
        else
            nf_buf_printf (&why, "Its %s beats %d%% of the %s videos we ranked", what,
                           (int) floor (best * 100.0), niche_name);
        nf_buf_puts (&why, mult_lead ? ": the audience came from well beyond the channel's own "
                                       "subscribers. "
                                     : ": it kept pulling views long after upload. ");
    }
    if (in->has_engagement)
        nf_buf_printf (&why, "%.1f%% of viewers liked or commented (%s for the niche), ",
                       in->engagement * 100.0,
                       in->pct_engagement >= 0.66   ? "high"
                       : in->pct_engagement >= 0.33 ? "typical"
                                                    : "low");
    nf_buf_printf (&why,
                   "%s transcript keeps returning to \"%s\" and \"%s\": one concrete "
                   "promise, paid off on screen.",
                   in->has_engagement ? "and the" : "The", w->kp[0], w->kp[1]);
    return why.data;
}

void
nf_ai_generate (const nf_ai_input_t *in, nf_ai_t *out)
{
    memset (out, 0, sizeof *out);
    s_words_t w;
    s_words_init (&w, in);
    s_gen_titles (in, &w, out);
    s_gen_hook_outline (in, &w, out);
    s_gen_thumbnail (in, &w, out);
    out->why = s_gen_why (in, &w);
    s_words_free (&w);
}
