/*  nf_geo: the Tier-1 rule of the geo stage, as a pure function.

    A video passes when its channel's country (ISO 3166-1 alpha-2; "UK" is
    read as GB) is in the Tier-1 set. A channel with no usable country
    passes only when the video's default audio language (else its default
    language) is English with a region in the Tier-1 set ("en-US", "en_GB");
    anything else is `unknown_country`. A country outside the set is
    `not_tier1`. */
#ifndef NF_GEO_H
#define NF_GEO_H

#include <stdbool.h>
#include <stddef.h>

#define NF_TIER1_MAX 64

typedef struct {
    char codes[NF_TIER1_MAX][3]; /* upper-case alpha-2 codes */
    size_t n;                    /* codes used */
} nf_tier1_t;

/* Parse SPEC: "default", "extended", or a comma/space separated list of
   alpha-2 codes (presets may be mixed in: "extended,PL"). 0, or -1 with ERR. */
int nf_tier1_parse (const char *spec, nf_tier1_t *set, char *err, size_t errlen);
bool nf_tier1_has (const nf_tier1_t *set, const char *code);

typedef enum { NF_GEO_PASS, NF_GEO_NOT_TIER1, NF_GEO_UNKNOWN_COUNTRY } nf_geo_verdict_t;

typedef struct {
    nf_geo_verdict_t verdict; /* the outcome */
    char country[3];          /* the country used ("" when none) */
    const char *source;       /* "channel", "language" or "none" */
} nf_geo_result_t;

/* Judge one video. Any argument may be NULL or of any length (not
   NUL-terminated: each comes with its length). */
void nf_geo_check (const nf_tier1_t *set, const char *country, size_t country_len,
                   const char *audio_lang, size_t audio_len, const char *lang, size_t lang_len,
                   nf_geo_result_t *out);
const char *nf_geo_reason (nf_geo_verdict_t verdict);

#endif
