/*  nf-sanitizebench: CPU per transcript of nf_sanitize, with and without
    its ASCII fast paths (nf_sanitize_ascii_fast), in the same run.

    The transcripts are nf-ytsim's own (nf_ytdata, no network): the clean
    and auto-generated tracks of the first videos of a few queries, as the
    scraper stores them ("[m:ss] text" lines). Each pass sanitizes every
    transcript once; the figure is the median of the passes, in
    microseconds per transcript, and the ratio of the two medians. Both
    ways must give the same texts and counts (checked: exit 1 if not).

        nf-sanitizebench [PASSES]      (default 15) */
#include "nf_sanitize.h"
#include "nf_util.h"
#include "nf_ytdata.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VIDEOS 30 /* per query */

static void
s_segment (int64_t start_ms, int64_t dur_ms, const char *text, void *arg)
{
    (void) dur_ms;
    nf_buf_printf ((nf_buf_t *) arg, "[%lld:%02lld] %s\n", (long long) (start_ms / 60000),
                   (long long) (start_ms / 1000 % 60), text);
}

static int
s_cmp_double (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

/* One pass over the N transcripts; microseconds per transcript. SUM gets
   a checksum of the results. */
static double
s_pass (nf_buf_t *texts, size_t n, uint64_t *sum)
{
    int64_t t0 = nf_clock_us ();
    for (size_t i = 0; i < n; i++) {
        nf_sanitized_t s;
        if (nf_sanitize (texts[i].data, texts[i].len, 1 << 20, &s) != 0)
            abort ();
        *sum = *sum * 31 + strlen (s.text) + s.words * 7 + s.unique_words * 13 + s.real_words * 17
               + s.noise_bytes * 19 + (uint64_t) (s.quality * 10);
        nf_sanitized_free (&s);
    }
    return (double) (nf_clock_us () - t0) / (double) n;
}

int
main (int argc, char **argv)
{
    int passes = argc > 1 ? atoi (argv[1]) : 15;
    if (passes < 1 || passes > 1000) {
        fprintf (stderr, "usage: nf-sanitizebench [PASSES 1..1000]\n");
        return 2;
    }
    nf_ytworld_t w = {.seed = 7, .catalog = 1000, .now = 1.78e9};
    const char *queries[] = {"budget travel", "home espresso", "sourdough baking",
                             "receitas faceis"};
    size_t nq = sizeof queries / sizeof queries[0], n = 0;
    nf_buf_t *texts = calloc (nq * VIDEOS * 2, sizeof *texts);
    size_t bytes = 0;
    for (size_t q = 0; q < nq; q++) {
        uint64_t tag = nf_yt_query_tag (&w, queries[q]);
        for (uint32_t i = 0; i < VIDEOS; i++) {
            nf_ytvideo_t v;
            nf_yt_video (&w, tag, i, queries[q], &v);
            for (int asr = 0; asr < 2; asr++) {
                nf_buf_init (&texts[n]);
                nf_yt_transcript (&w, &v, queries[q], asr, s_segment, &texts[n]);
                if (texts[n].len) {
                    bytes += texts[n].len;
                    n++;
                }
                else
                    nf_buf_free (&texts[n]);
            }
        }
    }
    double *fast = calloc ((size_t) passes, sizeof *fast);
    double *slow = calloc ((size_t) passes, sizeof *slow);
    uint64_t sum_fast = 0, sum_slow = 0;
    for (int p = 0; p < passes; p++) { /* interleaved, so machine noise hits both */
        nf_sanitize_ascii_fast = true;
        fast[p] = s_pass (texts, n, &sum_fast);
        nf_sanitize_ascii_fast = false;
        slow[p] = s_pass (texts, n, &sum_slow);
    }
    nf_sanitize_ascii_fast = true;
    qsort (fast, (size_t) passes, sizeof *fast, s_cmp_double);
    qsort (slow, (size_t) passes, sizeof *slow, s_cmp_double);
    printf ("%zu transcripts of nf-ytsim, %zu bytes on average, %d passes each way\n", n,
            n ? bytes / n : 0, passes);
    printf ("  utf8proc for every line and token: median %.1f us per transcript (%.1f..%.1f)\n",
            slow[passes / 2], slow[0], slow[passes - 1]);
    printf ("  ASCII fast paths:                  median %.1f us per transcript (%.1f..%.1f)\n",
            fast[passes / 2], fast[0], fast[passes - 1]);
    int rc = sum_fast == sum_slow ? 0 : 1;
    printf ("sanitize: %.1f us per transcript, %.2fx faster than utf8proc throughout; same "
            "results both ways: %s\n",
            fast[passes / 2], slow[passes / 2] / fast[passes / 2], rc ? "NO" : "yes");
    for (size_t i = 0; i < n; i++)
        nf_buf_free (&texts[i]);
    free (texts);
    free (fast);
    free (slow);
    return rc;
}
