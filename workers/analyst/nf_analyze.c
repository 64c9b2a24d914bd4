/*  nf_analyze: see nf_analyze.h. */
#define _GNU_SOURCE /* qsort_r */
#include "nf_analyze.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const nf_component_names[NF_C_COUNT] = {"multiplier", "views_per_sub", "velocity",
                                                    "engagement"};
const char *const nf_base_source_names[3] = {"none", "recent_median", "lifetime_mean"};

static int
s_cmp_double (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y ? 1 : 0;
}

void
nf_baseline (nf_candidate_t *v, const nf_upload_t *u, size_t n, const nf_baseline_opts_t *o)
{
    v->baseline = 0;
    v->baseline_n = 0;
    v->baseline_source = NF_BASE_NONE;
    int max = o->max_uploads > 0 ? o->max_uploads : 1;
    double *views = calloc ((size_t) max, sizeof *views);
    if (!views)
        abort ();
    size_t m = 0;
    for (size_t i = 0; i < n && m < (size_t) max; i++) {
        const nf_upload_t *x = &u[i];
        if ((x->video_id && v->video_id && strcmp (x->video_id, v->video_id) == 0) || x->views < 0
            || x->age_days < 0 || x->age_days < o->maturity_days
            || (x->duration_s > 0 && x->duration_s <= o->short_max_s))
            continue;
        views[m++] = x->views;
    }
    if (m > 0 && m >= (size_t) o->min_uploads) {
        qsort (views, m, sizeof *views, s_cmp_double);
        double median = m % 2 ? views[m / 2] : (views[m / 2 - 1] + views[m / 2]) / 2.0;
        if (median > 0) {
            v->baseline = median;
            v->baseline_n = (int) m;
            v->baseline_source = NF_BASE_RECENT_MEDIAN;
        }
    }
    free (views);
}

int
nf_weights_parse (const char *spec, double weights[NF_C_COUNT], char *err, size_t errlen)
{
    const char *p = spec ? spec : "";
    double sum = 0;
    for (int i = 0; i < NF_C_COUNT; i++) {
        char *end = NULL;
        double w = strtod (p, &end);
        if (end == p || !isfinite (w) || w < 0) {
            snprintf (err, errlen, "weight %d (%s) is not a non-negative number in '%s'", i + 1,
                      nf_component_names[i], spec ? spec : "");
            return -1;
        }
        weights[i] = w;
        sum += w;
        p = end;
        while (*p == ' ')
            p++;
        if (i < NF_C_COUNT - 1) {
            if (*p != ',') {
                snprintf (err, errlen, "expected 4 comma-separated weights in '%s'", spec);
                return -1;
            }
            p++;
        }
    }
    if (*p || sum <= 0) {
        snprintf (err, errlen,
                  *p ? "expected 4 comma-separated weights in '%s'"
                     : "the weights in '%s' are all zero",
                  spec);
        return -1;
    }
    return 0;
}

typedef struct {
    double v; /* value */
    size_t i; /* candidate index */
} s_pair_t;

static int
s_cmp_pair (const void *a, const void *b)
{
    double x = ((const s_pair_t *) a)->v, y = ((const s_pair_t *) b)->v;
    return x < y ? -1 : x > y ? 1 : 0;
}

/* Percentile (mid-rank, 0..1) of component K among the candidates that have it. */
static void
s_percentiles (nf_candidate_t *c, size_t n, int k, s_pair_t *tmp)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!c[i].filtered && c[i].has[k])
            tmp[m++] = (s_pair_t){c[i].value[k], i};
    qsort (tmp, m, sizeof *tmp, s_cmp_pair);
    for (size_t a = 0; a < m;) {
        size_t b = a;
        while (b + 1 < m && tmp[b + 1].v == tmp[a].v)
            b++;
        /* candidates a..b are equal: a below them, (b - a) others equal */
        double pct = m == 1 ? 1.0 : ((double) a + (double) (b - a) / 2.0) / (double) (m - 1);
        for (size_t j = a; j <= b; j++)
            c[tmp[j].i].pct[k] = pct;
        a = b + 1;
    }
}

static int
s_cmp_rank (const void *a, const void *b, void *arg)
{
    const nf_candidate_t *base = (const nf_candidate_t *) arg;
    const nf_candidate_t *x = &base[*(const size_t *) a];
    const nf_candidate_t *y = &base[*(const size_t *) b];
    if (!x->filtered != !y->filtered)
        return x->filtered ? 1 : -1;
    if (x->composite != y->composite)
        return x->composite > y->composite ? -1 : 1;
    if (x->views != y->views)
        return x->views > y->views ? -1 : 1;
    return strcmp (x->video_id ? x->video_id : "", y->video_id ? y->video_id : "");
}

size_t
nf_analyze (nf_candidate_t *c, size_t n, const nf_analyze_opts_t *opts, size_t *order)
{
    for (size_t i = 0; i < n; i++) {
        nf_candidate_t *v = &c[i];
        memset (v->value, 0, sizeof v->value);
        memset (v->has, 0, sizeof v->has);
        memset (v->pct, 0, sizeof v->pct);
        v->composite = 0;
        v->rank = 0;
        v->filtered = NULL;
        if (opts->min_views > 0 && v->views < (double) opts->min_views)
            v->filtered = "below_min_views";
        else if (opts->max_age_days > 0 && v->age_days > (double) opts->max_age_days)
            v->filtered = "too_old";
        else if ((opts->format == NF_FORMAT_LONG && v->is_short)
                 || (opts->format == NF_FORMAT_SHORT && !v->is_short))
            v->filtered = "format_excluded";
        if (v->baseline_source == NF_BASE_NONE && v->has_channel && v->channel_views > 0
            && v->channel_videos > 0) { /* too few recent uploads: the lifetime mean */
            v->baseline = v->channel_views / v->channel_videos;
            v->baseline_source = NF_BASE_LIFETIME_MEAN;
        }
        if (v->baseline_source != NF_BASE_NONE && v->baseline > 0) {
            v->value[NF_C_MULTIPLIER] = v->views / v->baseline;
            v->has[NF_C_MULTIPLIER] = true;
        }
        if (v->has_subscribers && v->subscribers > 0) {
            v->value[NF_C_VIEWS_PER_SUB] = v->views / v->subscribers;
            v->has[NF_C_VIEWS_PER_SUB] = true;
        }
        if (v->age_days >= 0) {
            v->value[NF_C_VELOCITY] = v->views / fmax (v->age_days, 1.0);
            v->has[NF_C_VELOCITY] = true;
        }
        if (v->has_likes || v->has_comments) {
            double e = (v->has_likes ? v->likes : 0) + (v->has_comments ? v->comments : 0);
            v->value[NF_C_ENGAGEMENT] = v->views > 0 ? e / v->views : 0;
            v->has[NF_C_ENGAGEMENT] = true;
        }
    }
    s_pair_t *tmp = calloc (n + 1, sizeof *tmp);
    size_t *idx = calloc (n + 1, sizeof *idx);
    if (!tmp || !idx)
        abort ();
    for (int k = 0; k < NF_C_COUNT; k++)
        s_percentiles (c, n, k, tmp);
    size_t ranked = 0;
    for (size_t i = 0; i < n; i++) {
        idx[i] = i;
        if (c[i].filtered)
            continue;
        ranked++;
        double sum = 0, wsum = 0;
        for (int k = 0; k < NF_C_COUNT; k++)
            if (c[i].has[k]) {
                sum += opts->weights[k] * c[i].pct[k];
                wsum += opts->weights[k];
            }
        c[i].composite = wsum > 0 ? round (100.0 * sum / wsum * 10000.0) / 10000.0 : 0.0;
    }
    qsort_r (idx, n, sizeof *idx, s_cmp_rank, c);
    for (size_t r = 0; r < ranked; r++)
        c[idx[r]].rank = (int) r + 1;
    if (order)
        memcpy (order, idx, n * sizeof *idx);
    free (tmp);
    free (idx);
    return ranked;
}
