/*  nf_ai: the content nf-architect writes for one outlier, whoever writes
    it (the built-in generator or an LLM), and the facts it is written from.

    Fields (the `ai` column and the export's "AI Content" sheet):
      titles     5 title variants
      hook       the first 15 seconds: at most 2 sentences
      outline    5 points
      thumbnail  one thumbnail concept
      why        why the video worked, from its metrics and transcript */
#ifndef NF_AI_H
#define NF_AI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NF_AI_TITLES    5
#define NF_AI_POINTS    5
#define NF_AI_FIELD_MAX 2000 /* bytes a field may hold */

/* What the content is written from (all borrowed, NUL-terminated; a
   missing number has its has_ flag false). */
typedef struct {
    const char *video_id;   /* for deterministic variety */
    const char *niche;      /* job niche */
    const char *sub_niche;  /* job sub-niche, may be "" */
    const char *title;      /* the outlier's title */
    const char *channel;    /* channel title, may be "" */
    const char *transcript; /* cleaned transcript, may be "" */
    double views, subscribers, multiplier, views_per_sub, velocity, engagement, age_days,
        channel_avg, composite, quality;
    bool has_subscribers, has_multiplier, has_views_per_sub, has_velocity, has_engagement, has_age,
        has_channel_avg;
    double pct_multiplier, pct_velocity, pct_engagement; /* 0..1, -1 when missing */
    int rank;                                            /* rank among the job's candidates */
    bool baseline_median;   /* channel_avg is the median of recent uploads, not the lifetime mean */
    const char *phrases[8]; /* the analyst's: this transcript's phrases that few of the job's
                               other transcripts say, best first (NULL-padded) */
} nf_ai_input_t;

typedef struct {
    char *titles[NF_AI_TITLES];   /* owned */
    char *hook;                   /* owned */
    char *outline[NF_AI_POINTS];  /* owned */
    char *thumbnail;              /* owned */
    char *why;                    /* owned */
    int frames[NF_AI_TITLES + 2]; /* built-in: the frames used (titles, hook, thumbnail) */
} nf_ai_t;

void nf_ai_free (nf_ai_t *ai);

/* Number of sentences in TEXT (runs ending in . ! or ? followed by a space
   or the end; a trailing fragment counts as one). */
int nf_ai_sentences (const char *text);

/* The built-in generator: deterministic, offline, from IN. */
void nf_ai_generate (const nf_ai_input_t *in, nf_ai_t *out);

/* The key phrases of TEXT (most frequent two-word phrases, else words,
   stop words left out), at most MAX, written into PHRASES (owned by the
   caller, free each). Returns how many. */
size_t nf_ai_key_phrases (const char *text, char **phrases, size_t max);

#endif
