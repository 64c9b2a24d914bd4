/*  nf_sanitize: see nf_sanitize.h. Works line by line on a repaired copy of
    the input, then token by token. Cost is linear in the input except the
    rolling-repeat check, which compares at most MAX_OVERLAP words per line. */
#include "nf_sanitize.h"
#include "nf_util.h"

#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#define MAX_OVERLAP  40 /* longest rolling repeat looked for, in words */
#define MAX_CUE      80 /* longest [bracketed cue] removed, in bytes */
#define MAX_PHRASE   6  /* longest phrase whose back-to-back repeat collapses */
#define MAX_WORD_CPS 24 /* longest real word, in code points */

static const char *const s_fillers[] = {"um", "umm", "uh",  "uhh", "uhm", "er", "erm",
                                        "ah", "ahh", "hmm", "hm",  "mm",  "mhm"};
static const char *const s_paren_cues = "music applause laughter laughs laughing cheering "
                                        "inaudible silence crosstalk";

typedef struct {
    char *text;    /* the token as it appears (owned) */
    char *key;     /* case-folded, punctuation trimmed (owned); "" for punctuation */
    uint32_t hash; /* of KEY, so most unequal keys differ without a strcmp */
} s_token_t;

typedef struct {
    s_token_t *items; /* tokens (owned) */
    size_t n, cap;    /* used, allocated */
} s_tokens_t;

static void
s_tokens_push (s_tokens_t *t, s_token_t tok)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 256;
        s_token_t *items = realloc (t->items, t->cap * sizeof *t->items);
        if (!items)
            abort (); /* nicheflow's out-of-memory policy (nf_util.h) */
        t->items = items;
    }
    t->items[t->n++] = tok;
}

static void
s_token_free (s_token_t *tok)
{
    free (tok->text);
    free (tok->key);
}

static void
s_tokens_free (s_tokens_t *t)
{
    for (size_t i = 0; i < t->n; i++)
        s_token_free (&t->items[i]);
    free (t->items);
    memset (t, 0, sizeof *t);
}

/* ---- step 2: per-line cleaning ---------------------------------------- */

static bool
s_tag_start (const char *p, size_t left)
{
    return left >= 2 && p[0] == '<'
           && (isalpha ((unsigned char) p[1]) || p[1] == '/' || p[1] == '!' || p[1] == '?');
}

/* Append IN[I..] up to the first C (or the end, LEN) to OUT; returns
   where it stopped. */
static size_t
s_copy_to (const char *in, size_t i, size_t len, char c, nf_buf_t *out)
{
    const char *at = memchr (in + i, c, len - i);
    size_t end = at ? (size_t) (at - in) : len;
    nf_buf_append (out, in + i, end - i);
    return end;
}

/* Remove <tags>; the removed bytes are noise. */
static void
s_strip_tags (const char *in, size_t len, nf_buf_t *out, size_t *noise)
{
    for (size_t i = 0; i < len;) {
        i = s_copy_to (in, i, len, '<', out);
        if (i == len)
            break;
        if (s_tag_start (in + i, len - i)) {
            const char *end = memchr (in + i, '>', len - i < 500 ? len - i : 500);
            if (end) {
                size_t n = (size_t) (end - (in + i)) + 1;
                *noise += n;
                i += n;
                nf_buf_append (out, " ", 1);
                continue;
            }
        }
        nf_buf_append (out, in + i, 1);
        i++;
    }
}

static void
s_put_cp (nf_buf_t *out, long cp)
{
    if (cp <= 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        cp = 0xFFFD;
    utf8proc_uint8_t enc[4];
    utf8proc_ssize_t n = utf8proc_encode_char ((utf8proc_int32_t) cp, enc);
    nf_buf_append (out, enc, (size_t) n);
}

void
nf_html_unescape (const char *in, size_t len, nf_buf_t *out)
{
    static const struct {
        const char *name;
        const char *text;
    } named[] = {{"amp", "&"},  {"lt", "<"},   {"gt", ">"}, {"quot", "\""},
                 {"apos", "'"}, {"nbsp", " "}, {"#39", "'"}};
    for (size_t i = 0; i < len;) {
        i = s_copy_to (in, i, len, '&', out);
        if (i == len)
            break;
        const char *semi = memchr (in + i, ';', len - i < 12 ? len - i : 12);
        if (semi) {
            size_t nlen = (size_t) (semi - (in + i)) - 1;
            const char *name = in + i + 1;
            bool done = false;
            for (size_t k = 0; k < sizeof named / sizeof named[0] && !done; k++)
                if (strlen (named[k].name) == nlen && memcmp (named[k].name, name, nlen) == 0) {
                    nf_buf_puts (out, named[k].text);
                    done = true;
                }
            if (!done && nlen >= 2 && name[0] == '#') {
                char digits[12] = {0};
                bool hex = name[1] == 'x' || name[1] == 'X';
                size_t dl = nlen - 1 - (hex ? 1 : 0);
                if (dl >= 1 && dl < sizeof digits) {
                    memcpy (digits, name + 1 + (hex ? 1 : 0), dl);
                    char *end = NULL;
                    long cp = strtol (digits, &end, hex ? 16 : 10);
                    if (end && !*end && isxdigit ((unsigned char) digits[0])) {
                        s_put_cp (out, cp);
                        done = true;
                    }
                }
            }
            if (done) {
                i += nlen + 2;
                continue;
            }
        }
        nf_buf_append (out, in + i, 1);
        i++;
    }
}

bool nf_sanitize_ascii_fast = true;

/* Whether IN (LEN bytes) is all ASCII. */
static bool
s_ascii (const char *in, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char) in[i] >= 0x80)
            return false;
    return true;
}

/* NFKC, control and default-ignorable characters dropped. */
static void
s_normalize (const char *in, size_t len, nf_buf_t *out)
{
    if (nf_sanitize_ascii_fast && s_ascii (in, len)) {
        /* What utf8proc does to ASCII: NFKC and case are left alone, there
           is nothing default-ignorable, and of the controls tab, line feed,
           vertical tab, form feed and carriage return become a space and the
           others go (a line holds no line feed, so no CR LF pair). */
        for (size_t i = 0; i < len;) {
            size_t run = 0;
            while (i + run < len && (unsigned char) in[i + run] >= 0x20 && in[i + run] != 0x7F)
                run++;
            nf_buf_append (out, in + i, run);
            i += run;
            if (i < len) {
                if (in[i] >= '\t' && in[i] <= '\r')
                    nf_buf_append (out, " ", 1);
                i++;
            }
        }
        return;
    }
    utf8proc_uint8_t *mapped = NULL;
    utf8proc_ssize_t n = utf8proc_map (
        (const utf8proc_uint8_t *) in, (utf8proc_ssize_t) len, &mapped,
        UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT | UTF8PROC_IGNORE | UTF8PROC_STRIPCC);
    if (n >= 0)
        nf_buf_append (out, mapped, (size_t) n);
    else /* cannot happen on repaired input; keep the text rather than lose it */
        nf_buf_append (out, in, len);
    free (mapped);
}

/* Length of a timestamp at P (h:mm, mm:ss, hh:mm:ss, optional .mmm or ,mmm), or 0. */
static size_t
s_timestamp_len (const char *p, size_t left)
{
    size_t i = 0, groups = 0;
    while (true) {
        size_t d = 0;
        while (i + d < left && isdigit ((unsigned char) p[i + d]) && d < 3)
            d++;
        if (d == 0 || (groups > 0 && d != 2) || d > 2)
            break;
        i += d;
        groups++;
        if (i < left && p[i] == ':' && groups < 3 && i + 1 < left
            && isdigit ((unsigned char) p[i + 1]))
            i++;
        else
            break;
    }
    if (groups < 2)
        return 0;
    if (i + 1 < left && (p[i] == '.' || p[i] == ',') && isdigit ((unsigned char) p[i + 1])) {
        i++;
        while (i < left && isdigit ((unsigned char) p[i]))
            i++;
    }
    if (i < left && isalnum ((unsigned char) p[i]))
        return 0;
    return i;
}

static bool
s_is_cue_text (const char *p, size_t n)
{
    char word[32];
    size_t w = 0;
    for (size_t i = 0; i < n && w + 1 < sizeof word; i++)
        if (p[i] != ' ')
            word[w++] = (char) tolower ((unsigned char) p[i]);
    word[w] = 0;
    return w > 0 && nf_word_in (s_paren_cues, word, w);
}

/* Whether byte C may start a timestamp, "-->", a cue, a music note or ">>". */
static bool
s_cue_start (unsigned char c)
{
    return (c >= '0' && c <= '9') || c == '-' || c == '[' || c == '(' || c == '>' || c == 0xE2;
}

/* Drop timestamps, "-->", [cues], (cue words), music notes and ">>". */
static void
s_strip_cues (const char *in, size_t len, nf_buf_t *out, size_t *noise)
{
    for (size_t i = 0; i < len;) {
        bool boundary = i == 0 || !isalnum ((unsigned char) in[i - 1]);
        size_t ts = boundary ? s_timestamp_len (in + i, len - i) : 0;
        if (ts) {
            i += ts;
            nf_buf_append (out, " ", 1);
            continue;
        }
        if (len - i >= 3 && memcmp (in + i, "-->", 3) == 0) {
            i += 3;
            continue;
        }
        if (in[i] == '[' || in[i] == '(') {
            char close = in[i] == '[' ? ']' : ')';
            size_t lim = len - i < MAX_CUE ? len - i : MAX_CUE;
            const char *end = memchr (in + i + 1, close, lim > 1 ? lim - 1 : 0);
            if (end) {
                size_t n = (size_t) (end - (in + i)) + 1;
                size_t inner = s_timestamp_len (in + i + 1, n - 2);
                bool is_ts = inner > 0 && inner == n - 2;
                if (is_ts || close == ']' || s_is_cue_text (in + i + 1, n - 2)) {
                    if (!is_ts)
                        *noise += n;
                    i += n;
                    nf_buf_append (out, " ", 1);
                    continue;
                }
            }
        }
        /* U+266A..U+266C music notes: E2 99 AA..AC */
        if (len - i >= 3 && (unsigned char) in[i] == 0xE2 && (unsigned char) in[i + 1] == 0x99
            && (unsigned char) in[i + 2] >= 0xAA && (unsigned char) in[i + 2] <= 0xAC) {
            *noise += 3;
            i += 3;
            continue;
        }
        if (len - i >= 2 && in[i] == '>' && in[i + 1] == '>') {
            *noise += 2;
            i += 2;
            continue;
        }
        /* Copy up to the next byte that may start any of the above. */
        size_t run = 1;
        while (i + run < len && !s_cue_start ((unsigned char) in[i + run]))
            run++;
        nf_buf_append (out, in + i, run);
        i += run;
    }
}

/* ---- tokens ----------------------------------------------------------- */

static bool
s_is_punct_cp (utf8proc_int32_t cp)
{
    utf8proc_category_t c = utf8proc_category (cp);
    return (c >= UTF8PROC_CATEGORY_PC && c <= UTF8PROC_CATEGORY_PO)
           || (c >= UTF8PROC_CATEGORY_SM && c <= UTF8PROC_CATEGORY_SO);
}

static bool
s_ascii_punct (char c)
{
    return (c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`')
           || (c >= '{' && c <= '~');
}

/* The comparison key of a token: case-folded with leading and trailing
   punctuation and symbols removed. */
static char *
s_key (const char *text, size_t len)
{
    if (nf_sanitize_ascii_fast && s_ascii (text, len)) {
        /* ASCII: its punctuation and symbols (categories P and S) are
           exactly the 32 printable non-alphanumerics; case folding is
           A-Z to a-z; composition changes nothing. */
        size_t start = 0, end = len;
        while (start < end && s_ascii_punct (text[start]))
            start++;
        while (end > start && s_ascii_punct (text[end - 1]))
            end--;
        char *key = malloc (end - start + 1);
        if (!key)
            abort ();
        for (size_t i = start; i < end; i++)
            key[i - start] = text[i] >= 'A' && text[i] <= 'Z' ? (char) (text[i] + 32) : text[i];
        key[end - start] = 0;
        return key;
    }
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *) text;
    size_t start = 0, end = len;
    while (start < end) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t n = utf8proc_iterate (p + start, (utf8proc_ssize_t) (end - start), &cp);
        if (n <= 0 || !s_is_punct_cp (cp))
            break;
        start += (size_t) n;
    }
    while (end > start) {
        size_t back = end - 1;
        while (back > start && (p[back] & 0xC0) == 0x80)
            back--;
        utf8proc_int32_t cp;
        utf8proc_ssize_t n = utf8proc_iterate (p + back, (utf8proc_ssize_t) (end - back), &cp);
        if (n <= 0 || !s_is_punct_cp (cp))
            break;
        end = back;
    }
    utf8proc_uint8_t *folded = NULL;
    if (end == start
        || utf8proc_map (p + start, (utf8proc_ssize_t) (end - start), &folded,
                         UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_CASEFOLD)
               < 0) {
        free (folded);
        return strdup ("");
    }
    return (char *) folded;
}

/* FNV-1a of KEY, 32 bits. */
static uint32_t
s_hash (const char *key)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *c = (const unsigned char *) key; *c; c++)
        h = (h ^ *c) * 16777619u;
    return h;
}

static bool
s_filler (const char *key)
{
    for (size_t i = 0; i < sizeof s_fillers / sizeof s_fillers[0]; i++)
        if (key[0] == s_fillers[i][0] && strcmp (key, s_fillers[i]) == 0)
            return true;
    return false;
}

/* Split LINE into tokens on whitespace, dropping fillers (noise). */
static void
s_tokenize (const char *line, size_t len, s_tokens_t *out, size_t *noise)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && isspace ((unsigned char) line[i]))
            i++;
        size_t start = i;
        while (i < len && !isspace ((unsigned char) line[i]))
            i++;
        if (i == start)
            break;
        s_token_t tok = {strndup (line + start, i - start), s_key (line + start, i - start), 0};
        if (!tok.text || !tok.key)
            abort ();
        tok.hash = s_hash (tok.key);
        if (s_filler (tok.key)) {
            *noise += i - start + 1;
            s_token_free (&tok);
            continue;
        }
        s_tokens_push (out, tok);
    }
}

static bool
s_keys_equal (const s_token_t *a, const s_token_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!*a[i].key || a[i].hash != b[i].hash || strcmp (a[i].key, b[i].key) != 0)
            return false;
    return true;
}

/* Step 3: drop the longest prefix (2 words or more) of SEG that repeats the
   end of OUT, then append the rest of SEG to OUT. SEG's tokens move. */
static void
s_append_line (s_tokens_t *out, s_tokens_t *seg, size_t *noise)
{
    size_t max = seg->n < out->n ? seg->n : out->n;
    if (max > MAX_OVERLAP)
        max = MAX_OVERLAP;
    size_t skip = 0;
    for (size_t k = max; k >= 2; k--)
        if (s_keys_equal (out->items + out->n - k, seg->items, k)) {
            skip = k;
            break;
        }
    for (size_t i = 0; i < seg->n; i++) {
        if (i < skip) {
            *noise += strlen (seg->items[i].text) + 1;
            s_token_free (&seg->items[i]);
        }
        else
            s_tokens_push (out, seg->items[i]);
    }
    seg->n = 0;
}

/* Step 4: push TOK, then undo a back-to-back repeat of a phrase of
   2..MAX_PHRASE words that it completes. */
static void
s_push_collapsing (s_tokens_t *t, s_token_t tok, size_t *noise)
{
    s_tokens_push (t, tok);
    for (size_t g = MAX_PHRASE; g >= 2; g--) {
        if (t->n < 2 * g)
            continue;
        s_token_t *tail = t->items + t->n - 2 * g;
        if (s_keys_equal (tail, tail + g, g)) {
            for (size_t i = t->n - g; i < t->n; i++) {
                *noise += strlen (t->items[i].text) + 1;
                s_token_free (&t->items[i]);
            }
            t->n -= g;
            return;
        }
    }
}

/* A word of letters (and marks, inner ' ’ -) of at most MAX_WORD_CPS code
   points; an ASCII word of 2+ letters needs a vowel. A number counts too. */
static bool
s_real_word (const char *key)
{
    size_t len = strlen (key), cps = 0;
    bool ascii = true, vowel = false, letters = false, digits = true;
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *) key;
    for (size_t i = 0; i < len;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t n = utf8proc_iterate (p + i, (utf8proc_ssize_t) (len - i), &cp);
        if (n <= 0)
            return false;
        i += (size_t) n;
        cps++;
        bool letter, digit;
        if (cp < 0x80 && nf_sanitize_ascii_fast) { /* ASCII's letters (Lu, Ll) and digits (Nd) */
            letter = (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
            digit = cp >= '0' && cp <= '9';
        }
        else {
            utf8proc_category_t c = utf8proc_category (cp);
            letter = c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_ME;
            digit = c == UTF8PROC_CATEGORY_ND;
        }
        bool inner = cp == '\'' || cp == 0x2019 || cp == '-' || cp == '.' || cp == ',' || cp == '%';
        if (!letter && !digit && !inner)
            return false;
        if (letter)
            letters = true;
        if (!digit && !inner)
            digits = false;
        if (digit && letters)
            return false;
        if (cp > 0x7F)
            ascii = false;
        if (cp == 'a' || cp == 'e' || cp == 'i' || cp == 'o' || cp == 'u' || cp == 'y')
            vowel = true;
    }
    if (digits && !letters)
        return cps <= 12;
    if (cps > MAX_WORD_CPS || !letters)
        return false;
    return !ascii || cps == 1 || vowel;
}

/* How many distinct non-empty keys the tokens T hold: an open-addressing
   set on the tokens' hashes, twice as many slots as tokens at least. */
static size_t
s_count_distinct (const s_tokens_t *t)
{
    size_t cap = 16;
    while (cap < 2 * t->n)
        cap *= 2;
    const s_token_t **slots = calloc (cap, sizeof *slots);
    if (!slots)
        abort ();
    size_t distinct = 0;
    for (size_t i = 0; i < t->n; i++) {
        const s_token_t *tok = &t->items[i];
        if (!*tok->key)
            continue;
        size_t at = tok->hash & (cap - 1);
        while (slots[at]
               && (slots[at]->hash != tok->hash || strcmp (slots[at]->key, tok->key) != 0))
            at = (at + 1) & (cap - 1);
        if (!slots[at]) {
            slots[at] = tok;
            distinct++;
        }
    }
    free (slots);
    return distinct;
}

/* The components L, D, W, C of the quality score into S (all 0 without words)
   and the score itself, one decimal. */
static double
s_quality (size_t words, size_t unique_words, size_t real_words, size_t noise_bytes,
           size_t kept_bytes, nf_sanitized_t *s)
{
    s->length = s->diversity = s->real = s->clean = 0;
    if (words == 0)
        return 0.0;
    s->length = fmin (1.0, (double) words / 300.0);
    s->diversity = fmin (1.0, (double) unique_words / sqrt ((double) words) / 6.0);
    s->real = (double) real_words / (double) words;
    double total = (double) noise_bytes + (double) kept_bytes;
    s->clean = total > 0 ? 1.0 - fmin (1.0, 2.0 * (double) noise_bytes / total) : 0.0;
    double q = 100.0 * sqrt (s->length) * (0.35 * s->diversity + 0.45 * s->real + 0.20 * s->clean);
    return round (q * 10.0) / 10.0;
}

double
nf_quality_score (size_t words, size_t unique_words, size_t real_words, size_t noise_bytes,
                  size_t kept_bytes)
{
    nf_sanitized_t s;
    return s_quality (words, unique_words, real_words, noise_bytes, kept_bytes, &s);
}

int
nf_sanitize (const char *text, size_t len, size_t max_bytes, nf_sanitized_t *out)
{
    memset (out, 0, sizeof *out);
    if (!text)
        len = 0;
    if (len > max_bytes) {
        out->truncated = true;
        len = max_bytes;
        while (len > 0 && ((unsigned char) text[len] & 0xC0) == 0x80)
            len--;
    }
    out->input_bytes = len;
    nf_buf_t repaired, a, b;
    nf_buf_init (&repaired);
    nf_buf_init (&a);
    nf_buf_init (&b);
    nf_buf_utf8_repair (&repaired, text ? text : "", len);
    s_tokens_t all = {0}, seg = {0};
    size_t noise = 0;
    const char *p = repaired.data ? repaired.data : "";
    const char *end = p + repaired.len;
    while (p < end) {
        const char *nl = memchr (p, '\n', (size_t) (end - p));
        size_t n = nl ? (size_t) (nl - p) : (size_t) (end - p);
        nf_buf_reset (&a);
        nf_buf_reset (&b);
        s_strip_tags (p, n, &a, &noise);
        for (int pass = 0; pass < 2; pass++) { /* &amp;#39; is encoded twice */
            nf_buf_reset (&b);
            nf_html_unescape (a.data ? a.data : "", a.len, &b);
            nf_buf_reset (&a);
            s_strip_tags (b.data ? b.data : "", b.len, &a, &noise);
        }
        nf_buf_reset (&b);
        s_normalize (a.data ? a.data : "", a.len, &b);
        nf_buf_reset (&a);
        s_strip_cues (b.data ? b.data : "", b.len, &a, &noise);
        s_tokenize (a.data ? a.data : "", a.len, &seg, &noise);
        bool cue_number =
            seg.n == 1 && strspn (seg.items[0].text, "0123456789") == strlen (seg.items[0].text);
        bool header = seg.n >= 1 && strcmp (seg.items[0].text, "WEBVTT") == 0;
        if (cue_number || header) {
            for (size_t i = 0; i < seg.n; i++)
                s_token_free (&seg.items[i]);
            seg.n = 0;
        }
        s_append_line (&all, &seg, &noise);
        p += n + (nl ? 1 : 0);
    }
    /* A word said three or more times in a row is kept once ("very very" stays). */
    s_tokens_t runs = {0}, kept = {0};
    for (size_t i = 0; i < all.n;) {
        size_t run = 1;
        while (i + run < all.n && s_keys_equal (&all.items[i], &all.items[i + run], 1))
            run++;
        s_tokens_push (&runs, all.items[i]);
        for (size_t j = 1; j < run; j++) {
            if (run >= 3) {
                noise += strlen (all.items[i + j].text) + 1;
                s_token_free (&all.items[i + j]);
            }
            else
                s_tokens_push (&runs, all.items[i + j]);
        }
        i += run;
    }
    free (all.items);
    for (size_t i = 0; i < runs.n; i++)
        s_push_collapsing (&kept, runs.items[i], &noise);
    free (runs.items);
    free (seg.items);

    nf_buf_t clean;
    nf_buf_init (&clean);
    for (size_t i = 0; i < kept.n; i++) {
        if (i)
            nf_buf_append (&clean, " ", 1);
        nf_buf_puts (&clean, kept.items[i].text);
        if (*kept.items[i].key) {
            out->words++;
            if (s_real_word (kept.items[i].key))
                out->real_words++;
        }
    }
    out->unique_words = s_count_distinct (&kept);
    s_tokens_free (&kept);
    out->text = clean.data ? clean.data : strdup ("");
    out->noise_bytes = noise;
    out->quality =
        s_quality (out->words, out->unique_words, out->real_words, noise, clean.len, out);
    nf_buf_free (&repaired);
    nf_buf_free (&a);
    nf_buf_free (&b);
    return out->text ? 0 : -1;
}

void
nf_sanitized_free (nf_sanitized_t *out)
{
    free (out->text);
    out->text = NULL;
}
