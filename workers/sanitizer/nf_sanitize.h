/*  nf_sanitize: turns a raw transcript into clean text and scores it.

    Pure computation, no I/O: nf-sanitizer's main() feeds it the transcript
    of a RAW video and stores what it returns. The steps, in order (each is
    described with its rules in workers/README.md):

      1. cap the input at MAX_BYTES (cut at a character boundary), repair
         invalid UTF-8 (U+FFFD), split into caption lines;
      2. per line: strip markup tags, decode HTML entities (twice, for the
         double-encoded &amp;#39; of timed text), NFKC-normalize and drop
         control and default-ignorable characters (utf8proc), drop
         timestamps and SRT cue numbers, drop bracketed cues ([Music],
         (applause), music notes, ">>" speaker marks), drop filler words;
      3. drop the rolling repeat of auto-captions: the words a line repeats
         from the end of the text so far;
      4. collapse a phrase (2-6 words) said twice back to back, and a word
         said three times or more in a row, to one;
      5. join with single spaces.

    Everything removed in steps 2-4 except timestamps counts as noise. The
    quality score (0..100) is

      quality = 100 x sqrt(L) x (0.35 D + 0.45 W + 0.20 C)

    with L = min(1, words / 300), D = min(1, unique / sqrt(words) / 6)
    (Guiraud's lexical diversity), W = real words / words and
    C = 1 - min(1, 2 x noise bytes / (noise bytes + kept bytes)). */
#ifndef NF_SANITIZE_H
#define NF_SANITIZE_H

#include "nf_util.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char *text;          /* cleaned text (owned, NUL-terminated, valid UTF-8) */
    double quality;      /* 0..100, one decimal */
    size_t words;        /* word tokens in TEXT */
    size_t unique_words; /* distinct case-folded words */
    size_t real_words;   /* words made of letters that look like language */
    size_t input_bytes;  /* bytes considered (after the cap) */
    size_t noise_bytes;  /* markup, cues, fillers and repeats removed */
    bool truncated;      /* the input was longer than the cap */
    double length;       /* component L, 0..1 */
    double diversity;    /* component D, 0..1 */
    double real;         /* component W, 0..1 */
    double clean;        /* component C, 0..1 */
} nf_sanitized_t;

/* Sanitize TEXT (LEN bytes, any bytes at all) keeping at most MAX_BYTES of
   input. Fills OUT; returns 0, or -1 when memory runs out. */
int nf_sanitize (const char *text, size_t len, size_t max_bytes, nf_sanitized_t *out);
void nf_sanitized_free (nf_sanitized_t *out);

/* ASCII fast paths: a line or token of ASCII only skips utf8proc, with
   the same result. True by default; the unit tests compare both ways. */
extern bool nf_sanitize_ascii_fast;

/* The quality formula above, from its inputs. */
double nf_quality_score (size_t words, size_t unique_words, size_t real_words, size_t noise_bytes,
                         size_t kept_bytes);

/* Append IN (LEN bytes) to OUT with &amp; &lt; &gt; &quot; &apos; &nbsp;
   &#39; &#N; &#xH; decoded (one level); unknown or unterminated entities
   stay as they are, invalid code points become U+FFFD. The scraper uses it
   for timed text too. */
void nf_html_unescape (const char *in, size_t len, nf_buf_t *out);

#endif
