/*  nf_jobopts: the options a job may carry (the `options` map of nf.submit),
    each with its type, range or check and the words of its error message.
    One table, read by the broker (which refuses a submission naming every
    bad field) and by nf-submit (which checks its flags the same way before
    it sends, so a user sees the reason without a round trip). Pure: no I/O,
    no allocation; safe from any thread. */
#ifndef NF_JOBOPTS_H
#define NF_JOBOPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *key;                      /* option name on the wire */
    const char *flag;                     /* nf-submit's flag */
    bool is_int;                          /* integer, else string */
    int64_t min, max;                     /* integer range */
    bool (*check) (const char *, size_t); /* string check, or NULL with ENUMS */
    const char *enums;                    /* space-separated allowed strings */
    const char *want;                     /* "must be ..." in the error message */
} nf_jobopt_t;

/* The table, and its length (at most NF_JOBOPTS_MAX rows). */
#define NF_JOBOPTS_MAX 16
extern const nf_jobopt_t nf_jobopts[];
extern const size_t nf_jobopts_count;

/* The option called KEY (LEN bytes), or NULL. */
const nf_jobopt_t *nf_jobopt_find (const char *key, size_t len);

/* The option whose nf-submit flag is FLAG ("--lang"), or NULL. */
const nf_jobopt_t *nf_jobopt_by_flag (const char *flag);

/* Whether the string S (LEN bytes) is a valid value of string option O. */
bool nf_jobopt_str_ok (const nf_jobopt_t *o, const char *s, size_t len);

/* A calendar date YYYY-MM-DD from 2005 to 2100. */
bool nf_date_ok (const char *s, size_t n);

/* An ISO 3166-1 alpha-2 code in use ("US", "GB"; not "UK" or "XX"). */
bool nf_region_ok (const char *s, size_t n);

/* One BCP 47 language tag of the shape YouTube uses: a primary language
   subtag from ISO 639-1 (or one of the three-letter ones YouTube serves,
   such as "fil"), optionally followed by a script ("Hant"), a region (an
   ISO 3166-1 code, or "419"), e.g. "en", "en-GB", "zh-Hant", "es-419". */
bool nf_lang_tag_ok (const char *s, size_t n);

/* A comma list of one to 8 such tags, in order of preference ("en,en-GB"). */
bool nf_lang_list_ok (const char *s, size_t n);

#endif
