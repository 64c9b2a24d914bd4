/*  nf_geo: see nf_geo.h. */
#include "nf_geo.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static const char *const s_default = "US GB CA AU NZ";
static const char *const s_extended = "US GB CA AU NZ IE DE NL CH NO SE DK FI AT BE LU FR";

bool
nf_tier1_has (const nf_tier1_t *set, const char *code)
{
    for (size_t i = 0; i < set->n; i++)
        if (strcmp (set->codes[i], code) == 0)
            return true;
    return false;
}

static int
s_add (nf_tier1_t *set, const char *code, char *err, size_t errlen)
{
    if (nf_tier1_has (set, code))
        return 0;
    if (set->n == NF_TIER1_MAX) {
        snprintf (err, errlen, "more than %d Tier-1 countries", NF_TIER1_MAX);
        return -1;
    }
    memcpy (set->codes[set->n++], code, 3);
    return 0;
}

/* Upper-case alpha-2 code of TEXT (LEN bytes, trimmed) into CODE, "UK" as
   GB. False when TEXT is not two letters. */
static bool
s_code (const char *text, size_t len, char code[3])
{
    while (len && isspace ((unsigned char) *text))
        text++, len--;
    while (len && isspace ((unsigned char) text[len - 1]))
        len--;
    if (!text || len != 2 || !isalpha ((unsigned char) text[0])
        || !isalpha ((unsigned char) text[1]))
        return false;
    code[0] = (char) toupper ((unsigned char) text[0]);
    code[1] = (char) toupper ((unsigned char) text[1]);
    code[2] = 0;
    if (strcmp (code, "UK") == 0)
        memcpy (code, "GB", 3);
    return true;
}

int
nf_tier1_parse (const char *spec, nf_tier1_t *set, char *err, size_t errlen)
{
    memset (set, 0, sizeof *set);
    const char *p = spec ? spec : "";
    while (*p) {
        while (*p == ',' || isspace ((unsigned char) *p))
            p++;
        size_t n = strcspn (p, ", \t");
        if (!n)
            break;
        const char *preset = NULL;
        if (n == 7 && strncmp (p, "default", 7) == 0)
            preset = s_default;
        else if (n == 8 && strncmp (p, "extended", 8) == 0)
            preset = s_extended;
        if (preset) {
            for (const char *q = preset; *q; q += q[2] ? 3 : 2) {
                char code[3] = {q[0], q[1], 0};
                if (s_add (set, code, err, errlen) != 0)
                    return -1;
            }
        }
        else {
            char code[3];
            if (!s_code (p, n, code)) {
                snprintf (err, errlen,
                          "'%.*s' is not an ISO 3166-1 alpha-2 code or a preset "
                          "(default, extended)",
                          (int) (n > 40 ? 40 : n), p);
                return -1;
            }
            if (s_add (set, code, err, errlen) != 0)
                return -1;
        }
        p += n;
    }
    if (set->n == 0) {
        snprintf (err, errlen, "the Tier-1 set is empty");
        return -1;
    }
    return 0;
}

/* The region of an English language tag ("en-US", "en_gb", "EN-au"), or false. */
static bool
s_english_region (const char *tag, size_t len, char code[3])
{
    if (!tag || len < 5 || tolower ((unsigned char) tag[0]) != 'e'
        || tolower ((unsigned char) tag[1]) != 'n' || (tag[2] != '-' && tag[2] != '_'))
        return false;
    return s_code (tag + 3, len - 3, code);
}

void
nf_geo_check (const nf_tier1_t *set, const char *country, size_t country_len,
              const char *audio_lang, size_t audio_len, const char *lang, size_t lang_len,
              nf_geo_result_t *out)
{
    memset (out, 0, sizeof *out);
    out->source = "none";
    char code[3];
    if (country && s_code (country, country_len, code)) {
        memcpy (out->country, code, 3);
        out->source = "channel";
        out->verdict = nf_tier1_has (set, code) ? NF_GEO_PASS : NF_GEO_NOT_TIER1;
        return;
    }
    const char *tag = audio_lang && audio_len ? audio_lang : lang;
    size_t tag_len = audio_lang && audio_len ? audio_len : lang_len;
    if (s_english_region (tag, tag_len, code) && nf_tier1_has (set, code)) {
        memcpy (out->country, code, 3);
        out->source = "language";
        out->verdict = NF_GEO_PASS;
        return;
    }
    out->verdict = NF_GEO_UNKNOWN_COUNTRY;
}

const char *
nf_geo_reason (nf_geo_verdict_t verdict)
{
    return verdict == NF_GEO_NOT_TIER1         ? "not_tier1"
           : verdict == NF_GEO_UNKNOWN_COUNTRY ? "unknown_country"
                                               : "";
}
