/*  nf_analyze: the outlier ranking of the analyze stage, as a pure function
    over an array of candidates (the job's VALIDATED videos).

    Per candidate, with its raw numbers:
      multiplier    = views / baseline   (outlier_x: "4.2x"; see nf_baseline)
      views_per_sub = views / subscribers
      velocity      = views / max(age_days, 1)
      engagement    = (likes + comments) / views     (0 when views = 0)
    A component whose inputs are missing (no baseline, hidden
    subscribers, unknown publish date, likes and comments both hidden) is
    skipped for that video. Each present component becomes its percentile
    within the candidates that have it:
      pct = (number below + (number equal - 1) / 2) / (n - 1),  1 when n = 1
    and composite = 100 x sum(w_i x pct_i) / sum(w_i) over the present
    components (the weights renormalized), rounded to 4 decimals. Ranking:
    composite descending, then views descending, then video id ascending.
    The filters run first and take a video out of the candidates with a
    reason: `below_min_views`, `too_old`, `format_excluded`. */
#ifndef NF_ANALYZE_H
#define NF_ANALYZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { NF_C_MULTIPLIER, NF_C_VIEWS_PER_SUB, NF_C_VELOCITY, NF_C_ENGAGEMENT, NF_C_COUNT };

typedef enum { NF_FORMAT_ANY, NF_FORMAT_LONG, NF_FORMAT_SHORT } nf_format_t;

/* The baseline a video is measured against: the median views of its
   channel's recent long-form uploads, as the outlier tools creators use
   compute it (outlier.so, 1of10, vidIQ), or the channel's lifetime mean
   when there are too few of them. */
typedef enum {
    NF_BASE_NONE = 0,      /* neither: the multiplier is skipped */
    NF_BASE_RECENT_MEDIAN, /* median views of the recent uploads */
    NF_BASE_LIFETIME_MEAN  /* channel views / channel videos */
} nf_base_source_t;

typedef struct {
    const char *video_id; /* borrowed; the candidate itself is left out */
    double views;         /* < 0: hidden or unknown (left out) */
    double age_days;      /* at the job's creation; < 0: unknown (left out) */
    double duration_s;    /* < 0: unknown */
} nf_upload_t;

typedef struct {
    int max_uploads;      /* the N most recent that qualify (30) */
    int min_uploads;      /* fewer: the lifetime mean (5) */
    double maturity_days; /* younger uploads are still growing: left out (7) */
    double short_max_s;   /* a Short is at most this long (180): left out */
} nf_baseline_opts_t;

extern const char *const nf_base_source_names[3];

typedef struct {
    /* inputs */
    const char *video_id;   /* borrowed */
    double views;           /* view count */
    double likes, comments; /* counts (when present) */
    bool has_likes, has_comments;
    double age_days;       /* days since publication; < 0 when unknown */
    bool is_short;         /* a Short (meta.is_short, else duration <= 60 s) */
    double subscribers;    /* channel subscribers (when present) */
    bool has_subscribers;  /* false when hidden or unknown */
    double channel_views;  /* channel total views */
    double channel_videos; /* channel video count */
    bool has_channel;      /* channel totals known and both > 0 */
    double baseline;       /* set by nf_baseline (0 when none) */
    nf_base_source_t baseline_source;
    int baseline_n; /* uploads the median is of (0 for the lifetime mean) */
    /* outputs */
    double value[NF_C_COUNT]; /* raw components */
    bool has[NF_C_COUNT];     /* component present */
    double pct[NF_C_COUNT];   /* percentile 0..1 (when present) */
    double composite;         /* 0..100 */
    int rank;                 /* 1-based among candidates; 0 when filtered */
    const char *filtered;     /* filter reason, or NULL */
} nf_candidate_t;

typedef struct {
    double weights[NF_C_COUNT]; /* multiplier, views/sub, velocity, engagement */
    int64_t min_views;          /* 0: no minimum */
    int64_t max_age_days;       /* 0: no maximum */
    nf_format_t format;         /* which videos take part */
} nf_analyze_opts_t;

extern const char *const nf_component_names[NF_C_COUNT];

/* Parse "0.40,0.20,0.25,0.15" (four non-negative numbers, not all zero). */
int nf_weights_parse (const char *spec, double weights[NF_C_COUNT], char *err, size_t errlen);

/* Set V's baseline from its channel's uploads U (N of them, newest first):
   skipping V itself, uploads with hidden views or no date, Shorts and
   uploads younger than the maturity, the median views of the first
   max_uploads left, when there are at least min_uploads (and the median is
   above 0). Otherwise it leaves none, and nf_analyze takes the lifetime
   mean when V has channel totals. */
void nf_baseline (nf_candidate_t *v, const nf_upload_t *u, size_t n, const nf_baseline_opts_t *o);

/* Score and rank the N candidates of C in place. Returns the number ranked
   (not filtered). ORDER, when not NULL, receives the indexes of C in rank
   order (ranked ones first, then the filtered). Cost O(n log n). */
size_t nf_analyze (nf_candidate_t *c, size_t n, const nf_analyze_opts_t *opts, size_t *order);

#endif
